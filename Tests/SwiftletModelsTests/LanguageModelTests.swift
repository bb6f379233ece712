import XCTest
import Foundation
import Swiftlet
import SwiftletTestSupport

/// The public API on SmolLM2: streaming, stop conditions, prompt-cache reuse, cancellation.
final class LanguageModelTests: XCTestCase {
    private func collect(_ stream: AsyncThrowingStream<GenerationChunk, Error>) async throws -> (text: String, ids: [TokenID], stats: GenerationStatistics?) {
        var text = "", ids: [TokenID] = [], stats: GenerationStatistics?
        for try await chunk in stream {
            text += chunk.text; ids += chunk.tokenIDs
            if let s = chunk.statistics { stats = s }
        }
        return (text, ids, stats)
    }

    func testGreedyGenerationMatchesLlamaCpp() async throws {
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 256)
        let json = try Fixtures.referenceJSON("llama-smollm2.json") as! [String: Any]
        let prompt = (json["prompts"] as! [[String: Any]])[0]
        let ids = (prompt["ids"] as! [NSNumber]).map(\.int32Value)
        let greedy = (prompt["greedy"] as! [NSNumber]).map(\.int32Value)
        XCTAssertEqual(model.tokenize(prompt["prompt"] as! String), ids)

        let params = GenerationParameters(maxTokens: greedy.count, sampling: .greedy, stopAtEndOfGeneration: false)
        let out = try await collect(model.generate(prompt: prompt["prompt"] as! String, parameters: params))
        XCTAssertEqual(out.ids, greedy)
        XCTAssertEqual(out.text, prompt["greedy_text"] as? String)
        XCTAssertEqual(out.stats?.stopReason, .maxTokens)
        XCTAssertEqual(out.stats?.promptTokens, ids.count)
        XCTAssertEqual(out.stats?.generatedTokens, greedy.count)

        // The cache holds prompt + generated tokens: extending it evaluates only the new part.
        let extended = ids + greedy.prefix(10)
        let again = try await collect(model.generate(tokens: extended, parameters: GenerationParameters(maxTokens: 2, sampling: .greedy)))
        XCTAssertEqual(again.stats?.promptTokensEvaluated, 1)
        XCTAssertEqual(again.ids, Array(greedy[10..<12]))

        // Stop strings end the text just before them.
        let stopped = try await collect(model.generate(tokens: ids, parameters: GenerationParameters(
            maxTokens: 32, sampling: .greedy, stopStrings: ["United"])))
        XCTAssertEqual(stopped.stats?.stopReason, .stopString)
        XCTAssertFalse(stopped.text.contains("United"))
        XCTAssertTrue((prompt["greedy_text"] as! String).hasPrefix(stopped.text + "United"), stopped.text)
    }

    func testCancellationContextOverflowAndChat() async throws {
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 128)
        // Dropping the stream after two chunks stops the generation; the model is usable again.
        var seen = 0
        for try await _ in model.generate(prompt: "Once upon a time", parameters: GenerationParameters(maxTokens: 50, sampling: .greedy)) {
            seen += 1
            if seen == 2 { break }
        }
        let next = try await collect(model.generate(prompt: "Hello", parameters: GenerationParameters(maxTokens: 3, sampling: .greedy)))
        XCTAssertEqual(next.stats?.generatedTokens, 3)

        do {
            _ = try await collect(model.generate(prompt: "Hello", parameters: GenerationParameters(maxTokens: 200)))
            XCTFail("expected contextOverflow")
        } catch let error as SwiftletError {
            guard case .contextOverflow(_, 128) = error else { return XCTFail("\(error)") }
        }

        let chatPrompt = try model.formatChat([.user("What is 2+2?")])
        XCTAssertTrue(chatPrompt.hasPrefix("<|im_start|>system\n"), chatPrompt)
        XCTAssertTrue(chatPrompt.hasSuffix("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"), chatPrompt)
        let reply = try await collect(model.chat([.user("What is 2+2?")], parameters: GenerationParameters(maxTokens: 40, sampling: .greedy)))
        XCTAssertEqual(reply.stats?.stopReason, .endOfGeneration, reply.text)
        XCTAssertFalse(reply.text.isEmpty)
    }
}
