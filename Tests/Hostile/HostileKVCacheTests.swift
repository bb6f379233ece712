import Foundation
import XCTest
import Swiftlet
import SwiftletBench
@testable import SwiftletCLI
import SwiftletTestSupport

/// KV caches a process is asked for: a model's own, one per session, one per batched sequence,
/// several models at once. Together they stay within one `KVCacheBudget`; going past it is a
/// typed error before anything is allocated, and a closed session gives its share back. Every
/// test sets a small limit, so none of them needs much memory.
final class HostileKVCacheTests: XCTestCase {
    private static let limit = 64 << 20

    /// Bytes of one SmolLM2 f16 cache of `context` positions.
    private func cacheBytes(_ model: LanguageModel, context: Int) -> Int {
        let c = model.config
        return KVCache.byteCount(layers: c.layerCount, kvHeads: c.kvHeadCount, headDim: c.headDim, capacity: context,
                                 keyType: .f16, valueType: .f16)!
    }

    /// A session that has generated one token, so its cache exists.
    private func openSession(_ model: LanguageModel) async throws -> PromptSession {
        let session = PromptSession(model)
        for try await _ in session.generate(tokens: model.tokenize("Hi"), parameters: GenerationParameters(maxTokens: 1, sampling: .greedy)) {}
        return session
    }

    func testSessionsBeyondTheLimitAreRefusedAndClosingOneFreesItsShare() async throws {
        let budget = KVCacheBudget(limitBytes: Self.limit)
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 512, cacheBudget: budget)
        let perSession = cacheBytes(model, context: 512)
        let heldByModel = budget.heldBytes
        XCTAssertGreaterThanOrEqual(heldByModel, perSession)  // its own cache and attention buffers
        let fitting = (Self.limit - heldByModel) / perSession
        XCTAssertGreaterThanOrEqual(fitting, 2)

        var sessions: [PromptSession] = []
        var refusal: Error?
        while refusal == nil && sessions.count <= fitting {
            do { sessions.append(try await openSession(model)) } catch { refusal = error }
        }
        XCTAssertEqual(sessions.count, fitting, "sessions opened before the refusal")
        guard case let .kvCacheLimit(what, needed, held, limit)? = refusal as? SwiftletError else {
            return XCTFail("\(sessions.count) sessions opened, then \(String(describing: refusal))")
        }
        XCTAssertTrue(what.contains("session"), what)
        XCTAssertEqual(needed, perSession)
        XCTAssertEqual(held, heldByModel + fitting * perSession)
        XCTAssertEqual(limit, Self.limit)
        XCTAssertLessThanOrEqual(budget.heldBytes, Self.limit)
        XCTAssertTrue("\(refusal!)".contains("--kv-cache-limit"), "\(refusal!)")

        // Closing a session (its owner goes away; the engine frees the cache on its thread)
        // gives its bytes back, and a new session fits again.
        sessions.removeLast()
        let deadline = Date().addingTimeInterval(30)
        while budget.heldBytes > heldByModel + (fitting - 1) * perSession {
            guard Date() < deadline else { return XCTFail("closing a session freed nothing: \(budget.heldBytes) held") }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        sessions.append(try await openSession(model))
        XCTAssertEqual(budget.heldBytes, heldByModel + fitting * perSession)
    }

    /// The budget holds every model of it: a second model does not fit beside a full first one,
    /// and a context whose own cache is beyond the limit is refused at load.
    func testModelsShareTheLimitAndAContextBeyondItIsRefused() async throws {
        let url = try RealModel.smollm2.url()
        let budget = KVCacheBudget(limitBytes: Self.limit)
        do {
            _ = try await LanguageModel.load(url, contextLength: 8192, cacheBudget: budget)
            XCTFail("a context of 8192 (~190 MB of f16 cache) loaded within \(Self.limit) bytes")
        } catch let error as SwiftletError {
            guard case let .kvCacheLimit(what, needed, held, limit) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(what.contains("context length 8192"), what)
            XCTAssertGreaterThan(needed, Self.limit)
            XCTAssertEqual(held, 0)
            XCTAssertEqual(limit, Self.limit)
        }
        XCTAssertEqual(budget.heldBytes, 0)

        let first = try LanguageModel(url: url, contextLength: 2048, cacheBudget: budget)  // ~47 MB
        let heldByFirst = budget.heldBytes
        XCTAssertGreaterThanOrEqual(heldByFirst, cacheBytes(first, context: 2048))
        XCTAssertThrowsError(try LanguageModel(url: url, contextLength: 2048, cacheBudget: budget)) { error in
            guard case .kvCacheLimit(_, _, let held, _)? = error as? SwiftletError else { return XCTFail("\(error)") }
            XCTAssertEqual(held, heldByFirst)
        }
        XCTAssertEqual(budget.heldBytes, heldByFirst)
        withExtendedLifetime(first) {}
        // The same model in the default budget (3/4 of physical memory minus the weights) loads.
        XCTAssertEqual(try LanguageModel(url: url, contextLength: 2048).contextLength, 2048)
    }

