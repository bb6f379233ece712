// Fixed, single-threaded workloads for the performance-regression gate (scripts/bench-gate.sh).
// Not part of any library product.
//
//   SwiftletGateWorkloads run GROUP [--repeat N]   run GROUP's workloads; each one's measured part
//                                                  runs once untimed, then once inside
//                                                  swiftlet_gate_region (callgrind counts only
//                                                  that), or with --repeat N, N timed times
//                                                  ("time NAME<tab>ns ns …" wall clock,
//                                                  "cpu NAME<tab>ns ns …" thread CPU time).
//   SwiftletGateWorkloads reference [--repeat N]   same-run references for the wall-clock gate:
//                                                  OpenBLAS sgemm and the streaming-read probe
//   SwiftletGateWorkloads groups                   the group names
//   SwiftletGateWorkloads path                     the kernel variants this process uses
//
// Models come from SWIFTLET_MODELS_DIR (default Models/cache). Each workload prints
// "workload NAME" just before its region, in region order.
import CSwiftletGateRegion
import CSwiftletKernels
import Foundation
import Swiftlet
import SwiftletBench

/// One measured piece of work. `body` must be repeatable with the same cost (the timed mode runs it
/// several times).
struct Workload {
    let name: String
    /// Whether to run `body` once before measuring (to keep lazily built tables out of the count);
    /// off for the long model runs, whose instruction budget matters more under callgrind.
    var warmup = true
    let body: () throws -> Void
}

/// Carries a workload body through the C region call.
final class RegionContext {
    let body: () throws -> Void
    var error: (any Error)?
    init(_ body: @escaping () throws -> Void) { self.body = body }
}

/// Runs `body` inside the callgrind-visible region.
func inRegion(_ body: @escaping () throws -> Void) throws {
    let context = RegionContext(body)
    let opaque = Unmanaged.passRetained(context).toOpaque()
    defer { Unmanaged<RegionContext>.fromOpaque(opaque).release() }
    swiftlet_gate_region({ raw in
        let context = Unmanaged<RegionContext>.fromOpaque(raw!).takeUnretainedValue()
        do { try context.body() } catch { context.error = error }
    }, opaque)
    if let error = context.error { throw error }
}

let modelsDirectory = URL(fileURLWithPath: ProcessInfo.processInfo.environment["SWIFTLET_MODELS_DIR"] ?? "Models/cache")
let smolLM2Path = "smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf"
let gemma3Path = "gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf"
let qwenPath = "qwen2.5-coder-0.5b-instruct-q4_k_m/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
let miniLMPath = "all-minilm-l6-v2"
/// The measured process runs on one thread: counts must not depend on scheduling.
let pool = ComputePool(threadCount: 1)

func model(_ relative: String) throws -> GGUFFile {
    let url = modelsDirectory.appendingPathComponent(relative)
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw SwiftletError.invalidArgument("gate workload model \(url.path) is missing (run make models)")
    }
    return try GGUFFile(url: url)
}

/// Deterministic token ids in 0..<vocab.
func fixedTokens(_ count: Int, vocab: Int, seed: UInt64) -> [Int] {
    var random = SplitMix64(seed: seed)
    return (0..<count).map { _ in Int(random.next() % UInt64(vocab)) }
}

// MARK: - Kernel families

/// A quantized matrix of a real model with buffers for `tokens` activation rows.
final class KernelFixture {
    let matrix: QuantizedMatrix
    let tokens: Int
    let x: UnsafeMutablePointer<Float>
    let y: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutableRawBufferPointer

    init(_ matrix: QuantizedMatrix, kernel: QuantKernel, tokens: Int) {
        var m = matrix
        m.kernel = kernel
        self.matrix = m
        self.tokens = tokens
        var random = SplitMix64(seed: 42)
        x = .allocate(capacity: matrix.cols * tokens)
        for i in 0..<(matrix.cols * tokens) { x[i] = Float(Int(random.next() % 2001) - 1000) / 1000 }
        y = .allocate(capacity: matrix.rows * tokens)
        scratch = .allocate(byteCount: max(QuantizedMatrix.activationScratchBytes(type: matrix.type, cols: matrix.cols, tokens: tokens), 64),
                            alignment: 64)
    }

