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

/// Dequantizes one block of a format: `block` points at its `typeSize` bytes, `out` receives its
/// `blockSize` values.
typealias BlockDequantizer = (_ block: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) -> Void

extension GGMLType {
    /// The scalar dequantizer of one block of this type; nil for the element types and the types
    /// without a codec.
    var blockDequantizer: BlockDequantizer? {
        switch self {
        case .q4_0: dequantizeBlockQ4_0
        case .q4_1: dequantizeBlockQ4_1
        case .q5_0: dequantizeBlockQ5_0
        case .q5_1: dequantizeBlockQ5_1
        case .q8_0: dequantizeBlockQ8_0
        case .q8_1: dequantizeBlockQ8_1
        case .q8_K: dequantizeBlockQ8_K
        case .q2_K: dequantizeBlockQ2_K
        case .q3_K: dequantizeBlockQ3_K
        case .q4_K: dequantizeBlockQ4_K
        case .q5_K: dequantizeBlockQ5_K
        case .q6_K: dequantizeBlockQ6_K
        case .iq4_nl: dequantizeBlockIQ4_NL
        case .iq4_xs: dequantizeBlockIQ4_XS
        default: nil
        }
    }
}

/// Dequantizes `count` values of `type` (a whole number of blocks) from `src` into `out`, without
/// checking sizes. The caller guarantees `src` holds `type.rowBytes(count)` bytes.
func dequantizeUnchecked(_ type: GGMLType, _ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
    switch type {
    case .f32:
        out.update(from: src.assumingMemoryBound(to: Float.self), count: count)
    case .f16:
        for i in 0..<count { out[i] = loadHalf(src, 2 * i) }
    case .bf16:
        for i in 0..<count { out[i] = HalfPrecision.float(fromBF16: loadU16(src, 2 * i)) }
    default:
        guard let dequantizeBlock = type.blockDequantizer else {
            // Unsupported types are rejected by `GGMLType.isQuantSupported` before reaching here.
            out.update(repeating: .nan, count: count)
            return
        }
        let traits = type.traits
        for b in 0..<count / traits.blockSize {
            dequantizeBlock(src + b * traits.typeSize, out + b * traits.blockSize)
        }
    }
}

// One function per block layout of ggml-common.h; byte offsets are those of its `block_*` structs.

/// `block_q4_0`: f16 d, 16 bytes of 4-bit quants (low nibbles are values 0-15, high 16-31), bias 8.
private func dequantizeBlockQ4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), qs = p + 2
    for j in 0..<16 {
        let q = loadU8(qs, j)
        y[j] = Float(Int(q & 0xf) - 8) * d
        y[j + 16] = Float(Int(q >> 4) - 8) * d
    }
}

/// `block_q4_1`: f16 d, f16 m, 16 bytes of 4-bit quants.
private func dequantizeBlockQ4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), m = loadHalf(p, 2), qs = p + 4
    for j in 0..<16 {
        let q = loadU8(qs, j)
        y[j] = Float(q & 0xf) * d + m
        y[j + 16] = Float(q >> 4) * d + m
    }
}

/// Fifth bits of values `j` and `j + 16` of a Q5 block from its 32-bit `qh`, placed at bit 4.
@inline(__always)
private func q5HighBits(_ qh: UInt32, _ j: Int) -> (UInt8, UInt8) {
    (UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10),
     UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10))
}

/// `block_q5_0`: f16 d, 32 fifth bits, 16 bytes of low nibbles, bias 16.
private func dequantizeBlockQ5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), qh = p.loadUnaligned(fromByteOffset: 2, as: UInt32.self), qs = p + 6
    for j in 0..<16 {
        let q = loadU8(qs, j), (h0, h1) = q5HighBits(qh, j)
        y[j] = Float(Int((q & 0xf) | h0) - 16) * d
        y[j + 16] = Float(Int((q >> 4) | h1) - 16) * d
    }
}

/// `block_q5_1`: f16 d, f16 m, 32 fifth bits, 16 bytes of low nibbles.
private func dequantizeBlockQ5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), m = loadHalf(p, 2), qh = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self), qs = p + 8
    for j in 0..<16 {
        let q = loadU8(qs, j), (h0, h1) = q5HighBits(qh, j)
        y[j] = Float((q & 0xf) | h0) * d + m
        y[j + 16] = Float((q >> 4) | h1) * d + m
    }
}

/// `block_q8_0`: f16 d, 32 signed bytes.
private func dequantizeBlockQ8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), qs = p + 2
    for j in 0..<32 { y[j] = Float(loadI8(qs, j)) * d }
}

/// `block_q8_1`: f16 d, f16 s (d times the sum of the quants, unused here), 32 signed bytes.
private func dequantizeBlockQ8_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), qs = p + 4
    for j in 0..<32 { y[j] = Float(loadI8(qs, j)) * d }
}

/// `block_q8_K`: f32 d, 256 signed bytes, 16 int16 block sums (unused here).
private func dequantizeBlockQ8_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = p.loadUnaligned(as: Float.self), qs = p + 4
    for j in 0..<256 { y[j] = d * Float(loadI8(qs, j)) }
}

