import Foundation
import Swiftlet

/// One llama-bench style test: `pp<prompt>` (a batch of `prompt` tokens), `tg<generate>`
/// (`generate` tokens decoded one at a time) or both (`-pg`), after `depth` cached tokens, on
/// `threads` threads, with llama-bench's context parameters (`-b`, `-ub`, `-ctk`, `-ctv`, `-fa`).
public struct BenchTest: Sendable, Equatable, Hashable {
    /// Prompt tokens evaluated as one batch (0 for a generation test).
    public var prompt: Int
    /// Tokens decoded one at a time (0 for a prompt test).
    public var generate: Int
    public var threads: Int
    /// Tokens already in the cache when the timed part starts (`-d`, llama-bench's `n_depth`).
    public var depth: Int
    /// Tokens per evaluate call of a prompt (`-b`, `n_batch`).
    public var batch: Int
    /// Tokens per forward pass (`-ub`, `n_ubatch`).
    public var ubatch: Int
    /// Cache types (`-ctk`, `-ctv`).
    public var typeK: KVCacheType
    public var typeV: KVCacheType
    /// `-fa`: llama.cpp's flash-attention setting, -1 auto (on, as on a CPU), 0 off, 1 on.
    public var flashAttention: Int

    public init(prompt: Int = 0, generate: Int = 0, threads: Int, depth: Int = 0, batch: Int = 2048, ubatch: Int = 512,
                typeK: KVCacheType = .f16, typeV: KVCacheType = .f16, flashAttention: Int = -1) {
        self.prompt = prompt; self.generate = generate; self.threads = threads; self.depth = depth
        self.batch = batch; self.ubatch = ubatch; self.typeK = typeK; self.typeV = typeV; self.flashAttention = flashAttention
    }

    /// llama-bench's name: `pp512`, `tg128`, or `pp512+tg128`, then ` @ d4096` at a depth.
    public var name: String {
        let base: String
        switch (prompt, generate) {
        case (_, 0): base = "pp\(prompt)"
        case (0, _): base = "tg\(generate)"
        default: base = "pp\(prompt)+tg\(generate)"
        }
        return depth > 0 ? base + " @ d\(depth)" : base
    }

    /// Whether the test attends with flash attention (auto means on, as llama.cpp on a CPU).
    public var usesFlashAttention: Bool { flashAttention != 0 }

    /// Positions the test's context needs (llama-bench's `n_ctx`).
    /// Saturates at `Int.max` (which no model holds) rather than overflowing.
    public var contextNeeded: Int {
        let (tokens, overflow) = prompt.addingReportingOverflow(generate)
        let (total, overflowDepth) = tokens.addingReportingOverflow(depth)
        return overflow || overflowDepth ? .max : total
    }

    /// Tokens the test processes (the numerator of its tokens/s).
    public var tokenCount: Int { prompt + generate }

    /// llama-bench's test list for its comma-separated options, in its order: for each `-b`,
    /// `-ub`, `-ctk`, `-ctv`, `-fa`, `-t` and `-d` value (outermost first), one prompt test per
    /// positive `-p`, one generation test per positive `-n`, one combined test per `-pg` pair.
    public static func grid(prompts: [Int], generates: [Int], promptGenerates: [(Int, Int)] = [], threads: [Int],
                            depths: [Int] = [0], batches: [Int] = [2048], ubatches: [Int] = [512],
                            typesK: [KVCacheType] = [.f16], typesV: [KVCacheType] = [.f16],
                            flashAttention: [Int] = [-1]) -> [BenchTest] {
        var tests: [BenchTest] = []
        for b in batches { for ub in ubatches { for tk in typesK { for tv in typesV { for fa in flashAttention {
            for t in threads { for d in depths {
                func test(_ p: Int, _ n: Int) -> BenchTest {
                    BenchTest(prompt: p, generate: n, threads: t, depth: d, batch: b, ubatch: ub, typeK: tk, typeV: tv,
                              flashAttention: fa)
                }
                for p in prompts where p > 0 { tests.append(test(p, 0)) }
                for n in generates where n > 0 { tests.append(test(0, n)) }
                for (p, n) in promptGenerates where p > 0 || n > 0 { tests.append(test(p, n)) }
            } }
        } } } } }
        return tests
    }
}

/// The timings of one test: one wall-clock sample per repetition.
public struct BenchResult: Sendable {
    public var test: BenchTest
    /// Nanoseconds per repetition.
    public var samplesNs: [UInt64]
    /// When the test started (ISO 8601, UTC), as llama-bench's `test_time`.
    public var testTime: String

