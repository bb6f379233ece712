import ArgumentParser
import Foundation
import Swiftlet
import SwiftletBench

/// `swiftlet bench`: llama-bench's method, columns and output formats, plus the memory-bandwidth
/// bound, load-to-first-token time and peak RSS.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Prompt (pp) and generation (tg) speed, as llama-bench measures it.",
        discussion: """
            Each test runs once untimed, then -r timed repetitions from an empty KV cache on random \
            token ids: ppP evaluates P prompt tokens as one batch, tgN decodes N tokens one at a time. \
            t/s is the mean ± sample standard deviation over repetitions. -p, -n and -t take \
            comma-separated lists. After the table: the streaming-read memory bandwidth measured in \
            the same run and the decode speed as a fraction of its bound, the load-to-first-token \
            time and the peak RSS of a fresh load generating tokens.
            """)

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: [.short, .customLong("n-prompt")], help: "Prompt tokens per pp test (comma-separated; 0 = none).")
    var p: String = "512"
    @Option(name: [.short, .customLong("n-gen")], help: "Generated tokens per tg test (comma-separated; 0 = none).")
    var n: String = "128"
    @Option(name: .customLong("pg", withSingleDash: true), help: "Prompt and generation in one test, PP,TG (repeatable).")
    var pg: [String] = []
    @Option(name: [.short, .customLong("n-depth")], help: "Tokens cached before each test (comma-separated).")
    var d: String = "0"
    @Option(name: [.short, .customLong("threads")], help: "Threads (comma-separated). Default: physical cores.")
    var t: String?
    @Option(name: [.short, .customLong("batch-size")], help: "Prompt tokens per evaluate call (comma-separated).")
    var b: String = "2048"
    @Option(name: [.customLong("ub", withSingleDash: true), .customLong("ubatch-size")],
            help: "Tokens per forward pass (comma-separated).")
    var ub: String = "512"
    @Option(name: [.customLong("ctk", withSingleDash: true), .customLong("cache-type-k")],
            help: "KV cache type for K (comma-separated): \(KVCacheType.names).")
    var ctk: String = "f16"
    @Option(name: [.customLong("ctv", withSingleDash: true), .customLong("cache-type-v")],
            help: "KV cache type for V (comma-separated): \(KVCacheType.names).")
    var ctv: String = "f16"
    @Option(name: [.customLong("fa", withSingleDash: true), .customLong("flash-attn")],
            help: "Flash attention (comma-separated): on, off or auto (default auto: on, as llama-bench on a CPU).")
    var fa: String = "auto"
    @Option(name: [.short, .customLong("repetitions")], help: "Timed repetitions per test.")
    var r: Int = 5
    @Option(name: [.short, .customLong("output")], help: "Output format: md, json, jsonl or csv.")
    var o: String = "md"
    @Flag(name: .customLong("no-warmup"), help: "Skip the untimed warm-up run.")
    var noWarmup = false
    @Flag(name: .customLong("load"), help: "Only measure load-to-first-token and peak RSS.")
    var loadOnly = false
    @Flag(name: .customLong("no-extras"), help: "Skip the bandwidth, load and RSS measurements.")
    var noExtras = false
    @Option(name: .customLong("grammar-file"), help: "Instead of the grid: greedy decode speed under this GBNF grammar vs unconstrained (same prompt, -n tokens).")
    var grammarFile: String?
    @Option(name: .customLong("grammar-prompt"), help: "Prompt for --grammar-file.")
    var grammarPrompt = "A JSON object describing a person:"

    func run() throws {
        if let grammarFile { return try runGrammar(grammarFile) }
        guard let format = BenchReport.Format(rawValue: o) else {
            throw ValidationError("-o must be one of \(BenchReport.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let prompts = try Self.list(p, "-p"), gens = try Self.list(n, "-n"), depths = try Self.list(d, "-d")
        let promptGenerates = try pg.map { item -> (Int, Int) in
            let pair = try Self.list(item, "-pg")
            guard pair.count == 2 else { throw ValidationError("-pg takes PP,TG, got '\(item)'") }
            return (pair[0], pair[1])
        }
        let batches = try Self.list(b, "-b"), ubatches = try Self.list(ub, "-ub")
        guard (batches + ubatches).allSatisfy({ $0 > 0 }) else { throw ValidationError("-b and -ub values must be positive") }
        let typesK = try ctk.split(separator: ",").map { try AttentionOptions.type(String($0), flag: "-ctk") }
        let typesV = try ctv.split(separator: ",").map { try AttentionOptions.type(String($0), flag: "-ctv") }
        let flash = try fa.split(separator: ",").map { item -> Int in
            guard let mode = FlashAttentionMode(argument: String(item)) else { throw ValidationError("-fa takes on, off or auto, got '\(item)'") }
            return mode == .auto ? -1 : mode == .on ? 1 : 0
        }
        let threads = try t.map { try Self.list($0, "-t") } ?? [ComputePool.defaultThreadCount]
        guard threads.allSatisfy({ $0 > 0 && $0 <= 256 }) else { throw ValidationError("-t values must be in 1...256") }
        guard (1...10_000).contains(r) else { throw ValidationError("-r must be in 1...10000") }
        let url = URL(fileURLWithPath: m)

        // The load measurement runs first, in the fresh process, so its peak RSS is its own.
        let load = noExtras ? nil : try LlamaBench.measureLoad(url: url, generate: gens.max().map { max($0, 1) } ?? 128,
                                                               threads: threads[0])
        if loadOnly, let load {
            let bench = try LlamaBench(url: url, contextLength: 1)
            print(BenchReport(model: bench.model, results: [], load: load).footer().joined(separator: "\n"))
            return
        }
        let tests = BenchTest.grid(prompts: prompts, generates: gens, promptGenerates: promptGenerates, threads: threads,
                                   depths: depths, batches: batches, ubatches: ubatches, typesK: typesK, typesV: typesV,
                                   flashAttention: flash)
        let context = max(tests.map(\.contextNeeded).max() ?? 1, 1)
        let bench = try LlamaBench(url: url, contextLength: context)
        var results: [BenchResult] = []
        for test in tests {
            let result = try bench.run(test, repetitions: r, warmup: !noWarmup)
            if format == .md {
                FileHandle.standardError.write(Data(String(format: "%@ @ %d threads: %.2f ± %.2f t/s\n",
                                                           test.name, test.threads, result.averageTs, result.stddevTs).utf8))
            }
            results.append(result)
        }
        let bandwidth = noExtras ? nil : MemoryBandwidth.measure(threads: 2)
        let report = BenchReport(model: bench.model, results: results, memoryBandwidth: bandwidth, bandwidthThreads: 2, load: load)
        print(report.render(format), terminator: "")
    }

    /// Greedy decoding of the same prompt with and without the grammar, alternating, `-r`
    /// times each after a warm-up pair; decode t/s excludes prefill and counts the constraint's
    /// whole cost (mask building, cache lookups, token checks).
    func runGrammar(_ path: String) throws {
        let constraint = GenerationConstraint.grammar(try String(contentsOfFile: path, encoding: .utf8))
        try constraint.checkSyntax()
        let tokens = try Self.list(n, "-n").first ?? 128
        guard r > 0, tokens > 1 else { throw ValidationError("-r must be positive and -n above 1") }
        let model = try LanguageModel(url: URL(fileURLWithPath: m), contextLength: 2048)
        final class Box: @unchecked Sendable { var stats: GenerationStatistics?; var ids: [TokenID] = [] }  // filled by the generation task, read after `runBlocking` returns
        func once(_ c: GenerationConstraint?) throws -> (Double, Int, StopReason) {
            let box = Box()
            let p = GenerationParameters(maxTokens: tokens, sampling: .greedy, stopAtEndOfGeneration: false, constraint: c)
            try runBlocking {
                for try await chunk in model.generate(prompt: grammarPrompt, parameters: p) {
                    box.ids += chunk.tokenIDs
                    if let s = chunk.statistics { box.stats = s }
                }
            }
            return (box.stats?.generatedTokensPerSecond ?? 0, box.ids.count, box.stats?.stopReason ?? .maxTokens)
        }
        var free: [Double] = [], constrained: [Double] = [], ratios: [Double] = []
        for rep in 0...r {
            let a = try once(nil), b = try once(constraint)
            FileHandle.standardError.write(Data(String(format: "rep %d: free %.2f t/s, grammar %.2f t/s (%d tokens, %@)\n",
                                                       rep, a.0, b.0, b.1, b.2.rawValue).utf8))
            if rep == 0 && !noWarmup { continue }
            free.append(a.0); constrained.append(b.0); ratios.append(b.0 / a.0)
        }
        let name = URL(fileURLWithPath: path).lastPathComponent
        print("| model | test | free t/s | grammar t/s | grammar / free |")
        print("| --- | --- | ---: | ---: | ---: |")
        print(String(format: "| %@ | tg%d greedy, %@ | %.2f ± %.2f | %.2f ± %.2f | %.3f (min %.3f, max %.3f) |",
                     URL(fileURLWithPath: m).lastPathComponent, tokens, name,
                     BenchStatistics.mean(free), BenchStatistics.sampleStddev(free),
                     BenchStatistics.mean(constrained), BenchStatistics.sampleStddev(constrained),
                     BenchStatistics.mean(ratios), ratios.min() ?? 0, ratios.max() ?? 0))
    }

    /// Parses llama-bench's comma-separated integer lists.
    /// The largest count any list option takes: far above every model's context, and small
    /// enough that sums of a few of them cannot overflow.
    static let maxListValue = 1 << 24

    static func list(_ text: String, _ option: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw ValidationError("\(option) takes comma-separated non-negative integers, got '\(text)'")
        }
        guard values.allSatisfy({ $0! <= maxListValue }) else {
            throw ValidationError("\(option) values must be at most \(maxListValue), got '\(text)'")
        }
        return values.map { $0! }
    }
}