    func run() { matrix.matmul(x, tokens: tokens, into: y, scratch: scratch, pool: pool) }

    deinit { x.deallocate(); y.deallocate(); scratch.deallocate() }
}

/// The first matrix of each weight type in the model's first layer, FFN first (and the output matrix when
/// asked), with a short label naming the tensor and shape.
func distinctMatrices(_ weights: TransformerWeights, includeOutput: Bool) -> [(String, QuantizedMatrix)] {
    let layer = weights.layers[0]
    var candidates: [(String, QuantizedMatrix)] = [
        ("ffn_up", layer.wUp), ("ffn_gate", layer.wGate), ("ffn_down", layer.wDown),
        ("attn_q", layer.wq), ("attn_k", layer.wk), ("attn_v", layer.wv), ("attn_output", layer.wo),
    ]
    if includeOutput { candidates.append(("output", weights.output)) }
    var seen: Set<UInt32> = []
    var picked: [(String, QuantizedMatrix)] = []
    for (tensor, m) in candidates where !seen.contains(m.type.rawValue) {
        seen.insert(m.type.rawValue)
        picked.append(("\(tensor) \(m.rows)x\(m.cols)", m))
    }
    return picked
}

/// The kernel variants the gate measures: every supported one (the callgrind run sees no AVX-512,
/// so there it is generic and AVX2).
let kernelVariants = QuantKernel.supported

func kernelWorkloads(modelPath: String, label: String, includeOutput: Bool) throws -> ([Workload], AnyObject) {
    let file = try model(modelPath)
    let transformer = try Transformer.load(gguf: file, contextLength: 1, maxBatch: 1, pool: pool)
    var workloads: [Workload] = []
    var fixtures: [KernelFixture] = []
    for (shape, matrix) in distinctMatrices(transformer.weights, includeOutput: includeOutput) {
        for kernel in kernelVariants {
            // Matvec (decode) and a tile (prefill: 16 tokens, 4 for the slow portable C). The cost
            // is linear in the rows, so large products keep their width but only their first rows.
            let tileTokens = kernel == .generic ? 4 : 16
            for tokens in [1, tileTokens] {
                let rowLimit = kernel == .generic ? 256 : tokens == 1 ? 16384 : 2048
                let rows = min(matrix.rows, rowLimit)
                let slice = try QuantizedMatrix(type: matrix.type, rows: rows, cols: matrix.cols,
                                                data: UnsafeRawBufferPointer(rebasing: matrix.data[0 ..< rows * matrix.rowBytes]))
                let fixture = KernelFixture(slice, kernel: kernel, tokens: tokens)
                fixtures.append(fixture)
                let kind = tokens == 1 ? "matvec" : "tile x\(tokens)"
                let part = rows < matrix.rows ? " rows 0..<\(rows)" : ""
                workloads.append(Workload(name: "kernel \(matrix.type) \(kind) \(kernel) \(label) \(shape)\(part)", body: fixture.run))
            }
        }
    }
    return (workloads, [file, transformer, fixtures] as AnyObject)
}

// MARK: - Models

func modelWorkloads(modelPath: String, label: String, prompt: Int, decode: Int) throws -> ([Workload], AnyObject) {
    let file = try model(modelPath)
    let transformer = try Transformer.load(gguf: file, contextLength: prompt + decode, maxBatch: prompt, pool: pool)
    let vocab = transformer.config.vocabSize
    let promptTokens = fixedTokens(prompt, vocab: vocab, seed: 7)
    let decodeTokens = fixedTokens(decode, vocab: vocab, seed: 11)
    let workloads = [
        Workload(name: "model \(label) prefill \(prompt)", warmup: false) {
            try promptTokens.withUnsafeBufferPointer { try transformer.evaluate($0, at: 0, logits: .last) }
        },
        Workload(name: "model \(label) decode \(decode) after \(prompt)", warmup: false) {
            for (i, token) in decodeTokens.enumerated() { _ = try transformer.decode(token, at: prompt + i) }
        },
    ]
    return (workloads, [file, transformer] as AnyObject)
}

