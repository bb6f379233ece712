// TEMPORARY local stand-ins for SwiftletTensor kernels that are not on main yet (contract
// signatures). Deleted as soon as SwiftletTensor.VectorOps / RoPE land; never merged to main.
import Foundation

enum VectorOps {
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s: Float = 0
        for i in 0..<count { s += a[i] * b[i] }
        return s
    }
    static func rmsNorm(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count: Int, eps: Float,
                        weightOffset: Float, out: UnsafeMutablePointer<Float>) {
        var ss: Float = 0
        for i in 0..<count { ss += x[i] * x[i] }
        let r = 1 / (ss / Float(count) + eps).squareRoot()
        for i in 0..<count { out[i] = x[i] * r * (weight[i] + weightOffset) }
    }
    static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var m = -Float.infinity
        for i in 0..<count { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0..<count { x[i] = expf(x[i] - m); s += x[i] }
        for i in 0..<count { x[i] /= s }
    }
    static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x[i] = x[i] / (1 + expf(-x[i])) }
    }
    static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let v = x[i]
            x[i] = 0.5 * v * (1 + tanhf(0.7978845608 * (v + 0.044715 * v * v * v)))
        }
    }
    static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = a[i] * b[i] }
    }
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = a[i] + b[i] }
    }
    static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
        for i in 0..<count { x[i] *= s }
    }
    static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += a * x[i] }
    }
}

enum RoPE {
    static func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, ropeDim: Int, position: Int,
                      base: Float, convention: RoPEConvention) {
        let half = ropeDim / 2
        for i in 0..<half {
            let theta = Float(position) * powf(base, -Float(2 * i) / Float(ropeDim))
            let c = cosf(theta), s = sinf(theta)
            for h in 0..<heads {
                let p = x + h * headDim
                let (a, b) = convention == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                let x0 = p[a], x1 = p[b]
                p[a] = x0 * c - x1 * s
                p[b] = x0 * s + x1 * c
            }
        }
    }
}
