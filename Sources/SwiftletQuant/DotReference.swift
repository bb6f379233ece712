import SwiftletTensor

// Scalar reference dot products of a weight row (block format) with an activation row quantized
// to the weight's paired type (as in ggml's `vec_dot_*`): the oracle for the C kernels.
// Integer sums per (sub-)block, then float scaling per block.

extension GGMLType {
    /// The activation block type a weight of this type is multiplied with (ggml's `vec_dot_type`):
    /// Q8_0 for Q4_0 / Q5_0 / Q8_0 / IQ4_NL, Q8_1 for Q4_1 / Q5_1, Q8_K for the k-quants and
    /// IQ4_XS; F32 for the float types (activations stay f32).
    public var activationType: GGMLType {
        switch self {
        case .q4_0, .q5_0, .q8_0, .iq4_nl: return .q8_0
        case .q4_1, .q5_1: return .q8_1
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs, .q8_K: return .q8_K
        default: return .f32
        }
    }

    /// Whether ``QuantizedMatrix`` and the dot kernels handle this weight type.
    public var hasDotKernel: Bool {
        isQuantSupported && self != .q8_1
    }
}

/// `Σ w[i]·a[i]` over `n` weights: `w` one row of `type`, `a` the activation row in
/// `type.activationType` (f32 for float weight types).
func referenceDot(_ type: GGMLType, _ n: Int, _ w: UnsafeRawPointer, _ a: UnsafeRawPointer) -> Float {
    var sum: Float = 0
    switch type {
    case .f32, .f16, .bf16:
        let x = a.assumingMemoryBound(to: Float.self)
        for i in 0..<n {
            let wi: Float = type == .f32 ? w.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                : type == .f16 ? loadHalf(w, 2 * i) : HalfPrecision.float(fromBF16: loadU16(w, 2 * i))
            sum += wi * x[i]
        }
    case .q4_0, .q5_0, .q8_0, .iq4_nl:
        // Activation: Q8_0 blocks {f16 d; i8 q[32]}.
        let bytes = type.traits.typeSize
        for b in 0..<(n / 32) {
            let wb = w + bytes * b, ab = a + 34 * b
            var isum = 0
            for j in 0..<32 {
                let wq: Int
                switch type {
                case .q4_0:
                    let q = loadU8(wb, 2 + j % 16)
                    wq = Int(j < 16 ? q & 0xf : q >> 4) - 8
                case .q5_0:
                    let q = loadU8(wb, 6 + j % 16)
                    let qh = wb.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
                    wq = Int((j < 16 ? q & 0xf : q >> 4) | UInt8(((qh >> UInt32(j)) & 1) << 4)) - 16
                case .q8_0:
                    wq = Int(loadI8(wb, 2 + j))
                default:
                    let q = loadU8(wb, 2 + j % 16)
                    wq = Int(iq4nlValues[Int(j < 16 ? q & 0xf : q >> 4)])
                }
                isum += wq * Int(loadI8(ab, 2 + j))
            }
            sum += loadHalf(wb, 0) * loadHalf(ab, 0) * Float(isum)
        }
    case .q4_1, .q5_1:
        // Activation: Q8_1 blocks {f16 d; f16 s = d·Σq; i8 q[32]}.
        let bytes = type.traits.typeSize
        for b in 0..<(n / 32) {
            let wb = w + bytes * b, ab = a + 36 * b
            var isum = 0
            for j in 0..<32 {
                let wq: Int
                if type == .q4_1 {
                    let q = loadU8(wb, 4 + j % 16)
                    wq = Int(j < 16 ? q & 0xf : q >> 4)
                } else {
                    let q = loadU8(wb, 8 + j % 16)
                    let qh = wb.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
                    wq = Int((j < 16 ? q & 0xf : q >> 4) | UInt8(((qh >> UInt32(j)) & 1) << 4))
                }
                isum += wq * Int(loadI8(ab, 4 + j))
            }
            sum += loadHalf(wb, 0) * loadHalf(ab, 0) * Float(isum) + loadHalf(wb, 2) * loadHalf(ab, 2)
        }
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
                sum += da * (loadHalf(wb, 80) * Float(scaled) - loadHalf(wb, 82) * Float(mins))
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
                sum += da * loadHalf(wb, 108) * Float(scaled)
            case .q4_K, .q5_K:
                var scaled = 0, mins = 0
                for sb in 0..<8 {
                    let (s, m) = kQuantScaleMin(sb, wb + 4)
                    var isum = 0
                    for i in 0..<32 {
                        let k = 32 * sb + i
                        let byte = (type == .q4_K ? 16 : 48) + 32 * (sb / 2) + i
                        var q = Int(sb % 2 == 0 ? loadU8(wb, byte) & 0xf : loadU8(wb, byte) >> 4)
                        if type == .q5_K { q += Int((loadU8(wb, 16 + i) >> UInt8(sb)) & 1) << 4 }
                        isum += q * Int(loadI8(aq, k))
                    }
                    scaled += Int(s) * isum
                    mins += Int(m) * (bsum(2 * sb) + bsum(2 * sb + 1))
                }
                sum += da * (loadHalf(wb, 0) * Float(scaled) - loadHalf(wb, 2) * Float(mins))
            case .q6_K:
                var scaled = 0
                for sb in 0..<16 {
                    var isum = 0
                    for i in 0..<16 {
                        let k = 16 * sb + i
                        // Element k: half h = k/128, quarter c = (k%128)/32, l = k%32.
                        let h = k / 128, c = (k % 128) / 32, l = k % 32
                        let qlByte = loadU8(wb, 64 * h + l + (c % 2 == 1 ? 32 : 0))
                        let low = c < 2 ? qlByte & 0xf : qlByte >> 4
                        let high = (loadU8(wb, 128 + 32 * h + l) >> UInt8(2 * c)) & 3
                        isum += (Int(low | (high << 4)) - 32) * Int(loadI8(aq, k))
                    }
                    scaled += Int(loadI8(wb, 192 + sb)) * isum
                }
                sum += da * loadHalf(wb, 208) * Float(scaled)
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
                sum += da * d * Float(scaled)
            }
        }
    default:
        return .nan
    }
    return sum
}
