import SwiftletCore
import CSwiftletKernels
import SwiftletTensor

/// A weight matrix stored in a ggml block format, viewed in place (typically inside a memory-mapped
/// GGUF file): `rows` rows of `cols` weights, each row `type.rowBytes(cols)` bytes.
///
/// `matvec` / `matmul` quantize the activations once per call to the weight's paired activation
/// type (Q8_0 / Q8_1 / Q8_K as in ggml, ``GGMLType/activationType``) into `scratch`, then run
/// integer dot products (CSwiftletKernels, AVX-512 VNNI / AVX2 / generic C chosen at run time)
/// over row chunks spread on the compute pool. Float weights (F32, F16, BF16) take the f32
/// activations directly. Neither call allocates.
public struct QuantizedMatrix: @unchecked Sendable {  // `data` is read-only weight memory
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// Row-major blocks, `rows * type.rowBytes(cols)` bytes. Not owned: the caller keeps it alive.
    public let data: UnsafeRawBufferPointer
    /// The kernel variant used by `matvec` / `matmul` (default: the best this CPU supports).
    public var kernel: QuantKernel = .best
    /// Whether products follow the order of llama.cpp's repacked weights (its CPU backend repacks
    /// Q4_0, IQ4_NL and Q4_K with AVX2 and Q2_K with AVX-512 at load, when the rows are a multiple
    /// of 8; ``llamaRepacks(type:rows:cpu:)``). Set at init for the running CPU, as llama.cpp
    /// decides by default; `false` gives llama.cpp's order with `--no-repack` (`-nr`) for Q4_0,
    /// IQ4_NL and Q2_K. Every kernel variant gives the same bits either way.
    public var llamaRepacked: Bool

