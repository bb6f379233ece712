import SwiftletTensor
import SwiftletQuant

/// Buffers shared by the frozen-weight ops of one tape (they run one at a time): the quantized
/// activations of the forward products, and a block of dequantized weight rows for backward.
public final class FrozenWeightScratch: @unchecked Sendable {  // mutable; used by one training task at a time
    /// Weight rows dequantized at once in backward: enough for an efficient product, small
    /// beside the weights (never a full f32 copy of a matrix).
    public static let blockRows = 256
    private(set) var activationBytes = 0
    private(set) var rowFloats = 0
    private var activation: UnsafeMutableRawBufferPointer?
    private var rows: UnsafeMutablePointer<Float>?

    public init() {}

    func reserve(_ w: QuantizedMatrix, tokens: Int) {
        activationBytes = max(activationBytes, QuantizedMatrix.activationScratchBytes(type: w.type, cols: w.cols, tokens: tokens))
        rowFloats = max(rowFloats, min(Self.blockRows, w.rows) * w.cols)
    }

    /// The activation scratch, allocated on first use (after the graph is recorded).
    var activationBuffer: UnsafeMutableRawBufferPointer {
        if let a = activation { return a }
        let a = UnsafeMutableRawBufferPointer.allocate(byteCount: max(activationBytes, 64), alignment: 64)
        a.initializeMemory(as: UInt8.self, repeating: 0)
        activation = a
        return a
    }

    var rowBuffer: UnsafeMutablePointer<Float> {
        if let r = rows { return r }
        let r = UnsafeMutablePointer<Float>.allocate(capacity: max(rowFloats, 1))
        r.initialize(repeating: 0, count: max(rowFloats, 1))
        rows = r
        return r
    }

    /// Bytes held once allocated.
    public var byteCount: Int { activationBytes + 4 * rowFloats }

    deinit {
        activation?.deallocate()
        rows?.deallocate()
    }
}

/// out = x · Wᵀ for a frozen weight kept in its file format: forward through the quantized
/// product (`QuantizedMatrix.matmul`), backward dx += dy · W over blocks of dequantized rows.
final class FrozenLinearOp: DifferentiableOp {
    let x: Variable, out: Variable
    let weight: QuantizedMatrix
    let scratch: FrozenWeightScratch
    let pool: ComputePool

    init(x: Variable, weight: QuantizedMatrix, output: Variable, scratch: FrozenWeightScratch, pool: ComputePool) {
        self.x = x; self.weight = weight; out = output; self.scratch = scratch; self.pool = pool
        scratch.reserve(weight, tokens: x.rows)
    }

    func forward() {
        weight.matmul(x.value, tokens: x.rows, into: out.value, scratch: scratch.activationBuffer, pool: pool)
    }

    func backward() {
        guard let dy = out.grad, let dx = x.grad else { return }
        let w = weight, block = scratch.rowBuffer, cols = w.cols
        var first = 0
        while first < w.rows {
            let n = min(FrozenWeightScratch.blockRows, w.rows - first)
            let start = first
            pool.parallelChunks(n, chunk: 16) { range, _ in
                for i in range { w.dequantizeRow(start + i, into: block + i * cols) }
            }
            // dx (tokens × cols) += dy[:, first..<first+n] · W[first..<first+n, :]
            BLAS.sgemm(transA: false, transB: false, m: x.rows, n: cols, k: n, alpha: 1, a: dy + first, lda: w.rows,
                       b: block, ldb: cols, beta: 1, c: dx, ldc: cols, pool: pool)
            first += n
        }
    }
}

/// Rows of a frozen embedding table in its file format, times `scale` (Gemma's √d); no gradient.
final class FrozenEmbeddingOp: DifferentiableOp {
    let table: QuantizedMatrix, tokens: TokenBuffer, out: Variable
    let scale: Float

    init(table: QuantizedMatrix, tokens: TokenBuffer, scale: Float, output: Variable) {
        self.table = table; self.tokens = tokens; self.scale = scale; out = output
    }

    func forward() {
        let d = table.cols
        for t in 0..<tokens.count {
            let row = out.value + t * d
            table.dequantizeRow(Int(tokens.ids[t]), into: row)
            if scale != 1 { VectorOps.scale(row, by: scale, count: d) }
        }
    }

    func backward() {}
}

/// out = a + scale · b (a LoRA branch joining its frozen product).
final class AddScaledOp: DifferentiableOp {
    let a: Variable, b: Variable, out: Variable
    let scale: Float

    init(_ a: Variable, _ b: Variable, scale: Float, output: Variable) { self.a = a; self.b = b; self.scale = scale; out = output }

