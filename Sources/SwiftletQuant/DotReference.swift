import SwiftletCore
import CSwiftletKernels
import SwiftletTensor

// Scalar reference dot products of a weight row (block format) with an activation row quantized
// to the weight's paired type (as in ggml's `vec_dot_*`): the oracle for the C kernels.
// Integer sums per (sub-)block, then float scaling per block. The 32-weight block formats follow
// llama.cpp's x86 float order exactly (see `referenceDotBlock32`).

/// `Σ w[i]·a[i]` over `n` weights: `w` one row of `type`, `a` the activation row in
/// `type.activationType` (f32 for float weight types). Q2_K and Q5_K always take the order of
/// llama.cpp's tiled k-quant matmul (x86, 8 or more tokens; see ``tiledAdd``), Q3_K and IQ4_XS
/// with `tiled`.
func referenceDot(_ type: GGMLType, _ n: Int, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer, tiled: Bool = false) -> Float {
    var sum: Float = 0
    switch type {
    case .f32, .f16, .bf16:
        let x = a.assumingMemoryBound(to: Float.self)
        for i in 0..<n {
            let wi: Float = type == .f32 ? w.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                : type == .f16 ? loadHalf(w, 2 * i) : HalfPrecision.float(fromBF16: loadU16(w, 2 * i))
            sum += wi * x[i]
        }
    case .q4_0, .q5_0, .q8_0, .iq4_nl, .q4_1, .q5_1:
        return referenceDotBlock32(type, n, w, a)
    case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs, .q8_K:
        // Activation: Q8_K blocks {f32 d; i8 q[256]; i16 bsums[16]}. Dequantized weight levels
        // are integer level × sub-block scale (− min × sub-block min scale).
        let bytes = type.traits.typeSize
        for b in 0..<(n / 256) {
            let wb = w + bytes * b, ab = a + 292 * b
            let da = ab.loadUnaligned(as: Float.self)
            let aq = ab + 4
            @inline(__always) func bsum(_ i: Int) -> Int { Int(ab.loadUnaligned(fromByteOffset: 260 + 2 * i, as: Int16.self)) }
            switch type {
            case .q8_K:
                var isum = 0
                for j in 0..<256 { isum += Int(loadI8(wb, 4 + j)) * Int(loadI8(aq, j)) }
                sum += wb.loadUnaligned(as: Float.self) * da * Float(isum)
            case .q2_K:
                // Element k: 128-half h = k/128, shift s = (k%128)/32, byte l = k%32 of qs[32h...].
                var scaled = 0, mins = 0
                for sb in 0..<16 {
                    let sc = loadU8(wb, sb)
                    var isum = 0
                    for i in 0..<16 {
                        let k = 16 * sb + i
                        let q = Int((loadU8(wb, 16 + 32 * (k / 128) + k % 32) >> UInt8(2 * ((k % 128) / 32))) & 3)
                        isum += q * Int(loadI8(aq, k))
                    }
                    scaled += Int(sc & 0xf) * isum
                    mins += Int(sc >> 4) * bsum(sb)
                }
                sum = tiledAdd(sum, da, loadHalf(wb, 80), loadHalf(wb, 82), scaled, mins)
            case .q3_K:
                var scaled = 0
                for sb in 0..<16 {
                    var isum = 0
                    for i in 0..<16 {
                        let k = 16 * sb + i
                        let low = Int((loadU8(wb, 32 + 32 * (k / 128) + k % 32) >> UInt8(2 * ((k % 128) / 32))) & 3)
                        let high = (loadU8(wb, k % 32) >> UInt8(k / 32)) & 1
                        isum += (low - (high != 0 ? 0 : 4)) * Int(loadI8(aq, k))
                    }
                    scaled += q3KScale(sb, wb + 96) * isum
                }
                sum = tiled ? tiledAdd(sum, da, loadHalf(wb, 108), 0, scaled, 0) : sum + da * loadHalf(wb, 108) * Float(scaled)
            case .q4_K:
                return referenceDotQ4K(n, w, a, grouped: false)
            case .q5_K:
                var scaled = 0, mins = 0
                for sb in 0..<8 {
                    let (s, m) = kQuantScaleMin(sb, wb + 4)
                    var isum = 0
                    for i in 0..<32 {
                        let k = 32 * sb + i
                        let byte = 48 + 32 * (sb / 2) + i
                        var q = Int(sb % 2 == 0 ? loadU8(wb, byte) & 0xf : loadU8(wb, byte) >> 4)
                        q += Int((loadU8(wb, 16 + i) >> UInt8(sb)) & 1) << 4
                        isum += q * Int(loadI8(aq, k))
                    }
                    scaled += Int(s) * isum
                    mins += Int(m) * (bsum(2 * sb) + bsum(2 * sb + 1))
                }
                sum = tiledAdd(sum, da, loadHalf(wb, 0), loadHalf(wb, 2), scaled, mins)
            case .q6_K:
                return referenceDotQ6K(n, w, a, tiled: false)
            default: // .iq4_xs
                let d = loadHalf(wb, 0)
                let scalesH = Int(loadU16(wb, 2))
                var scaled = 0
                for ib in 0..<8 {
                    let ls = (((Int(loadU8(wb, 4 + ib / 2)) >> (4 * (ib % 2))) & 0xf) | (((scalesH >> (2 * ib)) & 3) << 4)) - 32
                    var isum = 0
                    for j in 0..<32 {
                        let q = loadU8(wb, 8 + 16 * ib + j % 16)
                        isum += Int(iq4nlValues[Int(j < 16 ? q & 0xf : q >> 4)]) * Int(loadI8(aq, 32 * ib + j))
                    }
                    scaled += ls * isum
                }
                sum = tiled ? tiledAdd(sum, da, d, 0, scaled, 0) : sum + da * d * Float(scaled)
            }
        }
    default:
        return .nan
    }
    return sum
}

