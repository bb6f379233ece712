import ArgumentParser
import Foundation
import Swiftlet
import SwiftletBench

/// `swiftlet batched-bench`: llama-batched-bench's table for batched decoding.
struct BatchedBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batched-bench",
        abstract: "Aggregate speed of several sequences decoded together, as llama-batched-bench measures it.",
        discussion: """
            For every combination of -npp, -ntg and -npl: B sequences each evaluate a prompt of PP \
            random tokens, then TG decode steps each run one token of all B sequences in one batched \
            forward pass (each sequence with its own KV cache and position). S t/s counts every \
            prompt and generated token of all sequences over the whole time. A warm-up run precedes \
            the table.
            """)

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: .customLong("npp", withSingleDash: true), help: "Prompt tokens per sequence (comma-separated).")
    var npp = "128"
    @Option(name: .customLong("ntg", withSingleDash: true), help: "Generated tokens per sequence (comma-separated).")
    var ntg = "128"
    @Option(name: .customLong("npl", withSingleDash: true), help: "Sequences decoded together (comma-separated).")
    var npl = "1,2,4,8"
    @Option(name: [.short, .customLong("threads")], help: "Threads. Default: physical cores.")
    var t: Int?
    @Option(name: [.short, .customLong("output")], help: "Output format: md or jsonl.")
    var o = "md"
    @Flag(name: .customLong("verify"), help: "Instead of timing: check that every batched step's logits equal each sequence's lone decode, bit for bit.")
    var verify = false
    @OptionGroup var cacheLimit: KVCacheLimitOptions

    func run() throws {
        let prompts = try BenchCommand.list(npp, "-npp"), gens = try BenchCommand.list(ntg, "-ntg")
        let batches = try BenchCommand.list(npl, "-npl")
        guard prompts.allSatisfy({ $0 > 0 }), batches.allSatisfy({ $0 > 0 && $0 <= 512 }) else {
            throw ValidationError("-npp values must be positive and -npl values in 1...512")
        }
        guard o == "md" || o == "jsonl" else { throw ValidationError("-o must be md or jsonl") }
        let threads = t ?? ComputePool.defaultThreadCount
        guard threads > 0, threads <= 256 else { throw ValidationError("-t must be in 1...256") }
        let context = (prompts.max() ?? 1) + (gens.max() ?? 0)
        let transformer = try Transformer.load(gguf: GGUFFile(url: URL(fileURLWithPath: m)), contextLength: context,
                                               maxBatch: max(prompts.max() ?? 1, batches.max() ?? 1),
                                               pool: ComputePool(threadCount: threads))
        var random = SplitMix64(seed: 1234)
        if verify {
            for b in batches {
                let (compared, mismatches) = try BatchedBench.verify(transformer, prompt: min(prompts[0], context - 16),
                                                                     generate: min(gens.max() ?? 8, 8), sequences: b, random: &random)
                print("\(b) sequences: \(mismatches) of \(compared) logits differ from a lone decode")
                if mismatches > 0 { throw ExitCode.failure }
            }
            return
        }
        _ = try BatchedBench.run(transformer, prompt: min(prompts[0], 16), generate: 4, sequences: batches.max() ?? 1, random: &random)
        if o == "md" { print(BatchedBenchResult.markdownHeader) }
        for p in prompts {
            for g in gens {
                for b in batches {
                    let r = try BatchedBench.run(transformer, prompt: p, generate: g, sequences: b, random: &random)
                    if o == "md" {
                        print(r.markdownRow)
                    } else {
                        print(String(format: #"{"n_kv_max": %d, "n_threads": %d, "pp": %d, "tg": %d, "pl": %d, "n_kv": %d, "t_pp": %.6f, "speed_pp": %.6f, "t_tg": %.6f, "speed_tg": %.6f, "t": %.6f, "speed": %.6f}"#,
                                     context, threads, p, g, b, r.kvPositions, r.promptSeconds, r.promptTokensPerSecond,
                                     r.generateSeconds, r.generateTokensPerSecond, r.totalSeconds, r.tokensPerSecond))
                    }
                }
            }
        }
    }
}
