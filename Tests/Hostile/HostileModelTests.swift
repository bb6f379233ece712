import Foundation
import XCTest
import Swiftlet
import SwiftletTestSupport

/// Sizes a user gives a language model (tokens to generate, context length, sampling options)
/// and model files whose parts disagree: each is a typed error or a bounded cost, never a trap
/// or an allocation sized by the input.
final class HostileModelTests: XCTestCase {
    private func generate(_ model: LanguageModel, _ parameters: GenerationParameters, prompt: String = "Hi") async throws
        -> (ids: [TokenID], stats: GenerationStatistics?) {
        var ids: [TokenID] = []
        var stats: GenerationStatistics?
        for try await chunk in model.generate(prompt: prompt, parameters: parameters) {
            ids += chunk.tokenIDs
            if let s = chunk.statistics { stats = s }
        }
        return (ids, stats)
    }

    func testHugeTokenCountIsContextOverflowNotTrap() async throws {
        let model = try LanguageModel(url: RealModel.smollm2.url(), contextLength: 64)
        for n in [Int.max, Int.max - 1, 1 << 62, 65] {
            do {
                _ = try await generate(model, GenerationParameters(maxTokens: n, sampling: .greedy))
                XCTFail("-n \(n) was accepted with a context of 64")
            } catch let error as SwiftletError {
                guard case let .contextOverflow(requested, limit) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(limit, 64)
                XCTAssertGreaterThan(requested, 64)
            }
        }
    }

    /// `-n -1` as in llama.cpp: generate until the context is full.
    func testNegativeTokenCountGeneratesUntilContextIsFull() async throws {
        let model = try LanguageModel(url: RealModel.smollm2.url(), contextLength: 24)
        let prompt = model.tokenize("Once upon a time")
        for n in [-1, -2] {
            let (ids, stats) = try await generate(
                model, GenerationParameters(maxTokens: n, sampling: .greedy, stopAtEndOfGeneration: false), prompt: "Once upon a time")
            XCTAssertEqual(ids.count, 24 - prompt.count, "-n \(n)")
            XCTAssertEqual(stats?.stopReason, .maxTokens)
        }
    }

    func testContextBeyondTrainingOrMemoryIsRefusedBeforeAllocation() throws {
        let url = try RealModel.smollm2.url()
        for c in [1_000_000_000, 1 << 50, Int.max, 8193] {
            let start = Date()
            XCTAssertThrowsError(try LanguageModel(url: url, contextLength: c), "-c \(c)") { error in
                guard case .invalidArgument(let what)? = error as? SwiftletError else { return XCTFail("\(error)") }
                XCTAssertTrue(what.contains("8192"), what)
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 5, "-c \(c) took long: something was allocated")
        }
        for c in [0, -1, Int.min] {
            XCTAssertThrowsError(try LanguageModel(url: url, contextLength: c), "-c \(c)")
        }
        // The model's own limit is accepted.
        XCTAssertEqual(try LanguageModel(url: url, contextLength: 8192).contextLength, 8192)
    }

    /// A model file claiming a context far beyond the machine's memory: the KV-cache memory
    /// bound, not the trained-context bound, refuses it, also where the size overflows.
    func testContextBeyondPhysicalMemoryIsRefused() throws {
        let file = try GGUFFile(url: RealModel.smollm2.url())
        var writer = try GGUFWriter(copying: file)
        writer.set("llama.context_length", .uint64(UInt64(Int.max)))
        let big = try GGUFFile(bytes: writer.serialized())
        for (context, overflows) in [(1 << 36, false), (Int.max - 10, true), (Int.max, true), (1 << 50, true)] {
            XCTAssertThrowsError(try Transformer.load(gguf: big, contextLength: context)) { error in
                guard case let .kvCacheLimit(what, needed, _, limit)? = error as? SwiftletError else { return XCTFail("\(error)") }
                XCTAssertTrue(what.contains("context length \(context)"), what)
                XCTAssertEqual(needed == .max, overflows, "\(context): \(needed)")
                XCTAssertLessThan(limit, Int(ProcessInfo.processInfo.physicalMemory))
                XCTAssertTrue("\(error)".contains("SWIFTLET_KV_CACHE_LIMIT"), "\(error)")
            }
        }
    }

    /// llama.cpp refuses a file whose tokenizer and embedding disagree; accepting it would let
    /// generated ids beyond the tokenizer decode to nothing.
    func testTokenizerSmallerOrLargerThanEmbeddingIsRefused() throws {
        let file = try GGUFFile(url: RealModel.smollm2.url())
        let tokens = try file.stringArray("tokenizer.ggml.tokens")
        for changed in [Array(tokens.dropLast(7)), tokens + ["<extra>"]] {
            var writer = try GGUFWriter(copying: file)
            writer.set("tokenizer.ggml.tokens", .array(.string(changed)))
            let broken = try GGUFFile(bytes: writer.serialized())
            XCTAssertThrowsError(try Transformer.load(gguf: broken, contextLength: 16)) { error in
                guard case .malformedFile(_, let reason)? = error as? SwiftletError else { return XCTFail("\(error)") }
                XCTAssertTrue(reason.contains("\(changed.count) tokens"), reason)
            }
        }
    }

    func testInvalidSamplingOptionsAreNamedErrors() async throws {
        let model = try LanguageModel(url: RealModel.smollm2.url(), contextLength: 32)
        let cases: [(SamplingParameters, String)] = [
            (SamplingParameters(temperature: .nan), "temperature"),
            (SamplingParameters(temperature: .infinity), "temperature"),
            (SamplingParameters(topP: 2), "top-p"),
            (SamplingParameters(topP: -0.5), "top-p"),
            (SamplingParameters(minP: .nan), "min-p"),
            (SamplingParameters(repetitionPenalty: 0), "repeat penalty"),
            (SamplingParameters(repetitionPenalty: -1), "repeat penalty"),
            (SamplingParameters(presencePenalty: .nan), "presence penalty"),
            (SamplingParameters(frequencyPenalty: -.infinity), "frequency penalty"),
            (SamplingParameters(penaltyWindow: -3), "penalty window"),
            (SamplingParameters(penaltyWindow: .min), "penalty window"),
        ]
        for (sampling, name) in cases {
            do {
                _ = try await generate(model, GenerationParameters(maxTokens: 4, sampling: sampling))
                XCTFail("\(name): \(sampling) was accepted")
            } catch let error as SwiftletError {
                guard case .invalidArgument(let what) = error else { XCTFail("\(error)"); continue }
                XCTAssertTrue(what.hasPrefix(name), what)
            }
        }
        // Meaningful edge values stay accepted.
        for sampling in [SamplingParameters(temperature: 0), SamplingParameters(temperature: -1, topK: -5, topP: 1, minP: 0),
                         SamplingParameters(topP: 0, minP: 1), SamplingParameters(repetitionPenalty: 1.3, penaltyWindow: -1)] {
            let (ids, _) = try await generate(model, GenerationParameters(maxTokens: 2, sampling: sampling, stopAtEndOfGeneration: false))
            XCTAssertEqual(ids.count, 2)
        }
    }
}
