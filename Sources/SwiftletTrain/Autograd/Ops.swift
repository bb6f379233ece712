import Foundation
import SwiftletTensor

/// Splits `rows` into `parts` fixed ranges and runs them in parallel: reductions that sum
/// per-part partials in part order give the same bits whichever thread ran which part.
@inline(__always)
func forEachPart(_ pool: ComputePool, parts: Int, rows: Int, _ body: (_ part: Int, _ range: Range<Int>) -> Void) {
    pool.parallelFor(parts) { p in
        let lower = rows * p / parts, upper = rows * (p + 1) / parts
        if lower < upper { body(p, lower..<upper) }
    }
}

/// Parts used by the parallel reductions (fixed, so results do not depend on the thread count).
let reductionParts = 8

// MARK: - matrix product

/// C = op(A) · op(B) (row-major, op = identity or transpose), through `BLAS.sgemm`.
final class MatMulOp: DifferentiableOp {
    let a: Variable, b: Variable, c: Variable
    let transA: Bool, transB: Bool
    let m: Int, n: Int, k: Int
    let pool: ComputePool

    init(_ a: Variable, _ b: Variable, transA: Bool, transB: Bool, output: Variable, pool: ComputePool) {
        self.a = a; self.b = b; c = output; self.pool = pool
        self.transA = transA; self.transB = transB
        m = transA ? a.columns : a.rows
        k = transA ? a.rows : a.columns
        n = transB ? b.rows : b.columns
    }

    func forward() {
        BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a.value, lda: a.columns,
                   b: b.value, ldb: b.columns, beta: 0, c: c.value, ldc: n, pool: pool)
    }

    func backward() {
        guard let dc = c.grad else { return }
        if let da = a.grad {
            if !transA { // dA (m×k) += dC · op(B)ᵀ
                BLAS.sgemm(transA: false, transB: !transB, m: m, n: k, k: n, alpha: 1, a: dc, lda: n,
                           b: b.value, ldb: b.columns, beta: 1, c: da, ldc: k, pool: pool)
            } else { // A is k×m: dA += op(B) · dCᵀ
                BLAS.sgemm(transA: transB, transB: true, m: k, n: m, k: n, alpha: 1, a: b.value, lda: b.columns,
                           b: dc, ldb: n, beta: 1, c: da, ldc: m, pool: pool)
            }
        }
        if let db = b.grad {
            if !transB { // dB (k×n) += op(A)ᵀ · dC
                BLAS.sgemm(transA: !transA, transB: false, m: k, n: n, k: m, alpha: 1, a: a.value, lda: a.columns,
                           b: dc, ldb: n, beta: 1, c: db, ldc: n, pool: pool)
            } else { // B is n×k: dB += dCᵀ · op(A)
                BLAS.sgemm(transA: true, transB: transA, m: n, n: k, k: m, alpha: 1, a: dc, lda: n,
                           b: a.value, ldb: a.columns, beta: 1, c: db, ldc: k, pool: pool)
            }
        }
    }
}

// MARK: - embedding

/// out[t] = table[tokens[t]].
final class EmbeddingOp: DifferentiableOp {
    let table: Variable, tokens: TokenBuffer, out: Variable

    init(table: Variable, tokens: TokenBuffer, output: Variable) {
        self.table = table; self.tokens = tokens; out = output
    }

    func forward() {
        let d = table.columns
        for t in 0..<tokens.count {
            (out.value + t * d).update(from: table.value + Int(tokens.ids[t]) * d, count: d)
        }
    }

    func backward() {
        guard let dt = table.grad, let dout = out.grad else { return }
        let d = table.columns
        for t in 0..<tokens.count {
            VectorOps.add(dt + Int(tokens.ids[t]) * d, dout + t * d, out: dt + Int(tokens.ids[t]) * d, count: d)
        }
    }
}

// MARK: - RMSNorm

/// out = x / sqrt(mean(x²) + eps) ⊙ weight, per row.
final class RMSNormOp: DifferentiableOp {
    let x: Variable, weight: Variable, out: Variable
    let eps: Float
    let pool: ComputePool
    /// 1/rms of each row, kept for backward.
    let inverseRMS: UnsafeMutablePointer<Float>
    /// Per-part partial weight gradients.
    let partials: UnsafeMutablePointer<Float>

    init(x: Variable, weight: Variable, eps: Float, output: Variable, pool: ComputePool) {
        self.x = x; self.weight = weight; out = output; self.eps = eps; self.pool = pool
        inverseRMS = .allocate(capacity: x.rows)
        partials = .allocate(capacity: reductionParts * x.columns)
    }

    deinit { inverseRMS.deallocate(); partials.deallocate() }