    func forward() {
        for i in 0..<out.count { out.value[i] = a.value[i] + scale * b.value[i] }
    }

    func backward() {
        guard let dout = out.grad else { return }
        if let da = a.grad { VectorOps.add(da, dout, out: da, count: out.count) }
        if let db = b.grad { for i in 0..<out.count { db[i] += scale * dout[i] } }
    }
}

extension Tape {
    /// x · Wᵀ for a frozen weight `[out, in]` kept quantized (see ``FrozenWeightScratch``).
    public func frozenLinear(_ x: Variable, weight: QuantizedMatrix, scratch: FrozenWeightScratch,
                             name: String = "frozen_linear") throws -> Variable {
        guard x.columns == weight.cols else {
            throw SwiftletError.shapeMismatch(op: name, detail: "input rows of \(x.columns), weight \(weight.rows)×\(weight.cols)")
        }
        let out = try activation(name, rows: x.rows, columns: weight.rows)
        record(FrozenLinearOp(x: x, weight: weight, output: out, scratch: scratch, pool: pool))
        return out
    }

    /// Rows of a frozen (quantized) embedding table picked by `tokens`, times `scale`.
    public func frozenEmbedding(_ table: QuantizedMatrix, tokens: TokenBuffer, scale: Float = 1,
                                name: String = "embedding") throws -> Variable {
        let out = try activation(name, rows: tokens.count, columns: table.cols)
        record(FrozenEmbeddingOp(table: table, tokens: tokens, scale: scale, output: out))
        return out
    }

    /// a + scale · b.
    public func addScaled(_ a: Variable, _ b: Variable, scale: Float, name: String = "add_scaled") throws -> Variable {
        guard a.rows == b.rows, a.columns == b.columns else {
            throw SwiftletError.shapeMismatch(op: name, detail: "\(a.rows)×\(a.columns) + \(b.rows)×\(b.columns)")
        }
        let out = try activation(name, rows: a.rows, columns: a.columns)
        record(AddScaledOp(a, b, scale: scale, output: out))
        return out
    }
}

/// out[t] = x[t] + bias for every row (a constant bias, Qwen2's on Q, K and V).
final class ConstantBiasOp: DifferentiableOp {
    let x: Variable, bias: UnsafeMutableBufferPointer<Float>, out: Variable

    init(x: Variable, bias: UnsafeMutableBufferPointer<Float>, output: Variable) { self.x = x; self.bias = bias; out = output }

    func forward() {
        let w = x.columns
        for t in 0..<x.rows { VectorOps.add(x.value + t * w, bias.baseAddress!, out: out.value + t * w, count: w) }
    }

    func backward() {
        guard let dout = out.grad, let dx = x.grad else { return }
        VectorOps.add(dx, dout, out: dx, count: x.count)
    }
}

/// out = columns `first ..< first + out.columns` of every row of x (one part of a fused product).
final class ColumnSliceOp: DifferentiableOp {
    let x: Variable, out: Variable
    let first: Int

    init(x: Variable, first: Int, output: Variable) { self.x = x; self.first = first; out = output }

    func forward() {
        let w = out.columns
        for t in 0..<x.rows { (out.value + t * w).update(from: x.value + t * x.columns + first, count: w) }
    }

    func backward() {
        guard let dout = out.grad, let dx = x.grad else { return }
        let w = out.columns
        for t in 0..<x.rows {
            let d = dx + t * x.columns + first
            VectorOps.add(d, dout + t * w, out: d, count: w)
        }
    }
}

extension Tape {
    /// x + bias on every row; `bias` is a constant (a frozen weight of the model), not copied.
    public func addConstantBias(_ x: Variable, bias: UnsafeMutableBufferPointer<Float>, name: String = "bias") throws -> Variable {
        guard bias.count == x.columns else {
            throw SwiftletError.shapeMismatch(op: name, detail: "bias of \(bias.count) for rows of \(x.columns)")
        }
        let out = try activation(name, rows: x.rows, columns: x.columns)
        record(ConstantBiasOp(x: x, bias: bias, output: out))
        return out
    }

    /// Columns `columns` of every row of x.
    public func sliceColumns(_ x: Variable, _ columns: Range<Int>, name: String = "slice") throws -> Variable {
        guard columns.lowerBound >= 0, columns.upperBound <= x.columns, !columns.isEmpty else {
            throw SwiftletError.shapeMismatch(op: name, detail: "columns \(columns) of rows of \(x.columns)")
        }
        let out = try activation(name, rows: x.rows, columns: columns.count)
        record(ColumnSliceOp(x: x, first: columns.lowerBound, output: out))
        return out
    }
}