// MARK: - Tokenizers

/// About 2 KB of mixed text: prose, code, numbers, punctuation and non-Latin scripts.
let tokenizerText: String = {
    let paragraph = """
    The quick brown fox jumps over the lazy dog; naïve café owners re-test 3.14159 and 2,718 widgets.
    func greet(_ name: String) -> String { return "Hello, \\(name)!" }  // TODO: localise
    日本語のテキストも少し。Ελληνικά κείμενα. Привет, мир! 🙂 <b>bold</b> https://example.com/a?b=c
    """
    return Array(repeating: paragraph, count: 6).joined(separator: "\n\n")
}()

func tokenizerWorkloads() throws -> ([Workload], AnyObject) {
    var workloads: [Workload] = []
    var keep: [AnyObject] = []
    for (label, path) in [("SmolLM2 BPE", smolLM2Path), ("Gemma 3 SentencePiece", gemma3Path), ("Qwen2.5 BPE", qwenPath)] {
        let file = try model(path)
        let tokenizer = try Tokenizers.load(gguf: file)
        keep.append(file)
        workloads.append(Workload(name: "tokenizer \(label) encode 2 KB") {
            let ids = tokenizer.encode(tokenizerText, addSpecial: true, parseSpecial: false)
            precondition(!ids.isEmpty)
        })
    }
    let wordPiece = try WordPieceTokenizer(directory: modelsDirectory.appendingPathComponent(miniLMPath))
    workloads.append(Workload(name: "tokenizer MiniLM WordPiece encode 2 KB") {
        precondition(!wordPiece.encode(tokenizerText, maxLength: 4096).isEmpty)
    })
    return (workloads, keep as AnyObject)
}

// MARK: - Sentence embeddings

let sentences = [
    "A cat sits on the mat.", "The stock market fell sharply today.",
    "Swift is a programming language developed by Apple.", "How do I bake sourdough bread at home?",
]

func miniLMWorkloads() throws -> ([Workload], AnyObject) {
    let directory = modelsDirectory.appendingPathComponent(miniLMPath)
    let pipeline = try EmbeddingPipeline(directory: directory)
    let tokenizer = try WordPieceTokenizer(directory: directory)
    let batch = sentences.map { tokenizer.encode($0) }
    return ([Workload(name: "embed MiniLM-L6 batch \(batch.count)", warmup: false) {
        let vectors = try pipeline.embed(tokenized: batch, batchSize: batch.count)
        precondition(vectors.count == batch.count)
    }], pipeline)
}

// MARK: - Groups

let groups: [(String, @Sendable () throws -> ([Workload], AnyObject))] = [
    ("kernels-smollm2", { try kernelWorkloads(modelPath: smolLM2Path, label: "SmolLM2", includeOutput: true) }),
    ("kernels-gemma3", { try kernelWorkloads(modelPath: gemma3Path, label: "Gemma3", includeOutput: false) }),
    ("smollm2", { try modelWorkloads(modelPath: smolLM2Path, label: "SmolLM2-135M Q4_1", prompt: 8, decode: 2) }),
    ("gemma3", { try modelWorkloads(modelPath: gemma3Path, label: "Gemma3-270M Q4_K_M", prompt: 8, decode: 1) }),
    ("tokenizers", tokenizerWorkloads),
    // Longer runs for the wall-clock gate (timer resolution and noise want ≥ 50 ms).
    ("wall-smollm2", { try modelWorkloads(modelPath: smolLM2Path, label: "SmolLM2-135M Q4_1", prompt: 32, decode: 8) }),
    ("wall-gemma3", { try modelWorkloads(modelPath: gemma3Path, label: "Gemma3-270M Q4_K_M", prompt: 32, decode: 4) }),
    ("minilm", miniLMWorkloads),
]