    func forward() {
        let d = x.columns
        forEachPart(pool, parts: reductionParts, rows: x.rows) { _, rows in
            for t in rows {
                let row = x.value + t * d
                let inv = 1 / (VectorOps.dot(row, row, count: d) / Float(d) + eps).squareRoot()
                inverseRMS[t] = inv
                let o = out.value + t * d
                for i in 0..<d { o[i] = row[i] * inv * weight.value[i] }
            }
        }
    }

    func backward() {
        guard let dout = out.grad else { return }
        let d = x.columns
        let dx = x.grad, dw = weight.grad
        forEachPart(pool, parts: reductionParts, rows: x.rows) { part, rows in
            let partial = partials + part * d
            partial.update(repeating: 0, count: d)
            for t in rows {
                let row = x.value + t * d, g = dout + t * d
                let inv = inverseRMS[t]
                if dw != nil {
                    for i in 0..<d { partial[i] += g[i] * row[i] * inv }
                }
                if let dx {
                    // d/dx of x·inv·w: inv·(g⊙w) − x·inv³/d·Σ(g⊙w⊙x)
                    var dot: Float = 0
                    for i in 0..<d { dot += g[i] * weight.value[i] * row[i] }
                    let c = dot * inv * inv * inv / Float(d)
                    let dxr = dx + t * d
                    for i in 0..<d { dxr[i] += inv * g[i] * weight.value[i] - c * row[i] }
                }
            }
        }
        guard let dw else { return }
        // Parts with no rows never ran (and hold stale partials).
        for p in 0..<reductionParts where x.rows * p / reductionParts < x.rows * (p + 1) / reductionParts {
            VectorOps.add(dw, partials + p * d, out: dw, count: d)
        }
    }
}

// MARK: - RoPE

/// Rotary position embedding over `heads` heads per row; row t is at position t mod `sequenceLength`
/// (rows are whole sequences laid end to end). Forward uses the inference rotation (`RoPE.Table`).
final class RoPEOp: DifferentiableOp {
    let x: Variable, out: Variable
    let heads: Int, headDim: Int, sequenceLength: Int
    let convention: RoPEConvention
    let table: RoPE.Table
    let pool: ComputePool
    /// Per position: headDim/2 cosines then headDim/2 sines.
    let angles: UnsafeMutablePointer<Float>

    init(x: Variable, heads: Int, headDim: Int, sequenceLength: Int, base: Float, convention: RoPEConvention,
         output: Variable, pool: ComputePool) throws {
        self.x = x; out = output; self.heads = heads; self.headDim = headDim
        self.sequenceLength = sequenceLength; self.convention = convention; self.pool = pool
        table = try RoPE.Table(ropeDim: headDim, base: base, maxPositions: sequenceLength)
        angles = .allocate(capacity: sequenceLength * headDim)
        let pairs = headDim / 2
        for p in 0..<sequenceLength {
            RoPE.fillAngles(position: p, pairs: pairs, ropeDim: headDim, base: base,
                            cos: angles + p * headDim, sin: angles + p * headDim + pairs)
        }
    }

    deinit { angles.deallocate() }

    func forward() {
        let w = x.columns
        pool.parallelChunks(x.rows, chunk: 0) { rows, _ in
            for t in rows {
                (out.value + t * w).update(from: x.value + t * w, count: w)
                table.apply(out.value + t * w, heads: heads, headDim: headDim, position: t % sequenceLength,
                            convention: convention)
            }
        }
    }

    func backward() {
        guard let dx = x.grad, let dout = out.grad else { return }
        let w = x.columns, pairs = headDim / 2
        let stride = convention == .neox ? pairs : 1
        let step = convention == .neox ? 1 : 2
        pool.parallelChunks(x.rows, chunk: 0) { rows, _ in
            for t in rows {
                let cosines = angles + (t % sequenceLength) * headDim, sines = cosines + pairs
                for h in 0..<heads {
                    let g = dout + t * w + h * headDim, d = dx + t * w + h * headDim
                    for i in 0..<pairs {
                        let i0 = i * step, i1 = i0 + stride
                        // The transpose of the rotation: rotate back by −θ.
                        d[i0] += g[i0] * cosines[i] + g[i1] * sines[i]
                        d[i1] += g[i1] * cosines[i] - g[i0] * sines[i]
                    }
                }
            }
        }
    }
}

// MARK: - attention

