import Foundation
import SwiftletTensor
import SwiftletFormats
import CSwiftletKernels

/// The arithmetic of an encoder's Linear layers.
public enum EncoderPrecision: String, Sendable, CaseIterable, Codable {
    /// f32 weights and activations, f32 products (the default; sentence-transformers' precision).
    case float32 = "f32"
    /// Weights rounded to bfloat16 once at load, activations rounded to bfloat16 per product,
    /// products accumulated in f32 (AMX tiles, else AVX-512 BF16). Opt-in; its speed and its
    /// cosine to the f32 embeddings on MiniLM are in the README.
    case bfloat16 = "bf16"
}

/// A weight `[outputs × inputs]` rounded to bf16 and packed for `swiftlet_bf16_gemm`.
final class PackedBF16Weight: @unchecked Sendable {  // written once at init, read-only afterwards
    let outputs: Int, inputs: Int
    let storage: UnsafeMutableRawPointer

    init(_ weight: WeightBuffer, outputs: Int, inputs: Int) throws {
        let bytes = swiftlet_bf16_packed_bytes(outputs, inputs)
        guard bytes > 0, weight.count == outputs * inputs else {
            throw SwiftletError.shapeMismatch(op: "bf16 packing", detail: "\(outputs) × \(inputs) (outputs must be a multiple of 32, inputs even)")
        }
        self.outputs = outputs
        self.inputs = inputs
        storage = .allocate(byteCount: bytes, alignment: 64)
        swiftlet_bf16_pack(weight.pointer, outputs, inputs, storage)
    }

    deinit { storage.deallocate() }
}

/// A BERT encoder (post-LayerNorm transformer, absolute positions, exact-erf GELU) running a
/// batch of sequences of different lengths at once.
///
/// The batch is *packed*, not padded: the tokens of all sequences are consecutive rows of one
/// `[tokens × hidden]` matrix, so each Linear layer is one GEMM over exactly the real tokens of
/// the batch, and attention runs per (sequence, head) over that sequence's own rows — the
/// attention mask of padding is implicit and no work is spent on pad tokens.
public final class BERTEncoder: Sendable {
    /// The architecture hyper-parameters.
    public let config: BERTConfig
    /// The parameters.
    public let weights: BERTWeights
    /// The arithmetic of the Linear layers.
    public let precision: EncoderPrecision
    /// Per layer with `.bfloat16`: the QKV, attention-output, intermediate and output weights packed.
    private let packed: [[PackedBF16Weight]]

    /// An encoder over already loaded weights (the config is validated). `.bfloat16` needs a CPU
    /// with AVX-512 BF16 (else `SwiftletError.backendUnavailable`).
    public init(config: BERTConfig, weights: BERTWeights, precision: EncoderPrecision = .float32) throws {
        try config.validate()
        self.config = config
        self.weights = weights
        self.precision = precision
        guard precision == .bfloat16 else { packed = []; return }
        guard swiftlet_bf16_supported() != 0 else {
            throw SwiftletError.backendUnavailable("bf16 precision needs a CPU with AVX-512 BF16")
        }
        let h = config.hiddenSize, inter = config.intermediateSize
        packed = try weights.layers.map { layer in
            [try PackedBF16Weight(layer.qkvWeight, outputs: 3 * h, inputs: h),
             try PackedBF16Weight(layer.attentionOutputWeight, outputs: h, inputs: h),
             try PackedBF16Weight(layer.intermediateWeight, outputs: inter, inputs: h),
             try PackedBF16Weight(layer.outputWeight, outputs: h, inputs: inter)]
        }
    }

    /// This encoder's weights with `precision`'s products.
    public func with(precision: EncoderPrecision) throws -> BERTEncoder {
        precision == self.precision ? self : try BERTEncoder(config: config, weights: weights, precision: precision)
    }

