import Foundation

/// Slow, obviously-correct scalar versions of the fast kernels (Double accumulation, libm
/// transcendentals). They are the oracle in tests; never use them in a hot path.
public enum ScalarReference {
    /// Σ a[i]·b[i].
    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        var s = 0.0
        for i in a.indices { s += Double(a[i]) * Double(b[i]) }
        return Float(s)
    }

    /// x / sqrt(mean(x²) + eps) · (weight + weightOffset).
    public static func rmsNorm(_ x: [Float], weight: [Float], eps: Float, weightOffset: Float = 0) -> [Float] {
        var ss = 0.0
        for v in x { ss += Double(v) * Double(v) }
        let inv = 1 / (ss / Double(x.count) + Double(eps)).squareRoot()
        return x.indices.map { Float(Double(x[$0]) * inv * Double(weight[$0] + weightOffset)) }
    }

    /// (x − mean) / sqrt(var + eps) · gamma + beta, biased variance.
    public static func layerNorm(_ x: [Float], gamma: [Float], beta: [Float], eps: Float) -> [Float] {
        let n = Double(x.count)
        let mean = x.reduce(0.0) { $0 + Double($1) } / n
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let inv = 1 / (variance + Double(eps)).squareRoot()
        return x.indices.map { Float((Double(x[$0]) - mean) * inv * Double(gamma[$0]) + Double(beta[$0])) }
    }

    /// exp(x − max) / Σ; all −∞ gives zeros.
    public static func softmax(_ x: [Float]) -> [Float] {
        guard let m = x.max(), m > -Float.infinity else { return x.map { _ in 0 } }
        let e = x.map { Foundation.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }

    /// x · sigmoid(x).
    public static func silu(_ x: [Float]) -> [Float] { x.map { Float(Double($0) / (1 + Foundation.exp(-Double($0)))) } }

    /// 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
    public static func geluTanh(_ x: [Float]) -> [Float] {
        x.map { v in
            let d = Double(v)
            return Float(0.5 * d * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))))
        }
    }

    /// 0.5x(1 + erf(x/√2)).
    public static func geluErf(_ x: [Float]) -> [Float] {
        x.map { v in Float(0.5 * Double(v) * (1 + Foundation.erf(Double(v) / 2.0.squareRoot()))) }
    }

    /// RoPE with θ_i = position · base^(−2i/ropeDim) computed in Double.
    public static func rope(_ x: [Float], heads: Int, headDim: Int, ropeDim: Int, position: Int, base: Float,
                            convention: RoPEConvention) -> [Float] {
        var out = x
        let pairs = ropeDim / 2
        for h in 0..<heads {
            let o = h * headDim
            for i in 0..<pairs {
                let theta = Double(position) * Foundation.pow(Double(base), -2 * Double(i) / Double(ropeDim))
                let (c, s) = (Foundation.cos(theta), Foundation.sin(theta))
                let (j0, j1) = convention == .interleaved ? (o + 2 * i, o + 2 * i + 1) : (o + i, o + i + pairs)
                let x0 = Double(x[j0]), x1 = Double(x[j1])
                out[j0] = Float(x0 * c - x1 * s)
                out[j1] = Float(x0 * s + x1 * c)
            }
        }
        return out
    }

    /// Row-major C = alpha·op(A)·op(B) + beta·C with Double accumulation.
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
                            b: [Float], ldb: Int, beta: Float, c: inout [Float], ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * s + old)
            }
        }
    }
}