/// Causal scaled-dot-product attention with grouped-query heads: query head h reads key/value head
/// h / (heads / kvHeads), as llama.cpp broadcasts. Rows are `batch` sequences of `sequenceLength`.
final class AttentionOp: DifferentiableOp {
    let q: Variable, k: Variable, v: Variable, out: Variable
    let batch: Int, sequenceLength: Int, heads: Int, kvHeads: Int, headDim: Int
    let scale: Float
    let pool: ComputePool
    /// Softmax probabilities [batch · heads, L, L] (upper triangle zero).
    let probabilities: UnsafeMutablePointer<Float>
    /// Per-thread L×L scratch for the backward pass.
    let scratch: UnsafeMutablePointer<Float>

    init(q: Variable, k: Variable, v: Variable, batch: Int, sequenceLength: Int, heads: Int, kvHeads: Int,
         headDim: Int, output: Variable, pool: ComputePool) {
        self.q = q; self.k = k; self.v = v; out = output
        self.batch = batch; self.sequenceLength = sequenceLength; self.heads = heads; self.kvHeads = kvHeads
        self.headDim = headDim; self.pool = pool
        scale = 1 / Float(headDim).squareRoot()
        let ll = sequenceLength * sequenceLength
        probabilities = .allocate(capacity: batch * heads * ll)
        scratch = .allocate(capacity: pool.threadCount * ll)
    }

    deinit { probabilities.deallocate(); scratch.deallocate() }

    func forward() {
        let L = sequenceLength, qw = q.columns, kw = k.columns
        pool.parallelFor(batch * heads) { unit in
            let b = unit / heads, h = unit % heads, kh = h / (heads / kvHeads)
            let qp = q.value + b * L * qw + h * headDim
            let kp = k.value + b * L * kw + kh * headDim
            let vp = v.value + b * L * kw + kh * headDim
            let p = probabilities + unit * L * L
            BLAS.sgemm(transA: false, transB: true, m: L, n: L, k: headDim, alpha: scale, a: qp, lda: qw,
                       b: kp, ldb: kw, beta: 0, c: p, ldc: L, pool: pool)
            for i in 0..<L {
                let row = p + i * L
                let m = VectorOps.max(row, count: i + 1)
                var sum: Float = 0
                for j in 0...i {
                    let e = expf(row[j] - m)
                    row[j] = e
                    sum += e
                }
                let inv = 1 / sum
                for j in 0...i { row[j] *= inv }
                if i + 1 < L { (row + i + 1).update(repeating: 0, count: L - i - 1) }
            }
            BLAS.sgemm(transA: false, transB: false, m: L, n: headDim, k: L, alpha: 1, a: p, lda: L,
                       b: vp, ldb: kw, beta: 0, c: out.value + b * L * qw + h * headDim, ldc: qw, pool: pool)
        }
    }

    func backward() {
        guard let dout = out.grad else { return }
        let L = sequenceLength, qw = q.columns, kw = k.columns, group = heads / kvHeads
        // One unit per (sequence, key/value head): the heads of a group add into the same dK, dV.
        pool.parallelFor(batch * kvHeads) { unit, thread in
            let b = unit / kvHeads, kh = unit % kvHeads
            let dp = scratch + thread * L * L
            let kp = k.value + b * L * kw + kh * headDim
            let vp = v.value + b * L * kw + kh * headDim
            for h in kh * group..<(kh + 1) * group {
                let p = probabilities + (b * heads + h) * L * L
                let qp = q.value + b * L * qw + h * headDim
                let dop = dout + b * L * qw + h * headDim
                // dP = dO · Vᵀ
                BLAS.sgemm(transA: false, transB: true, m: L, n: L, k: headDim, alpha: 1, a: dop, lda: qw,
                           b: vp, ldb: kw, beta: 0, c: dp, ldc: L, pool: pool)
                if let dv = v.grad { // dV += Pᵀ · dO
                    BLAS.sgemm(transA: true, transB: false, m: L, n: headDim, k: L, alpha: 1, a: p, lda: L,
                               b: dop, ldb: qw, beta: 1, c: dv + b * L * kw + kh * headDim, ldc: kw, pool: pool)
                }
                // dS = P ⊙ (dP − Σ_j P·dP), masked entries have P = 0.
                for i in 0..<L {
                    let pr = p + i * L, dr = dp + i * L
                    var dot: Float = 0
                    for j in 0...i { dot += pr[j] * dr[j] }
                    for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) }
                    if i + 1 < L { (dr + i + 1).update(repeating: 0, count: L - i - 1) }
                }
                if let dq = q.grad { // dQ += scale · dS · K
                    BLAS.sgemm(transA: false, transB: false, m: L, n: headDim, k: L, alpha: scale, a: dp, lda: L,
                               b: kp, ldb: kw, beta: 1, c: dq + b * L * qw + h * headDim, ldc: qw, pool: pool)
                }
                if let dk = k.grad { // dK += scale · dSᵀ · Q
                    BLAS.sgemm(transA: true, transB: false, m: L, n: headDim, k: L, alpha: scale, a: dp, lda: L,
                               b: qp, ldb: qw, beta: 1, c: dk + b * L * kw + kh * headDim, ldc: kw, pool: pool)
                }
            }
        }
    }
}