    /// Loads `config.json` and the safetensors checkpoint (single or sharded) of `directory`.
    public convenience init(directory: URL) throws {
        let configURL = directory.appendingPathComponent("config.json")
        let config = try HFConfig.load(BERTConfig.self, from: configURL)
        guard config.modelType == "bert" else {
            throw SwiftletError.unsupportedArchitecture(config.modelType, supported: ["bert"])
        }
        try config.validate(path: configURL.path)
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        try self.init(config: config, weights: BERTWeights(config: config, checkpoint: checkpoint))
    }

    /// Runs the encoder on `batch` (token ids including `[CLS]`/`[SEP]`, each 1…max positions
    /// long) and leaves the final hidden states in `workspace.hidden`: sequence `s` occupies rows
    /// `workspace.rowOffsets[s] ..< workspace.rowOffsets[s + 1]`.
    public func forward(_ batch: [[Int32]], workspace ws: BERTWorkspace) throws {
        let c = config
        let h = c.hiddenSize, inter = c.intermediateSize
        var offsets = [0]
        offsets.reserveCapacity(batch.count + 1)
        for ids in batch {
            guard !ids.isEmpty, ids.count <= c.maxPositionEmbeddings else {
                throw SwiftletError.contextOverflow(requested: ids.count, limit: c.maxPositionEmbeddings)
            }
            for id in ids where id < 0 || Int(id) >= c.vocabSize {
                throw SwiftletError.invalidArgument("token id \(id) outside the vocabulary (\(c.vocabSize))")
            }
            offsets.append(offsets.last! + ids.count)
        }
        let tokens = offsets.last!
        let longest = batch.map(\.count).max() ?? 0
        ws.reserve(tokens: tokens, longest: longest, config: c)
        ws.rowOffsets = offsets
        guard tokens > 0 else { return }

        let x = ws.hidden, qkv = ws.qkv, context = ws.context, residual = ws.residual, up = ws.intermediate
        let w = weights, eps = c.layerNormEps

        // Embeddings: word + absolute position + token type 0, then LayerNorm.
        var rowOfToken = 0
        for ids in batch {
            for (position, id) in ids.enumerated() {
                let row = x + rowOfToken * h
                VectorOps.add(w.wordEmbeddings.pointer + Int(id) * h, w.positionEmbeddings.pointer + position * h, out: row, count: h)
                VectorOps.add(row, w.tokenTypeEmbeddings.pointer, out: row, count: h)
                rowOfToken += 1
            }
        }
        Self.parallelRows(tokens) { r in
            VectorOps.layerNorm(x + r * h, gamma: w.embeddingNormWeight.pointer, beta: w.embeddingNormBias.pointer, count: h, eps: eps, out: x + r * h)
        }

        for (index, layer) in w.layers.enumerated() {
            let bf16 = packed.isEmpty ? nil : packed[index]
            // Q, K, V for every token: one GEMM against the stacked [3h, h] weight.
            product(x, rows: tokens, inWidth: h, weight: layer.qkvWeight, packed: bf16?[0], outWidth: 3 * h, output: qkv, workspace: ws)
            Self.parallelRows(tokens) { r in VectorOps.add(qkv + r * 3 * h, layer.qkvBias.pointer, out: qkv + r * 3 * h, count: 3 * h) }
            attention(qkv: qkv, context: context, offsets: offsets, workspace: ws)
            // LayerNorm(x + context·Woᵀ + b): the GEMM writes, one pass per row adds and normalizes
            // while the row is in L1.
            product(context, rows: tokens, inWidth: h, weight: layer.attentionOutputWeight, packed: bf16?[1], outWidth: h, output: residual, workspace: ws)
            Self.parallelRows(tokens) { r in
                let row = residual + r * h
                VectorOps.add(row, x + r * h, out: row, count: h)
                VectorOps.add(row, layer.attentionOutputBias.pointer, out: row, count: h)
                VectorOps.layerNorm(row, gamma: layer.attentionNormWeight.pointer, beta: layer.attentionNormBias.pointer, count: h, eps: eps, out: x + r * h)
            }
            // Feed-forward: LayerNorm(x + GELU(x·W1ᵀ + b1)·W2ᵀ + b2).
            product(x, rows: tokens, inWidth: h, weight: layer.intermediateWeight, packed: bf16?[2], outWidth: inter, output: up, workspace: ws)
            Self.parallelRows(tokens) { r in
                let row = up + r * inter
                VectorOps.add(row, layer.intermediateBias.pointer, out: row, count: inter)
                VectorOps.geluErf(row, count: inter)
            }
            product(up, rows: tokens, inWidth: inter, weight: layer.outputWeight, packed: bf16?[3], outWidth: h, output: residual, workspace: ws)
            Self.parallelRows(tokens) { r in
                let row = residual + r * h
                VectorOps.add(row, x + r * h, out: row, count: h)
                VectorOps.add(row, layer.outputBias.pointer, out: row, count: h)
                VectorOps.layerNorm(row, gamma: layer.outputNormWeight.pointer, beta: layer.outputNormBias.pointer, count: h, eps: eps, out: x + r * h)
            }
        }
    }

