/// Raw-buffer vector kernels used by the transformer blocks (decode-time vectors of a few hundred to a
/// few thousand floats).
///
/// Every kernel works on `SIMD16<Float>` lanes with a scalar tail, allocates nothing, and has a
/// scalar twin in ``ScalarReference`` that the tests use as the oracle. Multiplies and adds are kept
/// separate (`a * b + c`): without an FMA target, `addingProduct` becomes a libm call per lane.
/// In-place variants accept `out == x`.
public enum VectorOps {
    /// Σ a[i]·b[i].
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= count {
            acc0 += load16(a + i) * load16(b + i)
            acc1 += load16(a + i + 16) * load16(b + i + 16)
            i += 32
        }
        if i + 16 <= count {
            acc0 += load16(a + i) * load16(b + i)
            i += 16
        }
        var sum = (acc0 + acc1).sum()
        while i < count {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// Σ x[i].
    @inlinable
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            acc += load16(x + i)
            i += 16
        }
        var s = acc.sum()
        while i < count {
            s += x[i]
            i += 1
        }
        return s
    }

    /// max x[i] (−∞ for an empty vector).
    @inlinable
    public static func max(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if count >= 16 {
            var acc = load16(x)
            i = 16
            while i + 16 <= count {
                // Not pointwiseMax: that compiles to a per-lane scalar loop (10x slower).
                let v = load16(x + i)
                acc.replace(with: v, where: v .> acc)
                i += 16
            }
            m = acc.max()
        }
        while i < count {
            m = Swift.max(m, x[i])
            i += 1
        }
        return m
    }

    /// out = x / rms(x) · (weight + weightOffset), rms(x) = sqrt(mean(x²) + eps).
    /// Gemma stores its norm weights as `w − 1` and passes `weightOffset: 1`.
    @inlinable
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count: Int, eps: Float,
                               weightOffset: Float = 0, out: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        let meanSquare = dot(x, x, count: count) / Float(count)
        let inv = 1 / (meanSquare + eps).squareRoot()
        let offset = SIMD16<Float>(repeating: weightOffset)
        let vinv = SIMD16<Float>(repeating: inv)
        var i = 0
        while i + 16 <= count {
            store16(load16(x + i) * vinv * (load16(weight + i) + offset), out + i)
            i += 16
        }
        while i < count {
            out[i] = x[i] * inv * (weight[i] + weightOffset)
            i += 1
        }
    }

    /// out = (x − mean) / sqrt(var + eps) · gamma + beta (biased variance, as in PyTorch/BERT).
    @inlinable
    public static func layerNorm(_ x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                 count: Int, eps: Float, out: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        let mean = sum(x, count: count) / Float(count)
        // Two-pass variance: numerically safer than E[x²] − mean² for large offsets.
        let vmean = SIMD16<Float>(repeating: mean)
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let d = load16(x + i) - vmean
            acc += d * d
            i += 16
        }
        var variance = acc.sum()
        while i < count {
            let d = x[i] - mean
            variance += d * d
            i += 1
        }
        variance /= Float(count)
        let inv = 1 / (variance + eps).squareRoot()
        let vinv = SIMD16<Float>(repeating: inv)
        i = 0
        while i + 16 <= count {
            store16((load16(x + i) - vmean) * vinv * load16(gamma + i) + load16(beta + i), out + i)
            i += 16
        }
        while i < count {
            out[i] = (x[i] - mean) * inv * gamma[i] + beta[i]
            i += 1
        }
    }

    /// In place: x = exp(x − max x) / Σ exp(x − max x). An empty vector is left alone; a vector of
    /// −∞ (fully masked) becomes all zeros rather than NaN.
    @inlinable
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let m = max(x, count: count)
        guard m > -Float.infinity else {
            x.update(repeating: 0, count: count)
            return
        }
        let vm = SIMD16<Float>(repeating: m)
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let e = FastMath.exp(load16(x + i) - vm)
            store16(e, x + i)
            acc += e
            i += 16
        }
        var total = acc.sum()
        if i < count {
            let e = FastMath.exp(loadPartial(x + i, count - i, fill: -Float.infinity) - vm)
            storePartial(e, x + i, count - i)
            for j in 0..<(count - i) { total += e[j] }
        }
        scale(x, by: 1 / total, count: count)
    }

    /// In place: x = x · sigmoid(x).
    @inlinable
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        map(x, count: count) { v in v / (1 + FastMath.exp(-v)) }
    }

    /// out = silu(gate) · up — the SwiGLU combination of a gated MLP. `out` may alias either input.
    @inlinable
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                              count: Int) {
        var i = 0
        while i + 16 <= count {
            let g = load16(gate + i)
            store16(g / (1 + FastMath.exp(-g)) * load16(up + i), out + i)
            i += 16
        }
        if i < count {
            let n = count - i
            let g = loadPartial(gate + i, n, fill: 0)
            storePartial(g / (1 + FastMath.exp(-g)) * loadPartial(up + i, n, fill: 0), out + i, n)
        }
    }

    /// In place: GELU, tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GPT-2, Gemma).
    @inlinable
    public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        map(x, count: count) { v in FastMath.geluTanh(v) }
    }

    /// In place: GELU, exact form 0.5·x·(1 + erf(x/√2)) (BERT).
    @inlinable
    public static func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
        map(x, count: count) { v in FastMath.geluErf(v) }
    }

    /// out = a + b. `out` may alias `a` or `b`.
    @inlinable
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            store16(load16(a + i) + load16(b + i), out + i)
            i += 16
        }
        while i < count {
            out[i] = a[i] + b[i]
            i += 1
        }
    }

    /// out = a · b (elementwise). `out` may alias `a` or `b`.
    @inlinable
    public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            store16(load16(a + i) * load16(b + i), out + i)
            i += 16
        }
        while i < count {
            out[i] = a[i] * b[i]
            i += 1
        }
    }

    /// In place: x = s · x.
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
        let vs = SIMD16<Float>(repeating: s)
        var i = 0
        while i + 16 <= count {
            store16(load16(x + i) * vs, x + i)
            i += 16
        }
        while i < count {
            x[i] *= s
            i += 1
        }
    }

    /// y += a · x.
    @inlinable
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let va = SIMD16<Float>(repeating: a)
        var i = 0
        while i + 16 <= count {
            store16(load16(y + i) + va * load16(x + i), y + i)
            i += 16
        }
        while i < count {
            y[i] += a * x[i]
            i += 1
        }
    }

    // MARK: - helpers

    /// Applies a SIMD16 function to every element in place; the tail goes through one padded vector.
    @inlinable @inline(__always)
    static func map(_ x: UnsafeMutablePointer<Float>, count: Int, _ f: (SIMD16<Float>) -> SIMD16<Float>) {
        var i = 0
        while i + 16 <= count {
            store16(f(load16(x + i)), x + i)
            i += 16
        }
        if i < count {
            storePartial(f(loadPartial(x + i, count - i, fill: 0)), x + i, count - i)
        }
    }
}