// MARK: - element-wise

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// out = silu(gate) ⊙ up (SwiGLU); with no `up`, out = silu(gate).
final class SwiGLUOp: DifferentiableOp {
    let gate: Variable, up: Variable?, out: Variable
    let pool: ComputePool

    init(gate: Variable, up: Variable?, output: Variable, pool: ComputePool) {
        self.gate = gate; self.up = up; out = output; self.pool = pool
    }

    func forward() {
        pool.parallelChunks(gate.count, chunk: 1 << 14) { range, _ in
            for i in range {
                let g = gate.value[i]
                let s = g * sigmoid(g)
                out.value[i] = up.map { s * $0.value[i] } ?? s
            }
        }
    }

    func backward() {
        guard let dout = out.grad else { return }
        let dg = gate.grad, du = up?.grad
        pool.parallelChunks(gate.count, chunk: 1 << 14) { range, _ in
            for i in range {
                let g = gate.value[i], sg = sigmoid(g)
                let u = up?.value[i] ?? 1
                if let dg { dg[i] += dout[i] * u * sg * (1 + g * (1 - sg)) }
                if let du { du[i] += dout[i] * g * sg }
            }
        }
    }
}

/// out = a + b (residual connection).
final class AddOp: DifferentiableOp {
    let a: Variable, b: Variable, out: Variable

    init(_ a: Variable, _ b: Variable, output: Variable) { self.a = a; self.b = b; out = output }

    func forward() { VectorOps.add(a.value, b.value, out: out.value, count: out.count) }

    func backward() {
        guard let dout = out.grad else { return }
        if let da = a.grad { VectorOps.add(da, dout, out: da, count: out.count) }
        if let db = b.grad { VectorOps.add(db, dout, out: db, count: out.count) }
    }
}

// MARK: - loss

/// Mean over rows of −log softmax(logits[t])[targets[t]], fused: backward writes
/// (softmax − one-hot) / rows without storing log-probabilities. Rows whose target is negative
/// (padding, prompt tokens in a chat fine-tune) are left out of the loss and its mean.
final class CrossEntropyOp: DifferentiableOp {
    let logits: Variable, targets: TokenBuffer, loss: Variable
    let pool: ComputePool
    /// Per row: the log-sum-exp, then the row's loss.
    let logSumExp: UnsafeMutablePointer<Float>
    let rowLoss: UnsafeMutablePointer<Float>

    init(logits: Variable, targets: TokenBuffer, output: Variable, pool: ComputePool) {
        self.logits = logits; self.targets = targets; loss = output; self.pool = pool
        logSumExp = .allocate(capacity: logits.rows)
        rowLoss = .allocate(capacity: logits.rows)
    }

    deinit { logSumExp.deallocate(); rowLoss.deallocate() }

    func forward() {
        let V = logits.columns
        pool.parallelChunks(logits.rows, chunk: 0) { rows, _ in
            for t in rows {
                guard targets.ids[t] >= 0 else { rowLoss[t] = 0; continue }
                let row = logits.value + t * V
                let m = VectorOps.max(row, count: V)
                var sum: Float = 0
                for j in 0..<V { sum += expf(row[j] - m) }
                let lse = m + logf(sum)
                logSumExp[t] = lse
                rowLoss[t] = lse - row[Int(targets.ids[t])]
            }
        }
        var total: Double = 0
        for t in 0..<logits.rows { total += Double(rowLoss[t]) }
        loss.value[0] = Float(total / Double(max(scoredRows, 1)))
    }

    /// Rows with a target (all of them unless some are masked).
    var scoredRows: Int {
        var n = 0
        for t in 0..<targets.count where targets.ids[t] >= 0 { n += 1 }
        return n
    }

    func backward() {
        guard let dl = logits.grad, let seed = loss.grad?[0] else { return }
        let V = logits.columns
        let s = seed / Float(max(scoredRows, 1))
        pool.parallelChunks(logits.rows, chunk: 0) { rows, _ in
            for t in rows {
                guard targets.ids[t] >= 0 else { continue }
                let row = logits.value + t * V, g = dl + t * V
                let lse = logSumExp[t]
                for j in 0..<V { g[j] += s * expf(row[j] - lse) }
                g[Int(targets.ids[t])] -= s
            }
        }
    }
}