    public init(test: BenchTest, samplesNs: [UInt64], testTime: String) {
        self.test = test; self.samplesNs = samplesNs; self.testTime = testTime
    }

    /// Tokens per second of each repetition.
    public var samplesTs: [Double] {
        samplesNs.map { Double(test.tokenCount) * 1e9 / Double(max($0, 1)) }
    }
    public var averageNs: Double { BenchStatistics.mean(samplesNs.map { Double($0) }) }
    public var stddevNs: Double { BenchStatistics.sampleStddev(samplesNs.map { Double($0) }) }
    /// Mean of the per-repetition tokens/s (llama-bench averages the rates, not the times).
    public var averageTs: Double { BenchStatistics.mean(samplesTs) }
    public var stddevTs: Double { BenchStatistics.sampleStddev(samplesTs) }
}

/// Mean and sample standard deviation as llama-bench computes them.
public enum BenchStatistics {
    public static func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
    /// Standard deviation with Bessel's correction; 0 for fewer than two samples.
    public static func sampleStddev(_ v: [Double]) -> Double {
        guard v.count > 1 else { return 0 }
        let m = mean(v)
        let squares = v.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (squares / Double(v.count - 1)).squareRoot()
    }
}

/// What llama-bench reports about the model, plus the bytes one decoded token streams.
public struct BenchModelInfo: Sendable {
    /// File name without directory (`model_filename`).
    public var filename: String
    /// llama.cpp's description: architecture, size label, file type (`llama 135M Q4_1`).
    public var type: String
    /// Bytes of all tensors (`model_size`).
    public var sizeBytes: Int
    /// Elements of all tensors (`model_n_params`).
    public var parameterCount: Int
    /// Size of the file on disk.
    public var fileBytes: Int
    /// Weight bytes a decode step reads: every block matrix, the unembedding, one embedding row.
    public var decodeWeightBytes: Int

    /// Reads the descriptive fields from `file`; `weights` gives the decode traffic.
    public init(file: GGUFFile, weights: TransformerWeights) {
        filename = file.url?.lastPathComponent ?? "<memory>"
        sizeBytes = file.tensors.reduce(0) { $0 + $1.byteCount }
        parameterCount = file.tensors.reduce(0) { $0 + $1.elementCount }
        fileBytes = file.fileSize
        let arch = file.architecture ?? "?"
        let label = (try? file.stringIfPresent("general.size_label")) ?? nil
        let fileType = ((try? file.intIfPresent("general.file_type")) ?? nil).map(BenchModelInfo.fileTypeName) ?? "?"
        type = "\(arch) \(label ?? BenchModelInfo.sizeLabel(parameterCount)) \(fileType)"
        var bytes = weights.output.data.count + weights.tokenEmbedding.rowBytes
        for l in weights.layers {
            for m in [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown] { bytes += m.data.count }
        }
        decodeWeightBytes = bytes
    }

    /// `135M`, `1.2B` from a parameter count.
    static func sizeLabel(_ n: Int) -> String {
        n >= 1_000_000_000 ? String(format: "%.1fB", Double(n) / 1e9) : "\(Int((Double(n) / 1e6).rounded()))M"
    }

    /// llama.cpp's name of a `general.file_type` (its `llama_ftype`).
    static func fileTypeName(_ ftype: Int) -> String {
        switch ftype {
        case 0: return "all F32"
        case 1: return "F16"
        case 2: return "Q4_0"
        case 3: return "Q4_1"
        case 7: return "Q8_0"
        case 8: return "Q5_0"
        case 9: return "Q5_1"
        case 10: return "Q2_K - Medium"
        case 11: return "Q3_K - Small"
        case 12: return "Q3_K - Medium"
        case 13: return "Q3_K - Large"
        case 14: return "Q4_K - Small"
        case 15: return "Q4_K - Medium"
        case 16: return "Q5_K - Small"
        case 17: return "Q5_K - Medium"
        case 18: return "Q6_K"
        case 32: return "BF16"
        default: return "ftype \(ftype)"
        }
    }
}

