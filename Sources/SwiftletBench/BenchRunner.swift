import Foundation
import Swiftlet

/// One llama-bench style test: `pp<prompt>` (a batch of `prompt` tokens from an empty cache) or
/// `tg<generate>` (`generate` tokens decoded one at a time from an empty cache), on `threads`
/// threads.
public struct BenchTest: Sendable, Equatable, Hashable {
    /// Prompt tokens evaluated as one batch (0 for a generation test).
    public var prompt: Int
    /// Tokens decoded one at a time (0 for a prompt test).
    public var generate: Int
    public var threads: Int

    public init(prompt: Int = 0, generate: Int = 0, threads: Int) {
        self.prompt = prompt; self.generate = generate; self.threads = threads
    }

    /// llama-bench's name: `pp512`, `tg128`, or `pp512+tg128`.
    public var name: String {
        switch (prompt, generate) {
        case (_, 0): return "pp\(prompt)"
        case (0, _): return "tg\(generate)"
        default: return "pp\(prompt)+tg\(generate)"
        }
    }

    /// Tokens the test processes (the numerator of its tokens/s).
    public var tokenCount: Int { prompt + generate }

    /// llama-bench's test list for comma-separated `-p`, `-n`, `-t` values: per thread count, one
    /// prompt test per positive `-p` then one generation test per positive `-n`.
    public static func grid(prompts: [Int], generates: [Int], threads: [Int]) -> [BenchTest] {
        var tests: [BenchTest] = []
        for t in threads {
            for p in prompts where p > 0 { tests.append(BenchTest(prompt: p, threads: t)) }
            for n in generates where n > 0 { tests.append(BenchTest(generate: n, threads: t)) }
        }
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
    /// Transformers by thread count, each with its own pool; built on first use.
    private var engines: [Int: Transformer] = [:]
    private let contextLength: Int
    private let maxBatch: Int
    private var random = SplitMix64(seed: 1234)

    /// Maps `url` and reads the model description.
    /// - Parameters:
    ///   - contextLength: KV-cache positions; must cover the largest test (`p + n`).
    ///   - maxBatch: tokens evaluated per batched step (llama-bench's `n_ubatch`, 512).
    public init(url: URL, contextLength: Int = 1024, maxBatch: Int = 512) throws {
        file = try GGUFFile(url: url)
        self.contextLength = contextLength
        self.maxBatch = maxBatch
        let probe = try Transformer.load(gguf: file, contextLength: 1, maxBatch: 1, pool: ComputePool(threadCount: 1))
        model = BenchModelInfo(file: file, weights: probe.weights)
    }

    /// The transformer running on `threads` threads.
    public func transformer(threads: Int) throws -> Transformer {
        if let t = engines[threads] { return t }
        guard threads > 0, threads <= 256 else { throw SwiftletError.invalidArgument("thread count \(threads) must be in 1...256") }
        let t = try Transformer.load(gguf: file, contextLength: contextLength, maxBatch: maxBatch,
                                     pool: ComputePool(threadCount: threads))
        engines[threads] = t
        return t
    }

    /// Runs `test` once untimed (llama-bench's warm-up: the prompt, or one generated token), then
    /// `repetitions` timed times.
    public func run(_ test: BenchTest, repetitions: Int, warmup: Bool = true) throws -> BenchResult {
        guard repetitions > 0 else { throw SwiftletError.invalidArgument("repetitions must be positive") }
        guard test.prompt >= 0, test.generate >= 0, test.tokenCount > 0 else {
            throw SwiftletError.invalidArgument("test \(test.name) has no tokens")
        }
        guard test.tokenCount <= contextLength else {
            throw SwiftletError.contextOverflow(requested: test.tokenCount, limit: contextLength)
        }
        let engine = try transformer(threads: test.threads)
        let vocab = engine.config.vocabSize
        var prompt = (0..<test.prompt).map { _ in randomToken(vocab) }
        let generated = (0..<test.generate).map { _ in randomToken(vocab) }
        let startTime = ISO8601DateFormatter().string(from: Date())

        func once(prompt: [TokenID], generated: ArraySlice<TokenID>) throws {
            if !prompt.isEmpty {
                try prompt.withUnsafeBufferPointer { try engine.evaluate($0, at: 0, logits: .last) }
            }
            for (i, token) in generated.enumerated() {
                _ = try engine.decode(token, at: prompt.count + i)
            }
        }
        if warmup {
            try once(prompt: prompt, generated: generated.prefix(test.prompt > 0 ? 0 : 1))
        }
        var samples: [UInt64] = []
        samples.reserveCapacity(repetitions)
        for _ in 0..<repetitions {
            // Fresh token ids per repetition, as llama-bench draws them with rand().
            for i in prompt.indices { prompt[i] = randomToken(vocab) }
            let start = DispatchTime.now().uptimeNanoseconds
            try once(prompt: prompt, generated: generated[...])
            samples.append(DispatchTime.now().uptimeNanoseconds - start)
        }
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

