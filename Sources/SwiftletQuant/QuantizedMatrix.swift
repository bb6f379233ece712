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
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// Row-major blocks, `rows * type.rowBytes(cols)` bytes. Not owned: the caller keeps it alive.
    public let data: UnsafeRawBufferPointer
    /// The kernel variant used by `matvec` / `matmul` (default: the best this CPU supports).
    public var kernel: QuantKernel = .best

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
    /// Q4_K and Q6_K (llama.cpp's order depends on the token count: pass all tokens at once).
    public func matmul(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutableRawBufferPointer, pool: ComputePool = .shared) {
        guard tokens > 0, rows > 0 else { return }
        let needed = Self.activationScratchBytes(type: type, cols: cols, tokens: tokens)
        precondition(scratch.count >= needed, "QuantizedMatrix.matmul: scratch holds \(scratch.count) bytes, needs \(needed)")
        let act: UnsafeRawPointer
        let actStride: Int
        if needed == 0 {
            act = UnsafeRawPointer(x); actStride = 4 * cols
        } else {
            let out = scratch.baseAddress!
            actStride = needed / tokens
            // Per weight type and token index as llama.cpp quantizes (swiftlet_qk_quantize_row).
            let typeID = Int32(type.rawValue), variant = kernel.rawValue, cols = cols
            if tokens == 1 {
                swiftlet_qk_quantize_row(variant, typeID, x, out, Int32(cols), 0, 1)
            } else {
                pool.parallelFor(tokens) { t in
                    swiftlet_qk_quantize_row(variant, typeID, x + t * cols, out + t * actStride, Int32(cols), Int32(t), Int32(tokens))
                }
            }
            act = UnsafeRawPointer(out)
        }
        let rows = rows, rowBytes = rowBytes, base = data.baseAddress!
        let typeID = Int32(type.rawValue), variant = kernel.rawValue, n = Int32(cols)
        // Prefill: two chunks per thread balance the load (pp512 +5-6 % on both models against
        // four). Decode: one contiguous slice per thread, which the hardware prefetchers stream
        // best (tg128 +12 % on SmolLM2 against four).
        let chunks = min(rows, (tokens == 1 ? 1 : 2) * pool.threadCount)
        var perChunk = (rows + chunks - 1) / chunks
        if tokens >= 4 && perChunk > 16 { perChunk = (perChunk + 15) / 16 * 16 }   // whole k-quant prefill tiles
        pool.parallelFor(chunks) { c in
            let r0 = c * perChunk, r1 = min(rows, r0 + perChunk)
            guard r0 < r1 else { return }
            swiftlet_qk_gemm(variant, typeID, n, base + r0 * rowBytes, rowBytes, Int32(r1 - r0),
                             act, actStride, Int32(tokens), y + r0, rows)
        }
    }
}