    /// output[rows × outWidth] = input · weightᵀ: in f32, or with `packed` in bf16 (the input
    /// rounded into the workspace, then 32 outputs per task).
    func product(_ input: UnsafePointer<Float>, rows: Int, inWidth: Int, weight: WeightBuffer, packed: PackedBF16Weight?,
                 outWidth: Int, output: UnsafeMutablePointer<Float>, workspace ws: BERTWorkspace) {
        guard let packed else {
            Self.multiplyByTransposed(input, rows: rows, inWidth: inWidth, weight: weight, outWidth: outWidth, output: output)
            return
        }
        let rounded = ws.bf16Input
        Self.parallelRows(rows) { r in swiftlet_bf16_round(input + r * inWidth, inWidth, rounded + r * inWidth) }
        ComputePool.shared.parallelFor(outWidth / 32) { block in
            swiftlet_bf16_gemm(rounded, rows, inWidth, packed.storage, block * 32, 32, output, outWidth)
        }
    }

    /// Below this many rows a product is cut into column blocks small enough for OpenBLAS's
    /// unpacked small-matrix kernels: at a few tokens, packing the weights costs more than the
    /// multiply itself.
    /// (Measured on the build machine: one 20-token sentence 6.3 ms → 4.9 ms.)
    static let smallProductRows = 48
    /// m·n·k of one block; OpenBLAS (0.3.21, SkylakeX) takes its small kernels up to ~1e6.
    static let smallBlockMNK = 250_000

    /// output[rows × outWidth] = input · weightᵀ (+ beta · output), weight `[outWidth, inWidth]`.
    static func multiplyByTransposed(_ input: UnsafePointer<Float>, rows: Int, inWidth: Int, weight: WeightBuffer, outWidth: Int,
                                     output: UnsafeMutablePointer<Float>, beta: Float = 0) {
        guard rows < smallProductRows else {
            BLAS.sgemm(transA: false, transB: true, m: rows, n: outWidth, k: inWidth, alpha: 1,
                       a: input, lda: inWidth, b: weight.pointer, ldb: inWidth, beta: beta, c: output, ldc: outWidth)
            return
        }
        let block = min(outWidth, max(16, smallBlockMNK / max(1, rows * inWidth) / 16 * 16))
        let blocks = (outWidth + block - 1) / block
        ComputePool.shared.parallelFor(blocks) { b in
            let start = b * block, count = min(block, outWidth - start)
            BLAS.sgemm(transA: false, transB: true, m: rows, n: count, k: inWidth, alpha: 1,
                       a: input, lda: inWidth, b: weight.pointer + start * inWidth, ldb: inWidth, beta: beta,
                       c: output + start, ldc: outWidth)
        }
    }

