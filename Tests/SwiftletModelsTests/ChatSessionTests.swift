import XCTest
import Foundation
import Synchronization
import Swiftlet
import SwiftletModels
import SwiftletTestSupport

/// `ChatSession` on SmolLM2: sessions sharing one model keep their own conversations, cancellation
/// frees the model within a layer, and a saved state continues bit for bit.
final class ChatSessionTests: XCTestCase {
    private static let turns = [
        ["What is the capital of France?", "And which river runs through it?"],
        ["Name a prime number.", "Is it even?"],
    ]

    private static func greedySession(_ model: LanguageModel) -> ChatSession {
        let session = ChatSession(model, instructions: "Answer in one short sentence.")
        session.parameters.maxTokens = 24
        session.parameters.sampling = .greedy
        return session
    }

    /// Both conversations, each run alone on a fresh model.
    private func alone(_ url: URL) async throws -> [[String]] {
        var replies: [[String]] = []
        for conversation in Self.turns {
            let model = try await LanguageModel.load(url, contextLength: 512)
            let session = Self.greedySession(model)
            var out: [String] = []
            for turn in conversation { out.append(try await session.respond(to: turn)) }
            replies.append(out)
        }
        return replies
    }

    func testTwoSessionsOnOneModelAnswerAsIfAlone() async throws {
        let url = try RealModel.smollm2.url()
        let expected = try await alone(url)
        let model = try await LanguageModel.load(url, contextLength: 512)
        let replies = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
            for (index, conversation) in Self.turns.enumerated() {
                group.addTask {
                    let session = Self.greedySession(model)
                    var out: [String] = []
                    for turn in conversation { out.append(try await session.respond(to: turn)) }
                    XCTAssertEqual(session.history.count, 2 * conversation.count)
                    return (index, out)
                }
            }
            var all = [[String]](repeating: [], count: Self.turns.count)
            for try await (index, out) in group { all[index] = out }
            return all
        }
        XCTAssertEqual(replies, expected)
        XCTAssertFalse(replies[0][0].isEmpty)
    }

    /// A long prompt is abandoned within one layer: the caller returns at once, and the model is
    /// free for the next request long before the prompt would have finished.
    func testCancellationMidPrefillFreesTheModel() async throws {
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 2048)
        let longPrompt = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 170)
        let session = Self.greedySession(model)

        // How long that prompt takes uncancelled.
        let clock = ContinuousClock()
        let probe = Self.greedySession(model)
        probe.parameters.maxTokens = 1
        let full = try await clock.measure { _ = try await probe.respond(to: longPrompt) }
        XCTAssertGreaterThan(full, .milliseconds(300), "the prompt must be long enough to cancel mid-way")

        let task = Task { try await session.respond(to: longPrompt) }
        try await Task.sleep(for: .milliseconds(100))
        let cancelledAt = clock.now
        task.cancel()
        let result = await task.result
        let returned = clock.now - cancelledAt
        XCTAssertThrowsError(try result.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        XCTAssertLessThan(returned, .milliseconds(50))
        XCTAssertEqual(session.history, [], "a cancelled reply is not added to the history")

        // The model must be free: a one-token reply takes far less than the abandoned prompt.
        let next = Self.greedySession(model)
        next.parameters.maxTokens = 1
        let after = try await clock.measure { _ = try await next.respond(to: "Hi") }
        XCTAssertLessThan(after, full / 2, "the cancelled prefill kept the model busy")
    }

    func testSavedStateContinuesBitForBit() async throws {
        let url = try RealModel.smollm2.url()
        let transformer = try Transformer.load(url: url, contextLength: 256)
        let prompt = try LanguageModel(url: url, contextLength: 256).tokenize("Once upon a time, in a small village,")
        let original = GenerationSession(transformer: transformer, cache: try transformer.makeCache())
        try original.prefill(prompt)
        let state = original.savedState()

        let restored = GenerationSession(transformer: transformer, cache: try transformer.makeCache())
        try restored.restore(state: state)
        XCTAssertEqual(restored.tokens, prompt)
        for token: TokenID in [42, 1000, 7] {
            let a = Array(try original.step(token))
            let b = Array(try restored.step(token))
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
        }

        XCTAssertThrowsError(try restored.restore(state: state.prefix(20))) { XCTAssertTrue($0 is SwiftletError) }
    }

    func testChatSessionStateRoundTripsThroughAFile() async throws {
        let url = try RealModel.smollm2.url()
        let model = try await LanguageModel.load(url, contextLength: 512)
        let session = Self.greedySession(model)
        _ = try await session.respond(to: Self.turns[0][0])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-session-\(UUID().uuidString).state")
        defer { try? FileManager.default.removeItem(at: file) }
        try await session.saveState(to: file)
        let uninterrupted = try await session.respond(to: Self.turns[0][1])

        let restored = Self.greedySession(try await LanguageModel.load(url, contextLength: 512))
        try await restored.restoreState(from: file)
        XCTAssertEqual(restored.history.count, 2)
        let continued = restored.streamResponse(to: Self.turns[0][1])
        var text = "", evaluated = -1
        for try await chunk in continued {
            text += chunk.text
            if let s = chunk.statistics { evaluated = s.promptTokensEvaluated }
        }
        XCTAssertEqual(text, uninterrupted)
        XCTAssertLessThan(evaluated, 40, "the restored cache must be reused, not the whole history evaluated")
    }

    func testLoadReportsProgressOffTheCaller() async throws {
        let seen = Mutex<[LoadProgress]>([])
        _ = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 64) { p in seen.withLock { $0.append(p) } }
        let reports = seen.withLock { $0 }
        XCTAssertGreaterThan(reports.count, 100)
        XCTAssertEqual(reports.last?.completedTensors, reports.last?.totalTensors)
        XCTAssertEqual(reports.last?.fractionCompleted, 1)
    }
}