/// `block_q2_K`: 16 bytes of 4-bit scale/min pairs, 64 bytes of 2-bit quants, f16 d, f16 dmin.
private func dequantizeBlockQ2_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let scales = p, quants = p + 16, d = loadHalf(p, 80), dmin = loadHalf(p, 82)
    var y = out, sub = 0
    for n in stride(from: 0, to: 256, by: 128) {
        let q = quants + n / 4
        for shift in stride(from: 0, to: 8, by: 2) {
            for half in 0..<2 {
                let sc = loadU8(scales, sub); sub += 1
                let dl = d * Float(sc & 0xf), ml = dmin * Float(sc >> 4)
                for l in 0..<16 {
                    y[l] = dl * Float((loadU8(q, l + 16 * half) >> UInt8(shift)) & 3) - ml
                }
                y += 16
            }
        }
    }
}

/// `block_q3_K`: 32 bytes of high-bit masks, 64 bytes of 2-bit quants, 12 bytes of 6-bit scales,
/// f16 d.
private func dequantizeBlockQ3_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let highMask = p, quants = p + 32, scales = p + 96, d = loadHalf(p, 108)
    var y = out, sub = 0
    var mask: UInt8 = 1
    for n in stride(from: 0, to: 256, by: 128) {
        let q = quants + n / 4
        for shift in stride(from: 0, to: 8, by: 2) {
            for half in 0..<2 {
                let dl = d * Float(q3KScale(sub, scales)); sub += 1
                for l in 0..<16 {
                    let k = l + 16 * half
                    let low = Int((loadU8(q, k) >> UInt8(shift)) & 3)
                    y[l] = dl * Float(low - (loadU8(highMask, k) & mask != 0 ? 0 : 4))
                }
                y += 16
            }
            mask <<= 1
        }
    }
}

/// `block_q4_K`: f16 d, f16 dmin, 12 bytes of 6-bit scale/min pairs, 128 bytes of 4-bit quants.
private func dequantizeBlockQ4_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), dmin = loadHalf(p, 2), scales = p + 4
    var y = out, q = p + 16
    for j in stride(from: 0, to: 8, by: 2) {
        let (s1, m1) = kQuantScaleMin(j, scales), (s2, m2) = kQuantScaleMin(j + 1, scales)
        let d1 = d * Float(s1), mm1 = dmin * Float(m1)
        let d2 = d * Float(s2), mm2 = dmin * Float(m2)
        for l in 0..<32 { y[l] = d1 * Float(loadU8(q, l) & 0xf) - mm1 }
        for l in 0..<32 { y[32 + l] = d2 * Float(loadU8(q, l) >> 4) - mm2 }
        y += 64; q += 32
    }
}

/// `block_q5_K`: f16 d, f16 dmin, 12 bytes of scale/min pairs, 32 bytes of fifth bits, 128 bytes
/// of low nibbles.
private func dequantizeBlockQ5_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), dmin = loadHalf(p, 2), scales = p + 4, qh = p + 16
    var y = out, ql = p + 48
    var u1: UInt8 = 1, u2: UInt8 = 2
    for j in stride(from: 0, to: 8, by: 2) {
        let (s1, m1) = kQuantScaleMin(j, scales), (s2, m2) = kQuantScaleMin(j + 1, scales)
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

/// `block_q6_K`: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed 8-bit scales,
/// f16 d; bias 32.
private func dequantizeBlockQ6_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 208)
    var y = out, ql = p, qh = p + 128, sc = p + 192
    for _ in 0..<2 {
        for l in 0..<32 {
            let sub = l / 16
            let h = loadU8(qh, l)
            let q1 = Int((loadU8(ql, l) & 0xf) | ((h & 3) << 4)) - 32
            let q2 = Int((loadU8(ql, l + 32) & 0xf) | (((h >> 2) & 3) << 4)) - 32
            let q3 = Int((loadU8(ql, l) >> 4) | (((h >> 4) & 3) << 4)) - 32
            let q4 = Int((loadU8(ql, l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
            y[l] = d * Float(loadI8(sc, sub)) * Float(q1)
            y[l + 32] = d * Float(loadI8(sc, sub + 2)) * Float(q2)
            y[l + 64] = d * Float(loadI8(sc, sub + 4)) * Float(q3)
            y[l + 96] = d * Float(loadI8(sc, sub + 6)) * Float(q4)
        }
        y += 128; ql += 64; qh += 32; sc += 8
    }
}

/// `block_iq4_nl`: f16 d, 16 bytes of 4-bit indices into `iq4nlValues`.
private func dequantizeBlockIQ4_NL(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), qs = p + 2
    for j in 0..<16 {
        let q = loadU8(qs, j)
        y[j] = d * Float(iq4nlValues[Int(q & 0xf)])
        y[j + 16] = d * Float(iq4nlValues[Int(q >> 4)])
    }
}

/// `block_iq4_xs`: f16 d, 16 high scale bits, 4 bytes of low scale nibbles, 128 bytes of indices.
private func dequantizeBlockIQ4_XS(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    let d = loadHalf(p, 0), scalesHigh = Int(loadU16(p, 2)), scalesLow = p + 4
    var y = out, qs = p + 8
    for ib in 0..<8 {
        let low = (Int(loadU8(scalesLow, ib / 2)) >> (4 * (ib % 2))) & 0xf
        let high = (scalesHigh >> (2 * ib)) & 3
        let dl = d * Float((low | (high << 4)) - 32)
        for j in 0..<16 {
            let q = loadU8(qs, j)
            y[j] = dl * Float(iq4nlValues[Int(q & 0xf)])
            y[j + 16] = dl * Float(iq4nlValues[Int(q >> 4)])
        }
        y += 32; qs += 16
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
