/// Masks for ``Tensor/softmax(mask:)`` over attention scores shaped [..., queries, keys].
/// Queries are the last `queries` positions of the key sequence: query i sits at key position
/// p = i + keys − queries.
public enum SoftmaxMask: Sendable, Equatable {
    case none
    /// Key j is visible to the query at position p when j ≤ p.
    case causal
    /// Causal and within the window: p − window < j ≤ p (Gemma 3's local layers).
    case slidingWindow(Int)
}

extension Tensor {
    // MARK: - elementwise with broadcasting

    /// Shape of broadcasting `a` with `b` (NumPy rules, dimensions aligned from the right).
    public static func broadcastShape(_ a: [Int], _ b: [Int], op: String = "broadcast") throws -> [Int] {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else {
                throw SwiftletError.shapeMismatch(op: op, detail: "\(a) and \(b) do not broadcast (dimension \(i))")
            }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// A zero-copy view of this tensor broadcast to `target` (stride 0 on expanded dimensions).
    public func broadcast(to target: [Int]) throws -> Tensor {
        guard target.count >= rank else {
            throw SwiftletError.shapeMismatch(op: "broadcast", detail: "\(shape) to \(target)")
        }
        _ = try Tensor.validate(target, op: "broadcast")
        let lead = target.count - rank
        var newStrides = [Int](repeating: 0, count: target.count)
        for i in 0..<target.count where i >= lead {
            let d = shape[i - lead]
            guard d == target[i] || d == 1 else {
                throw SwiftletError.shapeMismatch(op: "broadcast", detail: "\(shape) to \(target)")
            }
            newStrides[i] = d == 1 ? 0 : strides[i - lead]
        }
        return Tensor(dtype: dtype, shape: target, strides: newStrides, offset: offset, storage: storage)
    }

    /// self + other, broadcasting.
    public func adding(_ other: Tensor) throws -> Tensor {
        try binary(other, op: "add", vector: VectorOps.add) { $0 + $1 }
    }

    /// self · other (elementwise), broadcasting.
    public func multiplying(_ other: Tensor) throws -> Tensor {
        try binary(other, op: "mul", vector: VectorOps.mul) { $0 * $1 }
    }

    private func binary(_ other: Tensor, op: String,
                        vector: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                        scalar: (Float, Float) -> Float) throws -> Tensor {
        let outShape = try Tensor.broadcastShape(shape, other.shape, op: op)
        let out = try Tensor(zeros: outShape)
        let n = out.count
        guard n > 0 else { return out }
        let dst = out.floatPointer!
        let a = try broadcast(to: outShape), b = try other.broadcast(to: outShape)
        let last = outShape.count - 1
        // Fast path: both operands are F32 with unit stride (or a broadcast scalar row) on the last
        // dimension — one vector call per row.
        if a.dtype == .f32, b.dtype == .f32, last >= 0, a.strides[last] == 1, b.strides[last] == 1 {
            let width = outShape[last]
            let rows = n / width
            let aOffsets = a.rowOffsets(), bOffsets = b.rowOffsets()
            let pa = a.storage.base.assumingMemoryBound(to: Float.self)
            let pb = b.storage.base.assumingMemoryBound(to: Float.self)
            for r in 0..<rows {
                vector(pa + aOffsets[r], pb + bOffsets[r], dst + r * width, width)
            }
            return out
        }
        var values = [Float]()
        values.reserveCapacity(n)
        a.forEachElementOffset { values.append(a.load($0)) }
        var i = 0
        b.forEachElementOffset { element in
            dst[i] = scalar(values[i], b.load(element))
            i += 1
        }
        return out
    }

    /// Element offsets of the first element of every row (all dimensions but the last), row-major.
    func rowOffsets() -> [Int] {
        guard rank > 0 else { return [offset] }
        var rowShape = shape
        rowShape[rank - 1] = 1
        let rows = Tensor(dtype: dtype, shape: rowShape, strides: strides, offset: offset, storage: storage)
        var result: [Int] = []
        result.reserveCapacity(rowShape.reduce(1, *))
        rows.forEachElementOffset { result.append($0) }
        return result
    }

    /// s · self.
    public func scaled(by s: Float) -> Tensor {
        unary { VectorOps.scale($0, by: s, count: $1) }
    }

    /// x · sigmoid(x).
    public func silu() -> Tensor { unary { VectorOps.silu($0, count: $1) } }

    /// GELU, tanh approximation.
    public func geluTanh() -> Tensor { unary { VectorOps.geluTanh($0, count: $1) } }

    /// GELU, erf form.
    public func geluErf() -> Tensor { unary { VectorOps.geluErf($0, count: $1) } }

    private func unary(_ kernel: (UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let out = copiedF32()
        if out.count > 0 { kernel(out.floatPointer!, out.count) }
        return out
    }

    /// A contiguous F32 copy that never shares storage with self.
    func copiedF32() -> Tensor {
        let source = contiguousF32()
        if source.storage !== storage { return source }
        let out = try! Tensor(zeros: shape)
        if count > 0 { out.floatPointer!.update(from: source.floatPointer!, count: count) }
        return out
    }

    // MARK: - reductions over the last dimension

    /// Softmax over the last dimension (max-subtracted), with an optional attention mask.
    /// - Throws: for a mask on a tensor of rank < 2, or a window < 1.
    public func softmax(mask: SoftmaxMask = .none) throws -> Tensor {
        let out = copiedF32()
        guard rank >= 1, out.count > 0 else { return out }
        let keys = shape[rank - 1]
        let rows = out.count / keys
        let p = out.floatPointer!
        switch mask {
        case .none:
            for r in 0..<rows { VectorOps.softmax(p + r * keys, count: keys) }
        case .causal, .slidingWindow:
            guard rank >= 2 else {
                throw SwiftletError.shapeMismatch(op: "softmax", detail: "a mask needs [..., queries, keys], got \(shape)")
            }
            var window = Int.max
            if case .slidingWindow(let w) = mask {
                guard w >= 1 else { throw SwiftletError.invalidArgument("softmax: sliding window \(w) < 1") }
                window = w
            }
            let queries = shape[rank - 2]
            for r in 0..<rows {
                let row = p + r * keys
                let position = r % queries + keys - queries
                for j in 0..<keys where j > position || (window != Int.max && j <= position - window) {
                    row[j] = -.infinity
                }
                VectorOps.softmax(row, count: keys)
            }
        }
        return out
    }

    /// RMSNorm over the last dimension: x / rms(x) · (weight + weightOffset).
    public func rmsNorm(weight: Tensor, eps: Float, weightOffset: Float = 0) throws -> Tensor {
        let width = try lastDimension(matching: weight, op: "rmsNorm")
        let out = try Tensor(zeros: shape)
        let x = contiguousF32(), w = weight.contiguousF32()
        for r in 0..<(width == 0 ? 0 : count / width) {
            VectorOps.rmsNorm(x.floatPointer! + r * width, weight: w.floatPointer!, count: width, eps: eps,
                              weightOffset: weightOffset, out: out.floatPointer! + r * width)
        }
        return out
    }

    /// LayerNorm over the last dimension.
    public func layerNorm(gamma: Tensor, beta: Tensor, eps: Float) throws -> Tensor {
        let width = try lastDimension(matching: gamma, op: "layerNorm")
        _ = try lastDimension(matching: beta, op: "layerNorm")
        let out = try Tensor(zeros: shape)
        let x = contiguousF32(), g = gamma.contiguousF32(), b = beta.contiguousF32()
        for r in 0..<(width == 0 ? 0 : count / width) {
            VectorOps.layerNorm(x.floatPointer! + r * width, gamma: g.floatPointer!, beta: b.floatPointer!,
                                count: width, eps: eps, out: out.floatPointer! + r * width)
        }
        return out
    }

    private func lastDimension(matching vector: Tensor, op: String) throws -> Int {
        guard rank >= 1, vector.rank == 1, vector.shape[0] == shape[rank - 1] else {
            throw SwiftletError.shapeMismatch(op: op, detail: "input \(shape), weight \(vector.shape)")
        }
        return shape[rank - 1]
    }

    // MARK: - transformer ops

    /// Rotary embedding of a [tokens, heads, headDim] tensor; token t is at `positions[t]`.
    public func rope(positions: [Int], ropeDim: Int, base: Float, convention: RoPEConvention) throws -> Tensor {
        guard rank == 3, positions.count == shape[0] else {
            throw SwiftletError.shapeMismatch(op: "rope", detail: "expected [tokens, heads, headDim] with \(positions.count) tokens, got \(shape)")
        }
        guard ropeDim > 0, ropeDim % 2 == 0, ropeDim <= shape[2] else {
            throw SwiftletError.invalidArgument("rope: ropeDim \(ropeDim) must be even and in 1...\(shape[2])")
        }
        let out = copiedF32()
        let tokenStride = shape[1] * shape[2]
        for (t, position) in positions.enumerated() {
            RoPE.apply(out.floatPointer! + t * tokenStride, heads: shape[1], headDim: shape[2], ropeDim: ropeDim,
                       position: position, base: base, convention: convention)
        }
        return out
    }

    /// Rows `ids` of a [vocab, dim] embedding table, as [ids.count, dim].
    public func embedding(_ ids: [Int]) throws -> Tensor {
        guard rank == 2 else {
            throw SwiftletError.shapeMismatch(op: "embedding", detail: "table must be [vocab, dim], got \(shape)")
        }
        let (vocab, dim) = (shape[0], shape[1])
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
            throw SwiftletError.invalidArgument("embedding: token id \(bad) outside 0..<\(vocab)")
        }
        let out = try Tensor(zeros: [ids.count, dim])
        for (t, id) in ids.enumerated() {
            let row = try sliced(dim: 0, id..<(id + 1))
            let dst = out.floatPointer! + t * dim
            if row.dtype == .f32 && row.strides[1] == 1 {
                dst.update(from: row.floatPointer!, count: dim)
            } else {
                var j = 0
                row.forEachElementOffset { dst[j] = row.load($0); j += 1 }
            }
        }
        return out
    }

    /// Matrix product: self [..., M, K] × other [K, N] (or other [N, K] with `transposeOther`,
    /// the layout of weight matrices stored [out, in]) → [..., M, N]. Leading dimensions of self are
    /// folded into M. Runs `BLAS.sgemm` on the current backend.
    public func matmul(_ other: Tensor, transposeOther: Bool = false) throws -> Tensor {
        guard rank >= 1, other.rank == 2 else {
            throw SwiftletError.shapeMismatch(op: "matmul", detail: "\(shape) × \(other.shape): right operand must be 2-D")
        }
        let k = shape[rank - 1]
        let (otherK, n) = transposeOther ? (other.shape[1], other.shape[0]) : (other.shape[0], other.shape[1])
        guard otherK == k else {
            throw SwiftletError.shapeMismatch(op: "matmul", detail: "\(shape) × \(other.shape)\(transposeOther ? "ᵀ" : ""): inner dimensions \(k) and \(otherK) differ")
        }
        var outShape = Array(shape.dropLast())
        outShape.append(n)
        let out = try Tensor(zeros: outShape)
        guard out.count > 0, k > 0 else { return out }
        let a = contiguousF32(), b = other.contiguousF32()
        BLAS.sgemm(transA: false, transB: transposeOther, m: a.count / k, n: n, k: k, alpha: 1,
                   a: a.floatPointer!, lda: k, b: b.floatPointer!, ldb: b.shape[1], beta: 0,
                   c: out.floatPointer!, ldc: n)
        return out
    }

    /// Matrix-vector product: self [M, N] × x [N] → [M] (or selfᵀ × x with `transpose`, x [M] → [N]).
    public func matvec(_ x: Tensor, transpose: Bool = false) throws -> Tensor {
        guard rank == 2, x.rank == 1, x.shape[0] == (transpose ? shape[0] : shape[1]) else {
            throw SwiftletError.shapeMismatch(op: "matvec", detail: "\(shape)\(transpose ? "ᵀ" : "") × \(x.shape)")
        }
        let out = try Tensor(zeros: [transpose ? shape[1] : shape[0]])
        guard shape[0] > 0, shape[1] > 0 else { return out }
        let a = contiguousF32(), v = x.contiguousF32()
        BLAS.sgemv(trans: transpose, m: shape[0], n: shape[1], alpha: 1, a: a.floatPointer!, lda: shape[1],
                   x: v.floatPointer!, beta: 0, y: out.floatPointer!)
        return out
    }
}
