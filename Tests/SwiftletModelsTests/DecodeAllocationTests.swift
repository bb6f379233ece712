import XCTest
import Foundation
import SwiftletModels
import SwiftletFormats
import SwiftletTensor
import SwiftletTestSupport

final class DecodeAllocationTests: XCTestCase {
    private func assertDecodeDoesNotAllocate(_ transformer: Transformer, name: String) throws {
        guard AllocationCounter.available else { throw XCTSkip("runtime allocation hook unavailable") }
        let session = GenerationSession(transformer: transformer)
        let sampler = Sampler(parameters: SamplingParameters(temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05,
                                                             repetitionPenalty: 1.1, seed: 5),
                              vocabSize: transformer.config.vocabSize)
        var logits = try session.prefill([1, 2, 3, 4]).logits
        // Warm up (lazy one-time set-up in kernels and the pool).
        for _ in 0..<3 {
            let t = session.tokens.withUnsafeBufferPointer { sampler.sample(logits, history: $0) }
            logits = try session.step(t)
        }
        let steps = 16
        let count = try AllocationCounter.fewestAllocations {
            for _ in 0..<steps {
                let t = session.tokens.withUnsafeBufferPointer { sampler.sample(logits, history: $0) }
                logits = try session.step(t)
            }
        }
        print("ALLOCATIONS \(name): \(count) Swift heap allocations in \(steps) decode steps (fewest of 3 rounds)")
        XCTAssertEqual(count, 0, "\(name): decode allocated \(count) objects in \(steps) steps")
    }

    func testTinyModelDecodeDoesNotAllocate() throws {
        let serial = ComputePool(threadCount: 1)
        try assertDecodeDoesNotAllocate(TinyModel.transformer(.gemma3, contextLength: 64, pool: serial), name: "tiny gemma3")
        try assertDecodeDoesNotAllocate(TinyModel.transformer(.llama, contextLength: 64, pool: serial), name: "tiny llama")
    }

    func testSmolLM2DecodeDoesNotAllocate() throws {
        let model = try GGUFFile(url: RealModel.smollm2.url())
        try assertDecodeDoesNotAllocate(Transformer.load(gguf: model, contextLength: 64, pool: ComputePool(threadCount: 1)),
                                        name: "SmolLM2 serial")
        // The multi-threaded path too: a dispatch hands its closure to the workers without boxing it.
        try assertDecodeDoesNotAllocate(Transformer.load(gguf: model, contextLength: 64, pool: ComputePool(threadCount: 2)),
                                        name: "SmolLM2 2 threads")
    }
}