@inlinable @inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
func load16(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float) -> SIMD16<Float> {
    var v = SIMD16<Float>(repeating: fill)
    for j in 0..<n { v[j] = p[j] }
    return v
}

@inlinable @inline(__always)
func loadPartial(_ p: UnsafeMutablePointer<Float>, _ n: Int, fill: Float) -> SIMD16<Float> {
    loadPartial(UnsafePointer(p), n, fill: fill)
}

@inlinable @inline(__always)
func storePartial(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for j in 0..<n { p[j] = v[j] }
}

/// Vectorised transcendental functions on `SIMD16<Float>` (no libm call per lane).
public enum FastMath {
    /// e^x, relative error < 2e-7 over the float range; underflows to 0 below −87.3, +∞ above 88.7.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let hi = SIMD16<Float>(repeating: 88.72283)
        let lo = SIMD16<Float>(repeating: -87.33654)
        // Clamp with masks, not pointwiseMin/Max: those compile to per-lane scalar loops (10x slower).
        var xc = x
        xc.replace(with: lo, where: x .< lo)
        xc.replace(with: hi, where: x .> hi)
        // n = round(x / ln2) via the 1.5·2^23 trick; its integer value sits in the low mantissa bits.
        let magic = SIMD16<Float>(repeating: 12582912)
        let kf = xc * SIMD16<Float>(repeating: 1.442695041) + magic
        let n = kf - magic
        var r = xc - n * SIMD16<Float>(repeating: 0.693359375)
        r = r - n * SIMD16<Float>(repeating: -2.12194440e-4)
        // Cephes expf polynomial on [−ln2/2, ln2/2].
        var p = SIMD16<Float>(repeating: 1.9875691500e-4)
        p = p * r + SIMD16<Float>(repeating: 1.3981999507e-3)
        p = p * r + SIMD16<Float>(repeating: 8.3334519073e-3)
        p = p * r + SIMD16<Float>(repeating: 4.1665795894e-2)
        p = p * r + SIMD16<Float>(repeating: 1.6666665459e-1)
        p = p * r + SIMD16<Float>(repeating: 5.0000001201e-1)
        p = p * (r * r) + r + SIMD16<Float>(repeating: 1)
        // 2^n: shift the integer into the exponent field. n ∈ [−126, 128]: split in two factors so
        // that n = 128 and n = −126 stay representable.
        let bits = unsafeBitCast(kf, to: SIMD16<UInt32>.self) &<< 23
        let half = unsafeBitCast(bits &+ SIMD16<UInt32>(repeating: 126 << 23), to: SIMD16<Float>.self)
        var result = p * half * SIMD16<Float>(repeating: 2)
        result.replace(with: SIMD16<Float>(repeating: .infinity), where: x .> hi)
        result.replace(with: SIMD16<Float>(), where: x .< lo)
        result.replace(with: x, where: x .!= x)  // NaN stays NaN
        return result
    }

    /// GELU tanh form: 0.5x(1 + tanh(u)) = x · sigmoid(2u), u = √(2/π)(x + 0.044715x³).
    @inlinable @inline(__always)
    public static func geluTanh(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let c = SIMD16<Float>(repeating: 2 * 0.7978845608028654)
        let u = c * (x + SIMD16<Float>(repeating: 0.044715) * x * x * x)
        return x / (SIMD16<Float>(repeating: 1) + exp(-u))
    }

    /// erf(x), Abramowitz–Stegun 7.1.26 (absolute error < 1.5e-7).
    @inlinable @inline(__always)
    public static func erf(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let one = SIMD16<Float>(repeating: 1)
        var ax = x.replacing(with: -x, where: x .< 0)
        ax.replace(with: SIMD16<Float>(repeating: 10), where: ax .> 10)
        let t = one / (one + SIMD16<Float>(repeating: 0.3275911) * ax)
        var p = SIMD16<Float>(repeating: 1.061405429)
        p = p * t + SIMD16<Float>(repeating: -1.453152027)
        p = p * t + SIMD16<Float>(repeating: 1.421413741)
        p = p * t + SIMD16<Float>(repeating: -0.284496736)
        p = p * t + SIMD16<Float>(repeating: 0.254829592)
        let y = one - p * t * exp(-(ax * ax))
        return y.replacing(with: -y, where: x .< 0)
    }

    /// GELU exact form: 0.5·x·(1 + erf(x/√2)).
    @inlinable @inline(__always)
    public static func geluErf(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let half = SIMD16<Float>(repeating: 0.5)
        return half * x * (SIMD16<Float>(repeating: 1) + erf(x * SIMD16<Float>(repeating: 0.7071067811865476)))
    }
}
