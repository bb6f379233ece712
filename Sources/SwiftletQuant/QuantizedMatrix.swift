import SwiftletTensor

/// A weight matrix stored in a ggml block format, viewed in place (typically inside a memory-mapped
/// GGUF file): `rows` rows of `cols` weights, each row `type.rowBytes(cols)` bytes.
///
/// CONTRACT (stub: the quantization work fills in fast kernels, keeping these signatures):
/// activations are quantized once per call to the weight's paired activation type (Q8_0 / Q8_1 /
/// Q8_K as in ggml) into `scratch`, then integer dot products run per row.
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    /// Row-major blocks, `rows * type.rowBytes(cols)` bytes. Not owned: the caller keeps it alive.
    public let data: UnsafeRawBufferPointer

    /// Validates that `data` holds exactly `rows` rows of `cols` weights of `type`.
    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawBufferPointer) throws {
        guard rows >= 0, cols > 0, let rowBytes = type.rowBytes(cols) else {
            throw SwiftletError.invalidArgument("\(type) matrix \(rows)x\(cols): cols must be a multiple of \(type.traits.blockSize)")
        }
        let (total, overflow) = rowBytes.multipliedReportingOverflow(by: rows)
        guard !overflow, total == data.count else {
            throw SwiftletError.shapeMismatch(op: "QuantizedMatrix", detail: "\(type) \(rows)x\(cols) needs \(overflow ? "overflowing" : String(total)) bytes, got \(data.count)")
        }
        self.type = type; self.rows = rows; self.cols = cols; self.data = data
    }

    /// Bytes of one row.
    public var rowBytes: Int { type.rowBytes(cols)! }

    /// Scratch bytes `matvec` / `matmul` need for `tokens` activation rows of this matrix's width.
    public static func activationScratchBytes(type: GGMLType, cols: Int, tokens: Int) -> Int {
        // Generous upper bound: f32 activations; the quantization work tightens it.
        return cols * tokens * 4 + 64
    }

    /// Writes row `row` dequantized to f32 into `out[0..<cols]` (embedding lookup).
    public func dequantizeRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        fatalError("stub: SwiftletQuant fills this in")
    }

    /// `y[r] = Σ_c W[r, c] · x[c]` for every row r (decode: one token).
    public func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutableRawBufferPointer, pool: ComputePool = .shared) {
        fatalError("stub: SwiftletQuant fills this in")
    }

    /// `Y[t, r] = Σ_c W[r, c] · X[t, c]` for `tokens` rows of X (row-major `[tokens, cols]`), Y
    /// row-major `[tokens, rows]` (prefill: several tokens per weight read).
    public func matmul(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                       scratch: UnsafeMutableRawBufferPointer, pool: ComputePool = .shared) {
        fatalError("stub: SwiftletQuant fills this in")
    }
}