/// Load-to-first-token time and peak memory of a fresh load followed by generation.
public struct BenchLoadReport: Sendable {
    /// Opening the file, building the tokenizer and the transformer (with its KV cache).
    public var loadSeconds: Double
    /// From the start of the load to the logits of the prompt's last token (first token ready).
    public var firstTokenSeconds: Double
    public var promptTokens: Int
    public var generatedTokens: Int
    /// Peak resident set size of the process while loading and generating (`VmHWM`), if known.
    public var peakRSSBytes: Int?
    /// Resident set before the load (runtime, libraries), if known.
    public var baselineRSSBytes: Int?
    public var fileBytes: Int
    public var kvCacheBytes: Int
    /// The target: model file + KV cache + 64 MiB.
    public var rssBoundBytes: Int { fileBytes + kvCacheBytes + 64 << 20 }
}

/// llama-bench's method on a Swiftlet model: a warm-up run, then `repetitions` timed runs of each
/// test, each from an empty KV cache, on random token ids (no sampling), so the figures compare
/// line by line with `llama-bench -m FILE -p … -n … -t … -r …`.
///
/// ```swift
/// let bench = try LlamaBench(url: modelURL)
/// let result = try bench.run(BenchTest(generate: 128, threads: 2), repetitions: 5)
/// print(result.averageTs)
/// ```
public final class LlamaBench {
    public let file: GGUFFile
    public let model: BenchModelInfo
    /// What makes two tests need different transformers.
    private struct EngineKey: Hashable {
        var threads: Int, ubatch: Int, typeK: KVCacheType, typeV: KVCacheType, flashAttention: Bool
    }
    /// Transformers by thread count and context parameters, each with its own pool; built on
    /// first use. `filledDepth`: positions of random tokens each one's cache holds.
    private var engines: [EngineKey: Transformer] = [:]
    private var filledDepth: [EngineKey: Int] = [:]
    private let contextLength: Int
    private let maxBatch: Int
    private var random = SplitMix64(seed: 1234)

    /// Maps `url` and reads the model description.
    /// - Parameters:
    ///   - contextLength: KV-cache positions; must cover the largest test (`d + p + n`).
    ///   - maxBatch: tokens evaluated per batched step of ``transformer(threads:)`` (llama-bench's
    ///     `n_ubatch`, 512); tests bring their own.
    public init(url: URL, contextLength: Int = 1024, maxBatch: Int = 512) throws {
        file = try GGUFFile(url: url)
        self.contextLength = contextLength
        self.maxBatch = maxBatch
        let probe = try Transformer.load(gguf: file, contextLength: 1, maxBatch: 1, pool: ComputePool(threadCount: 1))
        model = BenchModelInfo(file: file, weights: probe.weights)
    }

    /// The transformer running on `threads` threads (f16 cache, no flash attention).
    public func transformer(threads: Int) throws -> Transformer {
        try engine(EngineKey(threads: threads, ubatch: maxBatch, typeK: .f16, typeV: .f16, flashAttention: false))
    }

    /// The transformer for `test`'s threads and context parameters.
    public func transformer(for test: BenchTest) throws -> Transformer {
        try engine(key(test))
    }

    private func key(_ test: BenchTest) -> EngineKey {
        EngineKey(threads: test.threads, ubatch: test.ubatch, typeK: test.typeK, typeV: test.typeV,
                  flashAttention: test.usesFlashAttention)
    }

    private func engine(_ key: EngineKey) throws -> Transformer {
        if let t = engines[key] { return t }
        guard key.threads > 0, key.threads <= 256 else {
            throw SwiftletError.invalidArgument("thread count \(key.threads) must be in 1...256")
        }
        guard key.ubatch > 0 else { throw SwiftletError.invalidArgument("n_ubatch must be positive") }
        let t = try Transformer.load(gguf: file, contextLength: contextLength, maxBatch: key.ubatch, cacheType: key.typeK,
                                     valueCacheType: key.typeV, flashAttention: key.flashAttention,
                                     pool: ComputePool(threadCount: key.threads))
        engines[key] = t
        return t
    }

