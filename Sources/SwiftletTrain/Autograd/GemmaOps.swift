import Foundation
import SwiftletTensor

/// RMSNorm of each `weight.count`-wide segment of every row (Gemma 3's per-head QK-norm), times a
/// constant weight shared by the segments.
final class SegmentRMSNormOp: DifferentiableOp {
    let x: Variable, weight: Variable, out: Variable
    let eps: Float
    let pool: ComputePool
    /// 1/rms per segment, kept for backward.
    let inverseRMS: UnsafeMutablePointer<Float>
    var segments: Int { x.count / weight.count }

    init(x: Variable, weight: Variable, eps: Float, output: Variable, pool: ComputePool) {
        self.x = x; self.weight = weight; out = output; self.eps = eps; self.pool = pool
        inverseRMS = .allocate(capacity: x.count / weight.count)
    }

    deinit { inverseRMS.deallocate() }

    func forward() {
        let d = weight.count
        pool.parallelChunks(segments, chunk: 0) { range, _ in
            for s in range {
                let row = x.value + s * d, o = out.value + s * d
                let inv = 1 / (VectorOps.dot(row, row, count: d) / Float(d) + eps).squareRoot()
                inverseRMS[s] = inv
                for i in 0..<d { o[i] = row[i] * inv * weight.value[i] }
            }
        }
    }

    func backward() {
        guard let dout = out.grad, let dx = x.grad else { return }
        let d = weight.count
        pool.parallelChunks(segments, chunk: 0) { range, _ in
            for s in range {
                let row = x.value + s * d, g = dout + s * d, dxr = dx + s * d
                let inv = inverseRMS[s]
                var dot: Float = 0
                for i in 0..<d { dot += g[i] * weight.value[i] * row[i] }
                let c = dot * inv * inv * inv / Float(d)
                for i in 0..<d { dxr[i] += inv * g[i] * weight.value[i] - c * row[i] }
            }
        }
    }
}

/// out = gelu(gate) ⊙ up with the tanh approximation (GeGLU).
final class GeGLUOp: DifferentiableOp {
    let gate: Variable, up: Variable, out: Variable
    let pool: ComputePool
    static let c: Float = 0.7978845608028654   // √(2/π)
    static let a: Float = 0.044715

    init(gate: Variable, up: Variable, output: Variable, pool: ComputePool) {
        self.gate = gate; self.up = up; out = output; self.pool = pool
    }

    @inline(__always) static func gelu(_ x: Float) -> (value: Float, derivative: Float) {
        let inner = c * (x + a * x * x * x)
        let t = tanhf(inner)
        let value = 0.5 * x * (1 + t)
        let derivative = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x)
        return (value, derivative)
    }

    func forward() {
        pool.parallelChunks(gate.count, chunk: 1 << 14) { range, _ in
            for i in range { out.value[i] = Self.gelu(gate.value[i]).value * up.value[i] }
        }
    }

    func backward() {
        guard let dout = out.grad else { return }
        let dg = gate.grad, du = up.grad
        pool.parallelChunks(gate.count, chunk: 1 << 14) { range, _ in
            for i in range {
                let (value, derivative) = Self.gelu(gate.value[i])
                if let dg { dg[i] += dout[i] * up.value[i] * derivative }
                if let du { du[i] += dout[i] * value }
            }
        }
    }
}

/// out = cap · tanh(x / cap) (Gemma's final logit soft-capping).
final class SoftcapOp: DifferentiableOp {
    let x: Variable, out: Variable
    let cap: Float
    let pool: ComputePool

    init(x: Variable, cap: Float, output: Variable, pool: ComputePool) { self.x = x; self.cap = cap; out = output; self.pool = pool }

    func forward() {
        pool.parallelChunks(x.count, chunk: 1 << 14) { range, _ in
            for i in range { out.value[i] = cap * tanhf(x.value[i] / cap) }
        }
    }

    func backward() {
        guard let dout = out.grad, let dx = x.grad else { return }
        pool.parallelChunks(x.count, chunk: 1 << 14) { range, _ in
            for i in range {
                let t = out.value[i] / cap
                dx[i] += dout[i] * (1 - t * t)
            }
        }
    }
}

extension Tape {
    /// RMSNorm of each `weight.count`-wide segment of the rows of `x` (per attention head), times
    /// `weight`, a constant (no gradient).
    public func headRMSNorm(_ x: Variable, weight: Variable, eps: Float, name: String = "head_rms_norm") throws -> Variable {
        guard weight.count > 0, x.columns % weight.count == 0, !weight.requiresGrad else {
            throw SwiftletError.shapeMismatch(op: name, detail: "rows of \(x.columns) in segments of \(weight.count) (constant weight)")
        }
        let out = try activation(name, rows: x.rows, columns: x.columns)
        record(SegmentRMSNormOp(x: x, weight: weight, eps: eps, output: out, pool: pool))
        return out
    }

    /// gelu_tanh(gate) ⊙ up.
    public func geglu(gate: Variable, up: Variable, name: String = "geglu") throws -> Variable {
        guard gate.rows == up.rows, gate.columns == up.columns else {
            throw SwiftletError.shapeMismatch(op: name, detail: "gate \(gate.rows)×\(gate.columns), up \(up.rows)×\(up.columns)")
        }
        let out = try activation(name, rows: gate.rows, columns: gate.columns)
        record(GeGLUOp(gate: gate, up: up, output: out, pool: pool))
        return out
    }

    /// cap · tanh(x / cap).
    public func softcap(_ x: Variable, cap: Float, name: String = "softcap") throws -> Variable {
        guard cap > 0 else { throw SwiftletError.invalidArgument("\(name): cap \(cap) must be positive") }
        let out = try activation(name, rows: x.rows, columns: x.columns)
        record(SoftcapOp(x: x, cap: cap, output: out, pool: pool))
        return out
    }
}