    /// The caches come from zero pages: a session's cache becomes resident only as it fills, so
    /// a large context costs memory in proportion to the tokens it holds.
    func testCachesAreResidentOnlyAsTheyFill() async throws {
        let budget = KVCacheBudget(limitBytes: 1536 << 20)
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 8192, cacheBudget: budget)
        let perSession = cacheBytes(model, context: 8192)  // ~190 MB
        // A first session pages the weights in.
        var sessions = [try await openSession(model)]
        guard let before = ProcessMemory.residentBytes else { throw XCTSkip("no /proc/self/status") }
        for _ in 0..<3 { sessions.append(try await openSession(model)) }
        let grown = (ProcessMemory.residentBytes ?? 0) - before
        XCTAssertGreaterThanOrEqual(budget.heldBytes, 5 * perSession)
        // Zero-filled caches would add 3 × 190 MB.
        XCTAssertLessThan(grown, perSession, "3 sessions of \(perSession) bytes each grew the resident set by \(grown)")
        withExtendedLifetime(sessions) {}
    }

    /// `-c` and `--kv-cache-limit` on the command line: a context beyond the model is refused by
    /// name, one beyond the limit by the limit, an unreadable limit by the flag, all before any
    /// cache is made.
    func testCommandLineContextsAndLimitsAreTypedErrors() async throws {
        let model = try RealModel.smollm2.url().path
        defer { KVCacheBudget.shared.setLimit(bytes: nil) }
        for c in ["1000000000", "1125899906842624", "9223372036854775807"] {
            XCTAssertThrowsError(try GenerateCommand.parse(["-m", model, "-p", "Hi", "-c", c]).run(), "-c \(c)") { error in
                guard case .invalidArgument(let what)? = error as? SwiftletError else { return XCTFail("-c \(c): \(error)") }
                XCTAssertTrue(what.contains("8192"), what)
            }
        }

        // The process's budget also holds the caches of models other tests keep alive: 64 MiB more.
        let limit = KVCacheBudget.shared.heldBytes + (64 << 20)
        func assertBeyondLimit(_ error: Error, _ command: String) {
            guard case let .kvCacheLimit(what, needed, _, refused)? = error as? SwiftletError else { return XCTFail("\(command): \(error)") }
            XCTAssertTrue(what.contains("context length 8192"), what)
            XCTAssertGreaterThan(needed, 64 << 20)
            XCTAssertEqual(refused, limit)
        }
        XCTAssertThrowsError(try GenerateCommand.parse(["-m", model, "-p", "Hi", "-c", "8192", "--kv-cache-limit", "\(limit)"]).run()) {
            assertBeyondLimit($0, "generate")
        }
        // Perplexity counts the text's tokens first: give it one chunk's worth.
        let text = FileManager.default.temporaryDirectory.appendingPathComponent("kv-limit-\(UUID()).txt")
        try String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 1000).write(to: text, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: text) }
        do {
            try await PerplexityCommand.parse(["-m", model, "-f", text.path, "-c", "8192", "--kv-cache-limit", "\(limit)"]).run()
            XCTFail("perplexity -c 8192 ran within a 64 MiB limit")
        } catch {
            assertBeyondLimit(error, "perplexity")
        }
        XCTAssertEqual(KVCacheBudget.shared.limitBytes, limit)
        XCTAssertThrowsError(try BatchedBenchCommand.parse(["-m", model, "--kv-cache-limit", "\(limit)", "-npp", "1000", "-ntg", "24",
                                                            "-npl", "8"]).run()) { error in
            guard case let .kvCacheLimit(what, _, _, _)? = error as? SwiftletError else { return XCTFail("\(error)") }
            XCTAssertTrue(what.contains("8 sequences"), what)
        }
        for bad in ["abc", "-1", "12Q", "99999999999T", ""] {
            XCTAssertThrowsError(try GenerateCommand.parse(["-m", model, "-p", "Hi", "--kv-cache-limit", bad]), bad)
        }
        // A server whose slots cannot all have their caches stops at start, not at a later request.
        do {
            try await ServeCommand.parse(["-m", model, "-np", "4", "-c", "8192", "--port", "0", "--kv-cache-limit", "\(limit)"]).run()
            XCTFail("serve started 4 slots of 2048 positions within 64 MiB")
        } catch {
            guard case let .kvCacheLimit(what, _, _, _)? = error as? SwiftletError else { return XCTFail("serve: \(error)") }
            XCTAssertTrue(what.contains("4 slots of 2048 positions"), what)
        }
        XCTAssertEqual(try GenerateCommand.parse(["-m", model, "-p", "Hi", "--kv-cache-limit", "64M"]).attention.cacheLimit.kvCacheLimit, "64M")
        XCTAssertEqual(KVCacheBudget.shared.limitBytes, 64 << 20)
        XCTAssertNoThrow(try ServeCommand.parse(["-m", model, "--kv-cache-limit", "2G"]))
        XCTAssertNoThrow(try ChatCommand.parse(["-m", model, "--kv-cache-limit", "512MiB"]))
        XCTAssertEqual(KVCacheBudget.shared.limitBytes, 512 << 20)
    }

    func testSizesParseAsBinaryUnits() {
        XCTAssertEqual(KVCacheBudget.parseSize("4096"), 4096)
        XCTAssertEqual(KVCacheBudget.parseSize("64M"), 64 << 20)
        XCTAssertEqual(KVCacheBudget.parseSize("64MiB"), 64 << 20)
        XCTAssertEqual(KVCacheBudget.parseSize(" 2g "), 2 << 30)
        XCTAssertEqual(KVCacheBudget.parseSize("1TB"), 1 << 40)
        for bad in ["", "M", "-5", "1.5G", "8388608T", "9223372036854775808", "١٢"] {
            XCTAssertNil(KVCacheBudget.parseSize(bad), bad)
        }
    }
}