/// One super-block in the order of llama.cpp's tiled k-quant matmul: r = Float(S)·d,
/// r = fma(−dmin, Float(M), r), y = fma(r, da, y); S = Σ scale·dot and M = Σ min·bsum are exact.
@inline(__always)
private func tiledAdd(_ y: Float, _ da: Float, _ d: Float, _ dmin: Float, _ scaled: Int, _ mins: Int) -> Float {
    let r = Float(scaled) * d
    return y.addingProduct(r.addingProduct(-dmin, Float(mins)), da)
}

/// The signed level (Q4_1 / Q5_1: the unsigned level) of element `j` of a 32-weight block.
@inline(__always)
private func block32Level(_ type: GGMLType, _ wb: UnsafeRawPointer, _ j: Int) -> Int {
    let k = j % 16, high = j >= 16
    @inline(__always) func nibble(_ offset: Int) -> UInt8 {
        let q = loadU8(wb, offset + k)
        return high ? q >> 4 : q & 0xf
    }
    switch type {
    case .q4_0: return Int(nibble(2)) - 8
    case .q4_1: return Int(nibble(4))
    case .q5_0:
        let qh = wb.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
        return Int(nibble(6) | UInt8(((qh >> UInt32(j)) & 1) << 4)) - 16
    case .q5_1:
        let qh = wb.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        return Int(nibble(8) | UInt8(((qh >> UInt32(j)) & 1) << 4))
    case .q8_0: return Int(loadI8(wb, 2 + j))
    default: return Int(iq4nlValues[Int(nibble(2))])   // .iq4_nl
    }
}

