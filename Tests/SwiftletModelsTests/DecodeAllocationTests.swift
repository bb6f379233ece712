import XCTest
import Foundation
import Synchronization
import SwiftletModels
import SwiftletFormats
import SwiftletTensor
import SwiftletTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Counts Swift heap allocations (class instances, array and string buffers, closure contexts,
/// boxes) by hooking the runtime's `_swift_allocObject` entry point, which the Swift runtime
/// exports as a replaceable function pointer for exactly this kind of instrumentation.
enum AllocationCounter {
    typealias AllocObject = @convention(c) (UnsafeRawPointer?, Int, Int) -> UnsafeMutableRawPointer?
    nonisolated(unsafe) static var original: AllocObject?
    static let count = Atomic<Int>(0)
    static let slot: UnsafeMutablePointer<AllocObject?>? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "_swift_allocObject") else { return nil }
        return symbol.assumingMemoryBound(to: AllocObject?.self)
    }()
    static var available: Bool { slot?.pointee != nil }

    /// Swift heap allocations made (on any thread) while running `body`; the hook is installed
    /// only for the duration of the call.
    static func allocations(_ body: () throws -> Void) rethrows -> Int {
        guard let slot, let saved = slot.pointee else { return -1 }
        original = saved
        count.store(0, ordering: .sequentiallyConsistent)
        slot.pointee = { metadata, size, alignMask in
            AllocationCounter.count.add(1, ordering: .relaxed)
            return AllocationCounter.original!(metadata, size, alignMask)
        }
        defer { slot.pointee = saved }
        try body()
        return count.load(ordering: .sequentiallyConsistent)
    }
}

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
        let count = try AllocationCounter.allocations {
            for _ in 0..<steps {
                let t = session.tokens.withUnsafeBufferPointer { sampler.sample(logits, history: $0) }
                logits = try session.step(t)
            }
        }
        print("ALLOCATIONS \(name): \(count) Swift heap allocations in \(steps) decode steps")
        XCTAssertEqual(count, 0, "\(name): decode allocated \(count) objects in \(steps) steps")
    }

    func testTinyModelDecodeDoesNotAllocate() throws {
        let serial = ComputePool(threadCount: 1)
        try assertDecodeDoesNotAllocate(TinyModel.transformer(.gemma3, contextLength: 32, pool: serial), name: "tiny gemma3")
        try assertDecodeDoesNotAllocate(TinyModel.transformer(.llama, contextLength: 32, pool: serial), name: "tiny llama")
    }

    func testSmolLM2DecodeDoesNotAllocate() throws {
        try assertDecodeDoesNotAllocate(Transformer.load(gguf: GGUFFile(url: RealModel.smollm2.url()), contextLength: 64, pool: ComputePool(threadCount: 1)), name: "SmolLM2")
    }
}
