import SwiftletCore
import SwiftletTensor

// Scalar reference dequantization of every supported block format, following ggml's byte layouts
// (ggml-common.h). These loops are the oracle for the fast kernels and serve embedding lookups.

@inline(__always) func loadU8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 { p.load(fromByteOffset: offset, as: UInt8.self) }
@inline(__always) func loadI8(_ p: UnsafeRawPointer, _ offset: Int) -> Int8 { p.load(fromByteOffset: offset, as: Int8.self) }
@inline(__always) func loadU16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 { p.loadUnaligned(fromByteOffset: offset, as: UInt16.self) }
@inline(__always) func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float { HalfPrecision.float(fromF16: loadU16(p, offset)) }

/// The 16 non-uniform levels of IQ4_NL / IQ4_XS (ggml's `kvalues_iq4nl`).
let iq4nlValues: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

/// Scale and min of sub-block `j` of a Q4_K / Q5_K super-block: 8 pairs of 6-bit values packed in
/// 12 bytes (the low 6 bits of bytes 0-7, the high 2 bits of bytes 0-7 spill for j ≥ 4 into 8-11).
@inline(__always)
func kQuantScaleMin(_ j: Int, _ scales: UnsafeRawPointer) -> (scale: UInt8, min: UInt8) {
    if j < 4 {
        return (loadU8(scales, j) & 63, loadU8(scales, j + 4) & 63)
    }
    let s = (loadU8(scales, j + 4) & 0xf) | ((loadU8(scales, j - 4) >> 6) << 4)
    let m = (loadU8(scales, j + 4) >> 4) | ((loadU8(scales, j) >> 6) << 4)
    return (s, m)
}

/// Signed 6-bit scale `j` (0..<16) of a Q3_K super-block, stored as 4-bit low parts in bytes 0-7
/// and 2-bit high parts in bytes 8-11, minus its bias 32.
@inline(__always)
func q3KScale(_ j: Int, _ packed: UnsafeRawPointer) -> Int {
    let low = j < 8 ? loadU8(packed, j) & 0xf : loadU8(packed, j - 8) >> 4
    let high = (loadU8(packed, 8 + j % 4) >> UInt8(2 * (j / 4))) & 3
    return Int(low | (high << 4)) - 32
}

