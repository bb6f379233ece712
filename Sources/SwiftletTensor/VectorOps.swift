import CSwiftletKernels

/// Raw-buffer vector kernels used by the transformer blocks (decode-time vectors of a few hundred to a
/// few thousand floats).
///
/// Every kernel allocates nothing and has a scalar twin in ``ScalarReference`` that the tests use as
/// the oracle. Arithmetic-only kernels are Swift `SIMD16<Float>` with a scalar tail (multiplies and
/// adds kept separate: without an FMA target, `addingProduct` becomes a libm call per lane). The dot
/// product and everything with an exp inside (softmax, SiLU, GELU) run C kernels from
/// CSwiftletKernels (`vector_f32.c`: AVX-512 / AVX2+FMA / generic, picked at run time), because
/// Swift SIMD comparisons and selects compile to per-lane loops. In-place variants accept `out == x`.
public enum VectorOps {
    /// Σ a[i]·b[i].
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        swiftlet_dot_f32(a, b, count)
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

    /// In place: x = exp(x − max x) / Σ exp(x − max x). An empty vector is left alone; entries of −∞
    /// (masked) become 0, and a vector of only −∞ becomes all zeros rather than NaN.
    @inlinable
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        swiftlet_softmax_f32(x, count)
    }

    /// In place: x = x · sigmoid(x).
    @inlinable
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        swiftlet_silu_f32(x, count)
    }

    /// out = silu(gate) · up — the SwiGLU combination of a gated MLP. `out` may alias either input.
    @inlinable
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                              count: Int) {
        swiftlet_swiglu_f32(gate, up, out, count)
    }

    /// In place: GELU, tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GPT-2, Gemma).
    @inlinable
    public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        swiftlet_gelu_tanh_f32(x, count)
    }

    /// In place: GELU, exact form 0.5·x·(1 + erf(x/√2)) (BERT); erf to 1.5e-7 absolute.
    @inlinable
    public static func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
        swiftlet_gelu_erf_f32(x, count)
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