/// Dot product of a 32-weight block row with its Q8_0 / Q8_1 activation row, in the float order
/// of llama.cpp's x86 kernels (`ggml_vec_dot_*_q8_*` with AVX2 / AVX-512, and tinyBLAS, which
/// agree), so the result is bit-identical to llama.cpp's:
/// per block, d = d_w · d_a (exact in f32); eight lane sums of 4 consecutive products, each
/// accumulated as `acc[i] = fma(d, lane_i, acc[i])` in block order; then ggml's hsum
/// `((acc0+acc4) + (acc2+acc6)) + ((acc1+acc5) + (acc3+acc7))`; Q4_1 / Q5_1 then add
/// `Σ fma(m_w, s_a)` accumulated on its own (GCC fuses that product into an FMA).
func referenceDotBlock32(_ type: GGMLType, _ n: Int, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer) -> Float {
    let withMin = type == .q4_1 || type == .q5_1
    let wBytes = type.traits.typeSize, aBytes = withMin ? 36 : 34, aq = withMin ? 4 : 2
    var acc = [Float](repeating: 0, count: 8)
    var summs: Float = 0
    for b in 0..<(n / 32) {
        let wb = w + wBytes * b, ab = a + aBytes * b
        let d = loadHalf(wb, 0) * loadHalf(ab, 0)
        for i in 0..<8 {
            var lane = 0
            for j in (4 * i)..<(4 * i + 4) { lane += block32Level(type, wb, j) * Int(loadI8(ab, aq + j)) }
            acc[i] = acc[i].addingProduct(d, Float(lane))
        }
        if withMin { summs = summs.addingProduct(loadHalf(wb, 2), loadHalf(ab, 2)) }
    }
    let s0 = acc[0] + acc[4], s1 = acc[1] + acc[5], s2 = acc[2] + acc[6], s3 = acc[3] + acc[7]
    let t0 = s0 + s2, t1 = s1 + s3
    let sum = t0 + t1
    return withMin ? sum + summs : sum
}

/// Q4_0 / IQ4_NL in the order of llama.cpp's repacked 8x8 kernels (gemm and gemv): one chain,
/// `y = fma(Float(S_b), d_w · d_a, y)` per block, S_b the block's exact integer dot.
func referenceDotBlock32Repacked(_ type: GGMLType, _ n: Int, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer) -> Float {
    var y: Float = 0
    for b in 0..<(n / 32) {
        let wb = w + 18 * b, ab = a + 34 * b
        var sum = 0
        for j in 0..<32 { sum += block32Level(type, wb, j) * Int(loadI8(ab, 2 + j)) }
        y = y.addingProduct(Float(sum), loadHalf(wb, 0) * loadHalf(ab, 0))
    }
    return y
}

/// Q2_K in the order of llama.cpp's repacked 8x8 kernels (AVX-512): `acc = fma(Float(S), d·d_a, acc)`
/// and `accm = fma(Float(M), dmin·d_a, accm)` per super-block (gemv) or per 128-weight half
/// (`halves`: its gemm, tokens in whole groups of 4); the result is acc − accm.
func referenceDotQ2KRepacked(_ n: Int, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer, halves: Bool) -> Float {
    var acc: Float = 0, accm: Float = 0
    for b in 0..<(n / 256) {
        let wb = w + 84 * b, ab = a + 292 * b
        let da = ab.loadUnaligned(as: Float.self)
        let dd = loadHalf(wb, 80) * da, dm = loadHalf(wb, 82) * da
        var scaled = 0, mins = 0
        for sb in 0..<16 {
            let sc = loadU8(wb, sb)
            var isum = 0
            for i in 0..<16 {
                let k = 16 * sb + i
                let q = Int((loadU8(wb, 16 + 32 * (k / 128) + k % 32) >> UInt8(2 * ((k % 128) / 32))) & 3)
                isum += q * Int(loadI8(ab, 4 + k))
            }
            scaled += Int(sc & 0xf) * isum
            mins += Int(sc >> 4) * Int(ab.loadUnaligned(fromByteOffset: 260 + 2 * sb, as: Int16.self))
            if sb % 8 == 7 && (halves || sb == 15) {
                acc = acc.addingProduct(Float(scaled), dd)
                accm = accm.addingProduct(Float(mins), dm)
                scaled = 0; mins = 0
            }
        }
    }
    return acc - accm
}