    /// Validates that `data` holds exactly `rows` rows of `cols` weights of `type`.
    ///
    /// - Throws: ``SwiftletError/unsupportedTensorType(_:)`` for a type without kernels,
    ///   ``SwiftletError/invalidArgument(_:)`` for a width that is not whole blocks,
    ///   ``SwiftletError/shapeMismatch(op:detail:)`` when `data` has the wrong size.
    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawBufferPointer) throws {
        guard type.hasDotKernel else { throw SwiftletError.unsupportedTensorType("\(type) (QuantizedMatrix)") }
        guard rows >= 0, cols > 0, cols <= Int(Int32.max), let rowBytes = type.rowBytes(cols) else {
            throw SwiftletError.invalidArgument("\(type) matrix \(rows)x\(cols): cols must be a positive multiple of \(type.traits.blockSize)")
        }
        let (total, overflow) = rowBytes.multipliedReportingOverflow(by: rows)
        guard !overflow, total == data.count else {
            throw SwiftletError.shapeMismatch(op: "QuantizedMatrix", detail: "\(type) \(rows)x\(cols) needs \(overflow ? "overflowing" : String(total)) bytes, got \(data.count)")
        }
        self.type = type; self.rows = rows; self.cols = cols; self.data = data
        self.llamaRepacked = Self.llamaRepacks(type: type, rows: rows)
    }

    /// CPUs as llama.cpp's repacking decision tells them apart.
    public enum RepackCPU: Int32, Sendable {
        /// The CPU this runs on.
        case running = 0
        /// An x86-64 with AVX2, FMA and F16C but without AVX-512.
        case avx2 = 1
        /// An x86-64 with AVX-512.
        case avx512 = 2
        /// Any other CPU (ARM's repacked orders are not followed).
        case other = 3
    }

    /// Whether llama.cpp's CPU backend repacks a matrix-product weight of `type` with `rows` rows
    /// at load on `cpu`: Q4_0, IQ4_NL and Q4_K with AVX2, Q2_K with AVX-512, rows a multiple of 8.
    public static func llamaRepacks(type: GGMLType, rows: Int, cpu: RepackCPU = .running) -> Bool {
        swiftlet_qk_llama_repacks(Int32(type.rawValue), Int64(rows), cpu.rawValue) != 0
    }

    /// Bytes of one row.
    public var rowBytes: Int { type.rowBytes(cols)! }

    /// Scratch bytes `matvec` / `matmul` need for `tokens` activation rows of a `type` matrix
    /// `cols` wide: the activations in the paired Q8 type (0 for float weight types).
    public static func activationScratchBytes(type: GGMLType, cols: Int, tokens: Int) -> Int {
        guard type.activationType != .f32, let row = type.activationType.rowBytes(cols) else { return 0 }
        return row * max(tokens, 0)
    }

    /// Writes row `row` dequantized to f32 into `out[0..<cols]` (embedding lookup).
    public func dequantizeRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(row >= 0 && row < rows, "QuantizedMatrix.dequantizeRow: row \(row) out of 0..<\(rows)")
        dequantizeUnchecked(type, data.baseAddress! + row * rowBytes, count: cols, into: out)
    }

    /// `y[r] = Σ_c W[r, c] · x[c]` for every row r (decode: one token).
    public func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutableRawBufferPointer, pool: ComputePool = .shared) {
        matmul(x, tokens: 1, into: y, scratch: scratch, pool: pool)
    }

    /// `Y[t, r] = Σ_c W[r, c] · X[t, c]` for `tokens` rows of X (row-major `[tokens, cols]`), Y
    /// row-major `[tokens, rows]` (prefill: each weight block is read once per group of tokens).
    /// For the 32-weight block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) every output is
    /// bit-identical to llama.cpp's on x86, whatever the token count or kernel variant; so are
    /// Q4_K and Q6_K (llama.cpp's order depends on the token count: pass all tokens at once), and
    /// Q4_0 / IQ4_NL / Q2_K in the order ``llamaRepacked`` selects.
    public func matmul(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutableRawBufferPointer, pool: ComputePool = .shared) {
        guard tokens > 0, rows > 0 else { return }
        let (act, actStride) = prepareActivations(x, tokens: tokens, scratch: scratch, pool: pool)
        let chunks = min(rows, Self.chunksPerThread(tokens: tokens) * pool.threadCount)
        let perChunk = rowsPerChunk(chunks: chunks, tokens: tokens)
        pool.parallelFor(chunks) { c in
            multiply(rows: min(rows, c * perChunk) ..< min(rows, (c + 1) * perChunk), act, actStride, tokens: tokens, into: y)
        }
    }

    /// The activations in this type's paired format (quantized into `scratch`, per weight type
    /// and token index as llama.cpp quantizes them), or `x` itself for float weights; and the
    /// bytes between rows.
    func prepareActivations(_ x: UnsafePointer<Float>, tokens: Int, scratch: UnsafeMutableRawBufferPointer,
                            pool: ComputePool) -> (UnsafeRawPointer, Int) {
        let needed = Self.activationScratchBytes(type: type, cols: cols, tokens: tokens)
        precondition(scratch.count >= needed, "QuantizedMatrix.matmul: scratch holds \(scratch.count) bytes, needs \(needed)")
        if needed == 0 { return (UnsafeRawPointer(x), 4 * cols) }
        let out = scratch.baseAddress!, actStride = needed / tokens
        let typeID = Int32(type.rawValue), variant = kernel.rawValue, cols = cols, repacked: Int32 = llamaRepacked ? 1 : 0
        if tokens == 1 {
            swiftlet_qk_quantize_row_layout(variant, typeID, repacked, x, out, Int32(cols), 0, 1)
        } else {
            pool.parallelFor(tokens) { t in
                swiftlet_qk_quantize_row_layout(variant, typeID, repacked, x + t * cols, out + t * actStride, Int32(cols),
                                                Int32(t), Int32(tokens))
            }
        }
        return (UnsafeRawPointer(out), actStride)
    }

    /// Row chunks per pool thread. Prefill: two balance the load (pp512 +5-6 % on both models
    /// against four). Decode: one contiguous slice per thread, which the hardware prefetchers
    /// stream best (tg128 +12 % on SmolLM2 against four).
    static func chunksPerThread(tokens: Int) -> Int { tokens == 1 ? 1 : 2 }

    /// Rows per chunk when the rows are cut into `chunks`: whole 16-row k-quant prefill tiles.
    func rowsPerChunk(chunks: Int, tokens: Int) -> Int {
        let perChunk = (rows + chunks - 1) / chunks
        return tokens >= 4 && perChunk > 16 ? (perChunk + 15) / 16 * 16 : perChunk
    }

    /// `y[t, r]` for the rows in `range` (empty allowed) from prepared activations.
    @inline(__always)
    func multiply(rows range: Range<Int>, _ act: UnsafeRawPointer, _ actStride: Int, tokens: Int,
                  into y: UnsafeMutablePointer<Float>) {
        guard !range.isEmpty else { return }
        swiftlet_qk_gemm_layout(kernel.rawValue, Int32(type.rawValue), llamaRepacked ? 1 : 0, Int32(cols),
                                data.baseAddress! + range.lowerBound * rowBytes, rowBytes, Int32(range.count),
                                act, actStride, Int32(tokens), y + range.lowerBound, rows)
    }
}
