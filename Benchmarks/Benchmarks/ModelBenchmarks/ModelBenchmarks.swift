// package-benchmark suite end to end on the real models (found through SWIFTLET_MODELS_DIR, as
// the tests find them; skipped when absent): llama-bench's pp and tg tests through
// `LlamaBench`; attention cost as one decode step deep in the context versus at position 0, over
// the f16 cache and over a q8_0 cache with flash attention; and batched decode (four sequences,
// one forward pass per step) as `BatchedBench` runs it.
// Thresholds: a p50 regression beyond `SWIFTLET_BENCH_TOLERANCE` percent (default 10) fails
// `swift package benchmark baseline check`.
import Benchmark
import Foundation
import Swiftlet
import SwiftletBench

let environment = ProcessInfo.processInfo.environment
let tolerance = Double(environment["SWIFTLET_BENCH_TOLERANCE"] ?? "") ?? 10
let smoke = environment["SWIFTLET_BENCH_SMOKE"] == "1"

/// The model file `relative` under the models directory, if present.
func modelURL(_ relative: String) -> URL? {
    let roots = [environment["SWIFTLET_MODELS_DIR"], "../Models/cache", "Models/cache"].compactMap { $0 }
    for root in roots {
        let url = URL(fileURLWithPath: root).appendingPathComponent(relative)
        if FileManager.default.fileExists(atPath: url.path) { return url }
    }
    return nil
}

let models: [(name: String, path: String)] = [
    ("SmolLM2-135M Q4_1", "smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("Gemma3-270M Q4_K_M", "gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf"),
]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput], warmupIterations: 1,
        maxDuration: .seconds(smoke ? 1 : 5), maxIterations: smoke ? 3 : 20,
        thresholds: [.wallClock: .init(relative: [.p50: tolerance]), .throughput: .init(relative: [.p50: tolerance])])

    let prompt = smoke ? 64 : 512, generate = smoke ? 16 : 128, depth = smoke ? 256 : 1024
    for model in models.prefix(smoke ? 1 : models.count) {
        guard let url = modelURL(model.path) else {
            print("ModelBenchmarks: \(model.path) not found under SWIFTLET_MODELS_DIR; skipping \(model.name)")
            continue
        }
        for threads in smoke ? [2] : [1, 2] {
            for test in [BenchTest(prompt: prompt, threads: threads), BenchTest(generate: generate, threads: threads)] {
                // One iteration = one llama-bench repetition; throughput ×tokens = tokens/s.
                Benchmark("\(model.name) \(test.name) t\(threads)",
                          closure: { benchmark, bench in
                              for _ in benchmark.scaledIterations {
                                  do { blackHole(try bench.run(test, repetitions: 1, warmup: false)) }
                                  catch { benchmark.error("\(error)") }
                              }
                          },
                          setup: { try LlamaBench(url: url, contextLength: max(prompt, generate, depth + 1)) })
            }
        }
        // Attention: one decode step at `depth` (the cache filled once in setup) vs at position 0,
        // over the default f16 cache and over q8_0 K and V with flash attention (`-ctk q8_0 -ctv q8_0 -fa 1`).
        for (position, quantized) in [(0, false), (depth, false), (depth, true)] {
            Benchmark("\(model.name) decode @ depth \(position)\(quantized ? " q8_0 cache" : "") t2",
                      configuration: .init(maxIterations: smoke ? 20 : 200),
                      closure: { benchmark, engine in
                          for _ in benchmark.scaledIterations {
                              do { blackHole(try engine.decode(1, at: position)[0]) }
                              catch { benchmark.error("\(error)") }
                          }
                      },
                      setup: { () throws -> Transformer in
                          let bench = try LlamaBench(url: url, contextLength: depth + 1)
                          let engine = quantized
                              ? try bench.transformer(for: BenchTest(generate: 1, threads: 2, typeK: .q8_0, typeV: .q8_0, flashAttention: 1))
                              : try bench.transformer(threads: 2)
                          if position > 0 {
                              let tokens = (0..<position).map { TokenID($0 % engine.config.vocabSize) }
                              try tokens.withUnsafeBufferPointer { try engine.evaluate($0, at: 0) }
                          }
                          return engine
                      })
        }
        // Batched decode: 4 sequences after 32-token prompts, 16 steps of one forward pass each
        // (llama-batched-bench's -npp 32 -ntg 16 -npl 4); throughput counts every token.
        let sequences = 4, batchedPrompt = 32, batchedSteps = 16
        Benchmark("\(model.name) batched decode \(sequences)x(pp\(batchedPrompt)+tg\(batchedSteps)) t2",
                  configuration: .init(maxIterations: smoke ? 3 : 20),
                  closure: { benchmark, engine in
                      var random = SplitMix64(seed: 1)
                      for _ in benchmark.scaledIterations {
                          do {
                              blackHole(try BatchedBench.run(engine, prompt: batchedPrompt, generate: batchedSteps,
                                                             sequences: sequences, random: &random))
                          } catch { benchmark.error("\(error)") }
                      }
                  },
                  setup: { try LlamaBench(url: url, contextLength: batchedPrompt + batchedSteps).transformer(threads: 2) })
    }
}