/// Quantizes `n` activations (a multiple of 32) to Q8_0 (`withSum` false) or Q8_1 blocks as
/// llama.cpp's x86 `quantize_row_q8_0` / `quantize_row_q8_1` do: d = amax / 127, multiplier
/// 127 / amax (not 1 / d), round to nearest even; Q8_1's s = fp16(d · Σq). The oracle for the C
/// activation quantizers.
func referenceQuantizeQ8(_ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutableRawPointer, withSum: Bool) {
    let blockBytes = withSum ? 36 : 34, qOffset = withSum ? 4 : 2
    for b in 0..<(n / 32) {
        let xb = x + 32 * b, ob = out + blockBytes * b
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(xb[j])) }
        let d = amax / 127
        let id: Float = amax != 0 ? 127 / amax : 0
        var sum = 0
        for j in 0..<32 {
            let q = Int((xb[j] * id).rounded(.toNearestOrEven))
            ob.storeBytes(of: Int8(truncatingIfNeeded: q), toByteOffset: qOffset + j, as: Int8.self)
            sum += q
        }
        ob.storeBytes(of: HalfPrecision.f16(from: d), as: UInt16.self)
        if withSum { ob.storeBytes(of: HalfPrecision.f16(from: d * Float(sum)), toByteOffset: 2, as: UInt16.self) }
    }
}

// MARK: - Q4_K / Q6_K in llama.cpp's x86 float order (bit-exact oracles)

/// Q4_K · Q8_K as llama.cpp's repacked 8x8 kernels compute it on x86: integer sums
/// Σ scale·dot and Σ min·bsum, each chained into a float by an FMA with (d·da) resp. (dmin·da),
/// per super-block (gemv: tokens outside whole groups of 4) or per 64 weights (`grouped`, gemm:
/// tokens in whole groups of 4); the result is acc − accMin.
func referenceDotQ4K(_ n: Int, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer, grouped: Bool) -> Float {
    var acc: Float = 0, accMin: Float = 0
    for b in 0..<(n / 256) {
        let wb = w + 144 * b, ab = a + 292 * b
        let da = ab.loadUnaligned(as: Float.self)
        let dd = loadHalf(wb, 0) * da, dm = loadHalf(wb, 2) * da
        var scaled = 0, mins = 0
        for chunk in 0..<4 {
            for sb in (2 * chunk)..<(2 * chunk + 2) {
                let (s, m) = kQuantScaleMin(sb, wb + 4)
                var isum = 0
                for i in 0..<32 {
                    let byte = loadU8(wb, 16 + 32 * chunk + i)
                    isum += Int(sb % 2 == 0 ? byte & 0xf : byte >> 4) * Int(loadI8(ab, 4 + 32 * sb + i))
                }
                let bsums = Int(ab.loadUnaligned(fromByteOffset: 260 + 4 * sb, as: Int16.self))
                    + Int(ab.loadUnaligned(fromByteOffset: 262 + 4 * sb, as: Int16.self))
                scaled += Int(s) * isum
                mins += Int(m) * bsums
            }
            if grouped {
                acc = acc.addingProduct(Float(scaled), dd)
                accMin = accMin.addingProduct(Float(mins), dm)
                scaled = 0; mins = 0
            }
        }
        if !grouped {
            acc = acc.addingProduct(Float(scaled), dd)
            accMin = accMin.addingProduct(Float(mins), dm)
        }
    }
    return acc - accMin
}