    /// Scaled dot-product attention of every head of every sequence, each over its own rows.
    func attention(qkv: UnsafeMutablePointer<Float>, context: UnsafeMutablePointer<Float>, offsets: [Int], workspace ws: BERTWorkspace) {
        let h = config.hiddenSize, d = config.headDim, heads = config.numAttentionHeads
        let sequences = offsets.count - 1
        let tasks = sequences * heads
        let scale = 1 / Float(d).squareRoot()
        let stride = 3 * h
        let scratch = ws.scores, scratchWidth = ws.scoreWidth
        // Per (sequence, head): S = (Q/√d)·Kᵀ and O = softmax(S)·V as two small GEMMs straight on
        // the strided Q/K/V columns of the packed rows (OpenBLAS has small-matrix kernels for these).
        offsets.withUnsafeBufferPointer { off in
            ComputePool.shared.parallelFor(tasks) { task, thread in
                let scores = scratch + thread * scratchWidth
                let s = task / heads, head = task % heads
                let first = off[s], n = off[s + 1] - first
                let q0 = qkv + first * stride + head * d
                let k0 = q0 + h, v0 = q0 + 2 * h
                BLAS.sgemm(transA: false, transB: true, m: n, n: n, k: d, alpha: scale, a: q0, lda: stride,
                           b: k0, ldb: stride, beta: 0, c: scores, ldc: n)
                for i in 0..<n { VectorOps.softmax(scores + i * n, count: n) }
                BLAS.sgemm(transA: false, transB: false, m: n, n: d, k: n, alpha: 1, a: scores, lda: n,
                           b: v0, ldb: stride, beta: 0, c: context + first * h + head * d, ldc: h)
            }
        }
    }

    /// Runs `body(row)` for rows `0..<rows`, split in contiguous chunks over the compute pool.
    @inline(__always)
    static func parallelRows(_ rows: Int, _ body: (Int) -> Void) {
        ComputePool.shared.parallelChunks(rows, chunk: 0) { range, _ in
            for r in range { body(r) }
        }
    }
}

/// Scratch memory of ``BERTEncoder/forward(_:workspace:)``, grown as needed and reused across
/// calls. One workspace serves one forward pass at a time (it is not thread-safe).
public final class BERTWorkspace {
    /// Final hidden states after a forward pass, `[tokens × hidden]`.
    public private(set) var hidden: UnsafeMutablePointer<Float>
    /// Row of the first token of each sequence, plus the total token count at the end.
    public internal(set) var rowOffsets: [Int] = [0]

    var qkv, context, residual, intermediate, scores: UnsafeMutablePointer<Float>
    /// A product's input rounded to bf16 (bf16 precision only).
    var bf16Input: UnsafeMutablePointer<UInt16>
    private(set) var tokenCapacity = 0
    private(set) var scoreWidth = 0
    private(set) var scoreSlots = 0

    /// An empty workspace; buffers are allocated on first use.
    public init() {
        hidden = .allocate(capacity: 1); qkv = .allocate(capacity: 1); context = .allocate(capacity: 1)
        residual = .allocate(capacity: 1); intermediate = .allocate(capacity: 1); scores = .allocate(capacity: 1)
        bf16Input = .allocate(capacity: 1)
    }

    deinit {
        for p in [hidden, qkv, context, residual, intermediate, scores] { p.deallocate() }
        bf16Input.deallocate()
    }

    func reserve(tokens: Int, longest: Int, config c: BERTConfig) {
        if tokens > tokenCapacity {
            let capacity = max(tokens, tokenCapacity * 3 / 2)
            for p in [hidden, qkv, context, residual, intermediate] { p.deallocate() }
            hidden = .allocate(capacity: capacity * c.hiddenSize)
            qkv = .allocate(capacity: capacity * 3 * c.hiddenSize)
            context = .allocate(capacity: capacity * c.hiddenSize)
            residual = .allocate(capacity: capacity * c.hiddenSize)
            intermediate = .allocate(capacity: capacity * c.intermediateSize)
            bf16Input.deallocate()
            bf16Input = .allocate(capacity: (capacity + 32) * max(c.hiddenSize, c.intermediateSize))   // whole 32-row blocks
            tokenCapacity = capacity
        }
        // One L×L score matrix per pool thread.
        let slots = ComputePool.shared.threadCount
        if longest * longest > scoreWidth || slots > scoreSlots {
            scores.deallocate()
            scoreWidth = max(longest * longest, scoreWidth)
            scoreSlots = max(slots, scoreSlots)
            scores = .allocate(capacity: scoreWidth * scoreSlots)
        }
    }
}