    /// Runs `test` once untimed (llama-bench's warm-up: the prompt, or one generated token), then
    /// `repetitions` timed times.
    public func run(_ test: BenchTest, repetitions: Int, warmup: Bool = true) throws -> BenchResult {
        guard repetitions > 0 else { throw SwiftletError.invalidArgument("repetitions must be positive") }
        guard test.prompt >= 0, test.generate >= 0, test.batch > 0, test.depth >= 0 else {
            throw SwiftletError.invalidArgument("test \(test.name): negative count or n_batch not positive")
        }
        guard test.contextNeeded <= contextLength else {
            throw SwiftletError.contextOverflow(requested: test.contextNeeded, limit: contextLength)
        }
        guard test.tokenCount > 0 else { throw SwiftletError.invalidArgument("test \(test.name) has no tokens") }
        let key = key(test)
        let engine = try self.engine(key)
        let vocab = engine.config.vocabSize
        var prompt = (0..<test.prompt).map { _ in randomToken(vocab) }
        let generated = (0..<test.generate).map { _ in randomToken(vocab) }
        let startTime = ISO8601DateFormatter().string(from: Date())

        /// llama-bench's test_prompt: `n_batch` tokens per evaluate call.
        func evaluate(_ tokens: [TokenID], at start: Int) throws {
            var done = 0
            while done < tokens.count {
                let n = min(test.batch, tokens.count - done)
                try tokens[done ..< done + n].withUnsafeBufferPointer { try engine.evaluate($0, at: start + done, logits: .last) }
                done += n
            }
        }
        func once(prompt: [TokenID], generated: ArraySlice<TokenID>, at start: Int) throws {
            if !prompt.isEmpty { try evaluate(prompt, at: start) }
            for (i, token) in generated.enumerated() {
                _ = try engine.decode(token, at: start + prompt.count + i)
            }
        }
        if warmup {
            // From an empty cache, as llama-bench's warm-up: it overwrites any filled depth.
            try once(prompt: prompt, generated: generated.prefix(test.prompt > 0 ? 0 : 1), at: 0)
            filledDepth[key] = 0
        }
        // The depth is filled once (untimed) and kept: timed runs only write positions past it,
        // as llama-bench restores its saved state before each repetition.
        if test.depth > 0 && filledDepth[key] != test.depth {
            try evaluate((0..<test.depth).map { _ in randomToken(vocab) }, at: 0)
            filledDepth[key] = test.depth
        }
        var samples: [UInt64] = []
        samples.reserveCapacity(repetitions)
        for _ in 0..<repetitions {
            // Fresh token ids per repetition, as llama-bench draws them with rand().
            for i in prompt.indices { prompt[i] = randomToken(vocab) }
            let start = DispatchTime.now().uptimeNanoseconds
            try once(prompt: prompt, generated: generated[...], at: test.depth)
            samples.append(DispatchTime.now().uptimeNanoseconds - start)
        }
        filledDepth[key] = test.depth
        return BenchResult(test: test, samplesNs: samples, testTime: startTime)
    }

    private func randomToken(_ vocab: Int) -> TokenID { TokenID(random.next() % UInt64(vocab)) }

    /// Loads `url` from scratch (file, tokenizer, transformer with a cache of `prompt + generate`
    /// positions), times the load and the first token of `prompt`, then decodes `generate`
    /// tokens greedily, and reports the peak resident set. Run it first in a fresh process: the
    /// peak is process-wide (it is reset first where Linux allows).
    public static func measureLoad(url: URL, prompt: String = "Write a short poem about the sea.",
                                   generate: Int = 128, threads: Int = ComputePool.defaultThreadCount) throws -> BenchLoadReport {
        ProcessMemory.resetPeak()
        let baseline = ProcessMemory.residentBytes
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

        guard (0...Int(Int32.max)).contains(generate) else {
            throw SwiftletError.invalidArgument("load measurement: \(generate) tokens to generate")
        }
        let file = try GGUFFile(url: url)
        let tokenizer = try Tokenizers.load(gguf: file)
        let promptTokens = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
        let transformer = try Transformer.load(gguf: file, contextLength: max(promptTokens.count + generate, 1),
                                               pool: ComputePool(threadCount: threads))
        let loaded = seconds()
        let session = GenerationSession(transformer: transformer)
        var logits = try session.prefill(promptTokens).logits
        var token = argmax(logits)
        let firstToken = seconds()
        for _ in 0..<generate where session.remainingContext > 0 {
            logits = try session.step(token)
            token = argmax(logits)
        }
        return BenchLoadReport(loadSeconds: loaded, firstTokenSeconds: firstToken, promptTokens: promptTokens.count,
                               generatedTokens: generate, peakRSSBytes: ProcessMemory.peakResidentBytes,
                               baselineRSSBytes: baseline, fileBytes: file.fileSize,
                               kvCacheBytes: transformer.cache.byteCount)
    }

    private static func argmax(_ v: UnsafeBufferPointer<Float>) -> TokenID {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return TokenID(best)
    }
}