/// Q6_K · Q8_K as llama.cpp computes it on x86. Fewer than 8 tokens (ggml_vec_dot_q6_K_q8_K, AVX2):
/// 8 integer lanes per super-block (lane k: weights 4k..4k+3 of every 32 with their stored +32
/// levels, scaled, minus 32·Σ bsum·scale of sub-blocks 2k and 2k+1), each lane chained by
/// fma(da·d, lane, acc) over super-blocks, then ((0+4)+(2+6))+((1+5)+(3+7)). With `tiled` (its
/// tiled k-quant matmul, 8 or more tokens): y = fma(Float(S)·d, da, y) per super-block, S the
/// exact integer dot.
func referenceDotQ6K(_ n: Int, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer, tiled: Bool) -> Float {
    var lanesAcc = [Float](repeating: 0, count: 8)
    var y: Float = 0
    for b in 0..<(n / 256) {
        let wb = w + 210 * b, ab = a + 292 * b
        let da = ab.loadUnaligned(as: Float.self), d = loadHalf(wb, 208)
        @inline(__always) func scale(_ j: Int) -> Int { Int(loadI8(wb, 192 + j)) }
        @inline(__always) func bsum(_ j: Int) -> Int { Int(ab.loadUnaligned(fromByteOffset: 260 + 2 * j, as: Int16.self)) }
        var lanes = (0..<8).map { k in -32 * (bsum(2 * k) * scale(2 * k) + bsum(2 * k + 1) * scale(2 * k + 1)) }
        for e in 0..<256 {
            let h = e / 128, c = (e % 128) / 32, l = e % 32
            let qlByte = loadU8(wb, 64 * h + l + (c % 2 == 1 ? 32 : 0))
            let low = c < 2 ? qlByte & 0xf : qlByte >> 4
            let high = (loadU8(wb, 128 + 32 * h + l) >> UInt8(2 * c)) & 3
            lanes[l / 4] += scale(8 * h + 2 * c + (l >= 16 ? 1 : 0)) * Int(low | (high << 4)) * Int(loadI8(ab, 4 + e))
        }
        if tiled {
            y = y.addingProduct(Float(lanes.reduce(0, +)) * d, da)
        } else {
            let dd = da * d
            for k in 0..<8 { lanesAcc[k] = lanesAcc[k].addingProduct(dd, Float(lanes[k])) }
        }
    }
    if tiled { return y }
    let even = (lanesAcc[0] + lanesAcc[4]) + (lanesAcc[2] + lanesAcc[6])
    let odd = (lanesAcc[1] + lanesAcc[5]) + (lanesAcc[3] + lanesAcc[7])
    return even + odd
}

/// Q8_K activation quantization (quantize_row_q8_K_ref). With `grouped`, the sign rule of
/// llama.cpp's 4-row quantize_mat_q8_K (tokens in whole groups of 4 of a Q4_K product): the
/// scale is negative whenever +max occurs in the block, not by the first largest magnitude.
func referenceQuantizeQ8K(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer, grouped: Bool) {
    for b in 0..<(count / 256) {
        let xb = x + 256 * b, p = y + 292 * b
        var max: Float = 0, amax: Float = 0
        for j in 0..<256 where abs(xb[j]) > amax { amax = abs(xb[j]); max = xb[j] }
        if amax == 0 {
            p.initializeMemory(as: UInt8.self, repeating: 0, count: 292)
            continue
        }
        if grouped { max = (0..<256).contains { xb[$0] == amax } ? amax : -amax }
        let iscale = -127 / max
        for j in 0..<256 { p.storeBytes(of: Int8(Swift.min(127, nearestInt(iscale * xb[j]))), toByteOffset: 4 + j, as: Int8.self) }
        for j in 0..<16 {
            var sum = 0
            for i in 0..<16 { sum += Int(loadI8(p, 4 + 16 * j + i)) }
            p.storeBytes(of: Int16(sum), toByteOffset: 260 + 2 * j, as: Int16.self)
        }
        p.storeBytes(of: 1 / iscale, toByteOffset: 0, as: Float.self)
    }
}

extension QuantKernels {
    /// Prepares activation row `token` of a `tokens`-row product with `weightType` weights the way
    /// llama.cpp's CPU backend does (for Q4_K, rows in whole groups of 4 use its 4-row quantizer's
    /// sign rule), by the C kernel `kernel`.
    /// `repacked`: the weights are ones llama.cpp repacks (``QuantizedMatrix/llamaRepacked``).
    public static func quantizeActivationRow(weightType: GGMLType, _ x: UnsafePointer<Float>, count: Int,
                                             token: Int, tokens: Int, into out: UnsafeMutableRawPointer,
                                             kernel: QuantKernel = .best, repacked: Bool = false) {
        _ = swiftlet_qk_quantize_row_layout(kernel.rawValue, Int32(weightType.rawValue), repacked ? 1 : 0, x, out,
                                            Int32(count), Int32(token), Int32(tokens))
    }