/// One unbuffered line on stdout (the script reads it while valgrind runs).
func emit(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

func kernelPath() -> String {
    "quant=\(QuantKernel.best) vector=\(String(cString: swiftlet_vector_f32_kernel_name())) sgemm=\(String(cString: swiftlet_sgemm_f32_kernel_name()))"
}

func run(group name: String, repeats: Int) throws {
    guard let (_, make) = groups.first(where: { $0.0 == name }) else {
        throw SwiftletError.invalidArgument("unknown group '\(name)' (groups: \(groups.map(\.0).joined(separator: ", ")))")
    }
    let (workloads, keepAlive) = try make()
    emit("path \(kernelPath())")
    for workload in workloads {
        if workload.warmup || repeats > 0 { try workload.body() }
        emit("workload \(workload.name)")
        if repeats == 0 {
            try inRegion(workload.body)
            continue
        }
        var wall: [UInt64] = [], cpu: [UInt64] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds, startCPU = threadCPUNanoseconds()
            try workload.body()
            cpu.append(threadCPUNanoseconds() - startCPU)
            wall.append(DispatchTime.now().uptimeNanoseconds - start)
        }
        emit("time \(workload.name)\t\(wall.map(String.init).joined(separator: " "))")
        emit("cpu \(workload.name)\t\(cpu.map(String.init).joined(separator: " "))")
    }
    withExtendedLifetime(keepAlive) {}
}

/// CPU time of the calling thread: on a loaded machine it leaves out the time spent waiting for a
/// core, which wall-clock time cannot.
func threadCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Same-run references for the wall-clock gate: code the candidate cannot change.
func runReference(repeats: Int) {
    let n = 256
    let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n), b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    for i in 0..<(n * n) { a[i] = Float(i % 17) / 17; b[i] = Float(i % 13) / 13 }
    func sgemm() {
        BLAS.sgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a, lda: n, b: b, ldb: n, beta: 0, c: c, ldc: n, pool: pool)
    }
    sgemm()
    var wall: [UInt64] = [], cpu: [UInt64] = []
    for _ in 0..<max(repeats, 1) {
        let start = DispatchTime.now().uptimeNanoseconds, startCPU = threadCPUNanoseconds()
        for _ in 0..<8 { sgemm() }
        cpu.append(threadCPUNanoseconds() - startCPU)
        wall.append(DispatchTime.now().uptimeNanoseconds - start)
    }
    let name = "reference sgemm 256 x8 (\(BLAS.isAvailable ? "OpenBLAS" : "no BLAS"))"
    emit("time \(name)\t\(wall.map(String.init).joined(separator: " "))")
    emit("cpu \(name)\t\(cpu.map(String.init).joined(separator: " "))")
    let bytes = 64 << 20
    let bandwidth = (0..<max(repeats, 1)).map { _ in UInt64(Double(bytes) / MemoryBandwidth.measure(threads: 1, bytes: bytes, passes: 1) * 1e9) }
    emit("time reference stream-read 64 MiB\t\(bandwidth.map(String.init).joined(separator: " "))")
}

let arguments = Array(CommandLine.arguments.dropFirst())
let repeats = arguments.firstIndex(of: "--repeat").flatMap { $0 + 1 < arguments.count ? Int(arguments[$0 + 1]) : nil } ?? 0
do {
    switch arguments.first {
    case "run" where arguments.count >= 2: try run(group: arguments[1], repeats: repeats)
    case "reference": runReference(repeats: repeats)
    case "groups": print(groups.map(\.0).joined(separator: "\n"))
    case "path": print(kernelPath())
    default:
        FileHandle.standardError.write(Data("usage: SwiftletGateWorkloads run GROUP [--repeat N] | reference [--repeat N] | groups | path\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("SwiftletGateWorkloads: \(error)\n".utf8))
    exit(1)
}