/// Dequantizes `count` values of `type` (a whole number of blocks) from `src` into `out`, without
/// checking sizes. The caller guarantees `src` holds `type.rowBytes(count)` bytes.
func dequantizeUnchecked(_ type: GGMLType, _ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    let t = type.traits
    let blocks = count / t.blockSize
    switch type {
    case .f32:
        out.update(from: src.assumingMemoryBound(to: Float.self), count: count)
    case .f16:
        for i in 0..<count { out[i] = loadHalf(src, 2 * i) }
    case .bf16:
        for i in 0..<count { out[i] = HalfPrecision.float(fromBF16: loadU16(src, 2 * i)) }
    case .q4_0:
        for b in 0..<blocks {
            let p = src + b * 18, y = out + b * 32
            let d = loadHalf(p, 0)
            for j in 0..<16 {
                let q = loadU8(p, 2 + j)
                y[j] = Float(Int(q & 0xf) - 8) * d
                y[j + 16] = Float(Int(q >> 4) - 8) * d
            }
        }
    case .q4_1:
        for b in 0..<blocks {
            let p = src + b * 20, y = out + b * 32
            let d = loadHalf(p, 0), m = loadHalf(p, 2)
            for j in 0..<16 {
                let q = loadU8(p, 4 + j)
                y[j] = Float(q & 0xf) * d + m
                y[j + 16] = Float(q >> 4) * d + m
            }
        }
    case .q5_0:
        for b in 0..<blocks {
            let p = src + b * 22, y = out + b * 32
            let d = loadHalf(p, 0)
            let qh = p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            for j in 0..<16 {
                let q = loadU8(p, 6 + j)
                let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                y[j] = Float(Int((q & 0xf) | h0) - 16) * d
                y[j + 16] = Float(Int((q >> 4) | h1) - 16) * d
            }
        }
    case .q5_1:
        for b in 0..<blocks {
            let p = src + b * 24, y = out + b * 32
            let d = loadHalf(p, 0), m = loadHalf(p, 2)
            let qh = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            for j in 0..<16 {
                let q = loadU8(p, 8 + j)
                let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                y[j] = Float((q & 0xf) | h0) * d + m
                y[j + 16] = Float((q >> 4) | h1) * d + m
            }
        }
    case .q8_0:
        for b in 0..<blocks {
            let p = src + b * 34, y = out + b * 32
            let d = loadHalf(p, 0)
            for j in 0..<32 { y[j] = Float(loadI8(p, 2 + j)) * d }
        }
    case .q8_1:
        for b in 0..<blocks {
            let p = src + b * 36, y = out + b * 32
            let d = loadHalf(p, 0)
            for j in 0..<32 { y[j] = Float(loadI8(p, 4 + j)) * d }
        }
    case .q8_K:
        for b in 0..<blocks {
            let p = src + b * 292, y = out + b * 256
            let d = p.loadUnaligned(as: Float.self)
            for j in 0..<256 { y[j] = d * Float(loadI8(p, 4 + j)) }
        }
    case .q2_K:
        for b in 0..<blocks {
            let p = src + b * 84
            var y = out + b * 256
            let d = loadHalf(p, 80), dmin = loadHalf(p, 82)
            var sbi = 0
            for n in stride(from: 0, to: 256, by: 128) {
                let q = p + 16 + n / 4
                for shift in stride(from: 0, to: 8, by: 2) {
                    for half in 0..<2 {
                        let sc = loadU8(p, sbi); sbi += 1
                        let dl = d * Float(sc & 0xf), ml = dmin * Float(sc >> 4)
                        for l in 0..<16 {
                            y[l] = dl * Float((loadU8(q, l + 16 * half) >> UInt8(shift)) & 3) - ml
                        }
                        y += 16
                    }
                }
            }
        }
    case .q3_K:
        for b in 0..<blocks {
            let p = src + b * 110
            var y = out + b * 256
            let d = loadHalf(p, 108)
            let hm = p, scales = p + 96
            var sbi = 0
            var mask: UInt8 = 1
            for n in stride(from: 0, to: 256, by: 128) {
                let q = p + 32 + n / 4
                for shift in stride(from: 0, to: 8, by: 2) {
                    for half in 0..<2 {
                        let dl = d * Float(q3KScale(sbi, scales)); sbi += 1
                        for l in 0..<16 {
                            let k = l + 16 * half
                            let low = Int((loadU8(q, k) >> UInt8(shift)) & 3)
                            let v = low - (loadU8(hm, k) & mask != 0 ? 0 : 4)
                            y[l] = dl * Float(v)
                        }
                        y += 16
                    }
                    mask <<= 1
                }
            }
        }
    case .q4_K:
        for b in 0..<blocks {
            let p = src + b * 144
            var y = out + b * 256
            let d = loadHalf(p, 0), dmin = loadHalf(p, 2)
            var q = p + 16
            for j in stride(from: 0, to: 8, by: 2) {
                let (s1, m1) = kQuantScaleMin(j, p + 4), (s2, m2) = kQuantScaleMin(j + 1, p + 4)
                let d1 = d * Float(s1), mm1 = dmin * Float(m1)
                let d2 = d * Float(s2), mm2 = dmin * Float(m2)
                for l in 0..<32 { y[l] = d1 * Float(loadU8(q, l) & 0xf) - mm1 }
                for l in 0..<32 { y[32 + l] = d2 * Float(loadU8(q, l) >> 4) - mm2 }
                y += 64; q += 32
            }
        }
    case .q5_K:
        for b in 0..<blocks {
            let p = src + b * 176
            var y = out + b * 256
            let d = loadHalf(p, 0), dmin = loadHalf(p, 2)
            let qh = p + 16
            var ql = p + 48
            var u1: UInt8 = 1, u2: UInt8 = 2
            for j in stride(from: 0, to: 8, by: 2) {
                let (s1, m1) = kQuantScaleMin(j, p + 4), (s2, m2) = kQuantScaleMin(j + 1, p + 4)
                let d1 = d * Float(s1), mm1 = dmin * Float(m1)
                let d2 = d * Float(s2), mm2 = dmin * Float(m2)
                for l in 0..<32 {
                    let h: UInt8 = loadU8(qh, l) & u1 != 0 ? 16 : 0
                    y[l] = d1 * Float((loadU8(ql, l) & 0xf) + h) - mm1
                }
                for l in 0..<32 {
                    let h: UInt8 = loadU8(qh, l) & u2 != 0 ? 16 : 0
                    y[32 + l] = d2 * Float((loadU8(ql, l) >> 4) + h) - mm2
                }
                y += 64; ql += 32; u1 <<= 2; u2 <<= 2
            }
        }
    case .q6_K:
        for b in 0..<blocks {
            let p = src + b * 210
            var y = out + b * 256
            let d = loadHalf(p, 208)
            var ql = p, qh = p + 128, sc = p + 192
            for _ in 0..<2 {
                for l in 0..<32 {
                    let sbi = l / 16
                    let h = loadU8(qh, l)
                    let q1 = Int((loadU8(ql, l) & 0xf) | ((h & 3) << 4)) - 32
                    let q2 = Int((loadU8(ql, l + 32) & 0xf) | (((h >> 2) & 3) << 4)) - 32
                    let q3 = Int((loadU8(ql, l) >> 4) | (((h >> 4) & 3) << 4)) - 32
                    let q4 = Int((loadU8(ql, l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
                    y[l] = d * Float(loadI8(sc, sbi)) * Float(q1)
                    y[l + 32] = d * Float(loadI8(sc, sbi + 2)) * Float(q2)
                    y[l + 64] = d * Float(loadI8(sc, sbi + 4)) * Float(q3)
                    y[l + 96] = d * Float(loadI8(sc, sbi + 6)) * Float(q4)
                }
                y += 128; ql += 64; qh += 32; sc += 8
            }
        }
    case .iq4_nl:
        for b in 0..<blocks {
            let p = src + b * 18, y = out + b * 32
            let d = loadHalf(p, 0)
            for j in 0..<16 {
                let q = loadU8(p, 2 + j)
                y[j] = d * Float(iq4nlValues[Int(q & 0xf)])
                y[j + 16] = d * Float(iq4nlValues[Int(q >> 4)])
            }
        }
    case .iq4_xs:
        for b in 0..<blocks {
            let p = src + b * 136
            var y = out + b * 256
            let d = loadHalf(p, 0)
            let scalesH = loadU16(p, 2)
            var qs = p + 8
            for ib in 0..<8 {
                let low = (Int(loadU8(p, 4 + ib / 2)) >> (4 * (ib % 2))) & 0xf
                let high = (Int(scalesH) >> (2 * ib)) & 3
                let dl = d * Float((low | (high << 4)) - 32)
                for j in 0..<16 {
                    let q = loadU8(qs, j)
                    y[j] = dl * Float(iq4nlValues[Int(q & 0xf)])
                    y[j + 16] = dl * Float(iq4nlValues[Int(q >> 4)])
                }
                y += 32; qs += 16
            }
        }
    default:
        // Unsupported types are rejected by `GGMLType.isQuantSupported` before reaching here.
        out.update(repeating: .nan, count: count)
    }
}

extension GGMLType {
    /// Bytes of `count` values, or a descriptive error when the type is unsupported or `count` is
    /// not a whole number of blocks.
    func checkedBytes(_ count: Int, op: String) throws -> Int {
        guard isQuantSupported else { throw SwiftletError.unsupportedTensorType("\(self) (\(op))") }
        guard let bytes = rowBytes(count) else {
            throw SwiftletError.invalidArgument("\(op): \(count) values of \(self) is not a whole number of \(traits.blockSize)-value blocks")
        }
        return bytes
    }
}

/// Dequantizes `count` values of block format `type` from `src` into `out[0..<count]`.
///
/// - Throws: ``SwiftletError/unsupportedTensorType(_:)`` for a type SwiftletQuant does not handle;
///   ``SwiftletError/invalidArgument(_:)`` when `count` is not a whole number of blocks;
///   ``SwiftletError/shapeMismatch(op:detail:)`` when `src` is smaller than `count` values need.
public func dequantize(_ type: GGMLType, src: UnsafeRawBufferPointer, count: Int,
                       into out: UnsafeMutablePointer<Float>) throws {
    let bytes = try type.checkedBytes(count, op: "dequantize")
    guard src.count >= bytes else {
        throw SwiftletError.shapeMismatch(op: "dequantize", detail: "\(count) values of \(type) need \(bytes) bytes, got \(src.count)")
    }
    guard count > 0, let base = src.baseAddress else { return }
    dequantizeUnchecked(type, base, count: count, into: out)
}