    /// The Swift reference of ``quantizeActivationRow(weightType:_:count:token:tokens:into:kernel:)``
    /// for the k-quant weight types.
    public static func referenceQuantizeActivationRow(weightType: GGMLType, _ x: UnsafePointer<Float>, count: Int,
                                                      token: Int, tokens: Int, into out: UnsafeMutableRawPointer,
                                                      repacked: Bool = false) {
        precondition(weightType.activationType == .q8_K, "referenceQuantizeActivationRow: k-quant weights only")
        let groupedType = weightType == .q4_K || (weightType == .q2_K && repacked)
        referenceQuantizeQ8K(x, count: count, into: out, grouped: groupedType && token < tokens - tokens % 4)
    }

    /// `y[t * rows + r] = Σ w_r · a_t` for `tokens` activation rows (`activationStride` bytes
    /// apart, already in the paired type) by the C kernel `kernel`, with llama.cpp's per-token-count
    /// float order for Q4_K / Q6_K (see ``referenceMatmul(_:count:weights:rows:activations:activationStride:tokens:)``).
    public static func matmul(_ type: GGMLType, count: Int, weights: UnsafeRawPointer, rows: Int,
                              activations: UnsafeRawPointer, activationStride: Int, tokens: Int,
                              into y: UnsafeMutablePointer<Float>, kernel: QuantKernel = .best, repacked: Bool = false) {
        let rowBytes = type.rowBytes(count) ?? 0
        _ = swiftlet_qk_gemm_layout(kernel.rawValue, Int32(type.rawValue), repacked ? 1 : 0, Int32(count), weights, rowBytes,
                                    Int32(rows), activations, activationStride, Int32(tokens), y, rows)
    }

    /// The Swift oracle of llama.cpp's repacked orders (``QuantizedMatrix/llamaRepacked``) for
    /// Q4_0, IQ4_NL and Q2_K: one chain per output for Q4_0 / IQ4_NL; for Q2_K, tokens in whole
    /// groups of 4 per 128-weight half (its gemm), the rest per super-block (its gemv).
    public static func referenceRepackedMatmul(_ type: GGMLType, count: Int, weights: UnsafeRawPointer, rows: Int,
                                               activations: UnsafeRawPointer, activationStride: Int, tokens: Int) -> [Float] {
        precondition([.q4_0, .iq4_nl, .q2_K].contains(type), "referenceRepackedMatmul: Q4_0, IQ4_NL, Q2_K only")
        let rowBytes = type.rowBytes(count)!
        var y = [Float](repeating: 0, count: rows * tokens)
        for t in 0..<tokens {
            for r in 0..<rows {
                let w = weights + r * rowBytes, act = activations + t * activationStride
                y[t * rows + r] = type == .q2_K ? referenceDotQ2KRepacked(count, w, act, halves: t < tokens - tokens % 4)
                                                : referenceDotBlock32Repacked(type, count, w, act)
            }
        }
        return y
    }

    /// The Swift oracle of ``matmul(_:count:weights:rows:activations:activationStride:tokens:into:kernel:)``
    /// for the k-quants: Q4_K tokens in whole groups of 4 take llama.cpp's gemm order, the rest
    /// its gemv order; Q6_K takes its tiled order for 8 or more tokens, its vec_dot order below;
    /// Q2_K, Q3_K, Q5_K and IQ4_XS take the tiled order for 8 or more tokens.
    public static func referenceMatmul(_ type: GGMLType, count: Int, weights: UnsafeRawPointer, rows: Int,
                                       activations: UnsafeRawPointer, activationStride: Int, tokens: Int) -> [Float] {
        precondition([.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs].contains(type), "referenceMatmul: k-quants only")
        let rowBytes = type.rowBytes(count)!
        var y = [Float](repeating: 0, count: rows * tokens)
        for t in 0..<tokens {
            let act = activations + t * activationStride
            for r in 0..<rows {
                let w = weights + r * rowBytes
                y[t * rows + r] = type == .q4_K ? referenceDotQ4K(count, w, act, grouped: t < tokens - tokens % 4)
                    : type == .q6_K ? referenceDotQ6K(count, w, act, tiled: tokens >= 8)
                    : SwiftletQuant.referenceDot(type, count, w, act, tiled: tokens >= 8)
            }
        }
        return y
    }
}
