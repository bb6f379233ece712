import SwiftletCore
import SwiftletTensor

// Reference quantizers: the same algorithms as ggml's `quantize_row_*_ref` (and, for IQ4_NL /
// IQ4_XS, `quantize_iq4_nl` / `quantize_iq4_xs` without an importance matrix), so a tensor
// quantized here has the same bytes as one quantized by ggml. Float operations are kept in ggml's
// evaluation order: the scale searches compare sums whose last bit can flip a choice.

@inline(__always) func storeU8(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt8) { p.storeBytes(of: v, toByteOffset: offset, as: UInt8.self) }
@inline(__always) func storeU16(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt16) { p.storeBytes(of: v, toByteOffset: offset, as: UInt16.self) }
@inline(__always) func storeHalf(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: Float) { storeU16(p, offset, HalfPrecision.f16(from: v)) }
@inline(__always) func roundHalfAway(_ v: Float) -> Float { v.rounded(.toNearestOrAwayFromZero) }
/// C's `(int8_t)(float)`: truncation toward zero, then wrap to 8 bits.
@inline(__always) func truncToInt8(_ v: Float) -> Int { Int(Int8(truncatingIfNeeded: Int(v.rounded(.towardZero)))) }

/// ggml's `nearest_int`: round to nearest (ties to even) through the float adder, valid for
/// |v| ≤ 4194303.
@inline(__always)
func nearestInt(_ v: Float) -> Int {
    let shifted = v + 12582912.0
    return Int(Int32(bitPattern: shifted.bitPattern & 0x007f_ffff) - 0x0040_0000)
}

/// ggml's `make_q3_quants` with `do_rmse`: symmetric levels refined one weight at a time.
private func makeQ3Quants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
    let (max, amax) = largestMagnitude(x, n)
    if amax < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let iscale = -Float(nmax) / max
    var sumlx: Float = 0, suml2: Float = 0
    for i in 0..<n {
        let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
        L[i] = Int8(l)
        let w = x[i] * x[i]
        sumlx += w * x[i] * Float(l)
        suml2 += w * Float(l) * Float(l)
    }
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = x[i] * x[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            if slx > 0 {
                var sl2 = suml2 - w * li * li
                let newL = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(x[i] * sl2 / slx)))
                if newL != Int(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = Int8(newL); sumlx = slx; suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    for i in 0..<n { L[i] += Int8(nmax) }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// ggml's `best_index_int8`: index of the level of the sorted `values` nearest to `x` (ties to
/// the upper level).
@inline(__always)
func bestIndexIQ4(_ x: Float) -> Int {
    return iq4nlValues.withUnsafeBufferPointer { val -> Int in
        if x <= Float(val[0]) { return 0 }
        if x >= Float(val[15]) { return 15 }
        var ml = 0, mu = 15
        while mu - ml > 1 {
            let mav = (ml + mu) / 2
            if x < Float(val[mav]) { mu = mav } else { ml = mav }
        }
        return x - Float(val[mu - 1]) < Float(val[mu]) - x ? mu - 1 : mu
    }
}

/// Quantizes `count` values (whole blocks) of `x` into `y` in format `type`, without size checks.
func quantizeUnchecked(_ type: GGMLType, _ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer) {
    let blocks = count / type.traits.blockSize
    switch type {
    case .f32:
        y.copyMemory(from: x, byteCount: 4 * count)
    case .f16:
        for i in 0..<count { storeU16(y, 2 * i, HalfPrecision.f16(from: x[i])) }
    case .bf16:
        for i in 0..<count { storeU16(y, 2 * i, HalfPrecision.bf16(from: x[i])) }
    case .q4_0, .q5_0:
        quantizeSymmetric32(type, x, blocks: blocks, into: y)
    case .q4_1, .q5_1:
        quantizeWithMin32(type, x, blocks: blocks, into: y)
    case .q8_0, .q8_1:
        quantizeQ8(type, x, blocks: blocks, into: y)
    case .q8_K:
        // The activation quantizer's oracle is ggml's quantize_row_q8_K_ref itself.
        referenceQuantizeQ8K(x, count: count, into: y, grouped: false)
    case .q2_K, .q4_K, .q5_K:
        quantizeKQuantWithMins(type, x, blocks: blocks, into: y)
    case .q3_K:
        quantizeQ3K(x, blocks: blocks, into: y)
    case .q6_K:
        quantizeQ6K(x, blocks: blocks, into: y)
    case .iq4_nl, .iq4_xs:
        quantizeIQ4(type, x, blocks: blocks, into: y)
    default:
        break
    }
}

/// Q4_0 and Q5_0: d = (the value of largest magnitude) / -8 or -16, quants biased by 8 or 16;
/// Q5_0 keeps the fifth bits in a 32-bit `qh` after d.
private func quantizeSymmetric32(_ type: GGMLType, _ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
    let is5 = type == .q5_0
    let bytes = type.traits.typeSize, qs = is5 ? 6 : 2
    let levels = is5 ? 31 : 15
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
    for b in 0..<blocks {
        let xb = x + 32 * b, p = y + bytes * b
        let max = largestMagnitude(xb, 32).value
        let d = max / (is5 ? -16 : -8)
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(p, 0, d)
        for j in 0..<32 { L[j] = UInt8(truncatingIfNeeded: Swift.min(levels, truncToInt8(xb[j] * id + (is5 ? 16.5 : 8.5)))) }
        packBlock32(L.baseAddress!, into: p, qs: qs, qh: is5 ? 2 : nil)
    }
    }
}

/// Q4_1 and Q5_1: d = (max - min) / 15 or 31 and the min stored after it; Q5_1 keeps the fifth
/// bits in a 32-bit `qh` after the min.
private func quantizeWithMin32(_ type: GGMLType, _ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
    let is5 = type == .q5_1
    let bytes = type.traits.typeSize, qs = is5 ? 8 : 4
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
    for b in 0..<blocks {
        let xb = x + 32 * b, p = y + bytes * b
        var min = Float.greatestFiniteMagnitude, max = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if xb[j] < min { min = xb[j] }
            if xb[j] > max { max = xb[j] }
        }
        let d = (max - min) / (is5 ? 31 : 15)
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(p, 0, d)
        storeHalf(p, 2, min)
        for j in 0..<32 {
            let v = (xb[j] - min) * id + 0.5
            // Q4_1 clamps at 15; Q5_1 (as in ggml) converts straight to uint8.
            L[j] = is5 ? UInt8(truncatingIfNeeded: Int(v.rounded(.towardZero))) : UInt8(truncatingIfNeeded: Swift.min(15, truncToInt8(v)))
        }
        packBlock32(L.baseAddress!, into: p, qs: qs, qh: is5 ? 4 : nil)
    }
    }
}

/// Q8_0 and Q8_1: d = amax / 127, quants rounded half away from zero; Q8_1 also stores d times
/// the sum of its quants after d.
private func quantizeQ8(_ type: GGMLType, _ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
    let withSum = type == .q8_1
    let bytes = type.traits.typeSize, qs = withSum ? 4 : 2
    for b in 0..<blocks {
        let xb = x + 32 * b, p = y + bytes * b
        var amax: Float = 0
        for j in 0..<32 { amax = Swift.max(amax, abs(xb[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(p, 0, d)
        var sum = 0
        for j in 0..<32 {
            let q = Int(roundHalfAway(xb[j] * id))
            storeU8(p, qs + j, UInt8(truncatingIfNeeded: q))
            sum += q
        }
        if withSum { storeHalf(p, 2, Float(sum) * d) }
    }
}

/// Q2_K, Q4_K, Q5_K: per sub-block scale and min from `make_qkx2_quants`, themselves quantized
/// (4 bits for Q2_K, 6 bits for Q4_K / Q5_K) against a super-block scale.
private func quantizeKQuantWithMins(_ type: GGMLType, _ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
    let isQ2 = type == .q2_K
    let sub = isQ2 ? 16 : 32                  // weights per sub-block
    let nsub = 256 / sub
    let nmax = type == .q2_K ? 3 : type == .q4_K ? 15 : 31
    let bytes = type.traits.typeSize
    var L = [UInt8](repeating: 0, count: 256)
    var weights = [Float](repeating: 0, count: 32), mins = [Float](repeating: 0, count: 16), scales = [Float](repeating: 0, count: 16)
    L.withUnsafeMutableBufferPointer { L in
    weights.withUnsafeMutableBufferPointer { weights in
    for b in 0..<blocks {
        let xb = x + 256 * b, p = y + bytes * b
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<nsub {
            let xs = xb + sub * j
            if isQ2 {
                for l in 0..<16 { weights[l] = abs(xs[l]) }
                scales[j] = makeQkxQuants(16, 3, xs, weights.baseAddress!, L.baseAddress! + 16 * j, &mins[j],
                                           rmin: -0.5, rdelta: 0.1, nstep: 15, useMad: true)
            } else {
                var sumX2: Float = 0
                for l in 0..<32 { sumX2 += xs[l] * xs[l] }
                let avX = (sumX2 / 32).squareRoot()
                for l in 0..<32 { weights[l] = avX + abs(xs[l]) }
                scales[j] = makeQkxQuants(32, nmax, xs, weights.baseAddress!, L.baseAddress! + 32 * j, &mins[j],
                                           rmin: type == .q4_K ? -1 : -0.5, rdelta: 0.1, nstep: type == .q4_K ? 20 : 15, useMad: false)
            }
            if scales[j] > maxScale { maxScale = scales[j] }
            if mins[j] > maxMin { maxMin = mins[j] }
        }
        if isQ2 {
            // scales[0..<16] at 0, qs[64] at 16, d at 80, dmin at 82.
            if maxScale > 0 {
                let iscale = 15 / maxScale
                for j in 0..<16 { storeU8(p, j, UInt8(truncatingIfNeeded: nearestInt(iscale * scales[j]))) }
                storeHalf(p, 80, maxScale / 15)
            } else {
                storeHalf(p, 80, 0)
            }
            if maxMin > 0 {
                let iscale = 15 / maxMin
                for j in 0..<16 { storeU8(p, j, loadU8(p, j) | UInt8(truncatingIfNeeded: nearestInt(iscale * mins[j]) << 4)) }
                storeHalf(p, 82, maxMin / 15)
            } else {
                storeHalf(p, 82, 0)
            }
            finishQ2K(xb, p, L.baseAddress!)
            continue
        }
        // Q4_K / Q5_K: d at 0, dmin at 2, scales[12] at 4, (Q5_K: qh[32] at 16), qs at 16 or 48.
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        let sc = p + 4
        for j in 0..<8 {
            storeKScaleMin(sc, j, scale: Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j]))),
                           min: Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j]))))
        }
        storeHalf(p, 0, maxScale / 63)
        storeHalf(p, 2, maxMin / 63)
        finishQ4KQ5K(type, xb, p, L.baseAddress!)
    }
    }}
}

/// Q3_K: 16 sub-blocks of 16 with signed 6-bit scales from `make_q3_quants`.
private func quantizeQ3K(_ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
    var L = [Int8](repeating: 0, count: 256)
    var scales = [Float](repeating: 0, count: 16)
    L.withUnsafeMutableBufferPointer { L in
    for b in 0..<blocks {
        let xb = x + 256 * b, p = y + 110 * b
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 110)
        // hmask[32] at 0, qs[64] at 32, scales[12] at 96, d at 108.
        var maxScale: Float = 0, amax: Float = 0
        for j in 0..<16 {
            scales[j] = makeQ3Quants(16, 4, xb + 16 * j, L.baseAddress! + 16 * j)
            let s = abs(scales[j])
            if s > amax { amax = s; maxScale = scales[j] }
        }
        let sc = p + 96
        if maxScale != 0 {
            let iscale = -32 / maxScale
            for j in 0..<16 {
                let l = Int(Int8(truncatingIfNeeded: nearestInt(iscale * scales[j])))
                storeQ3KScale(sc, j, Swift.max(-32, Swift.min(31, l)) + 32)
            }
            storeHalf(p, 108, 1 / iscale)
        } else {
            storeHalf(p, 108, 0)
        }
        finishQ3K(xb, p, L.baseAddress!)
    }
    }
}

/// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales from `make_qx_quants`.
private func quantizeQ6K(_ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
    var L = [Int8](repeating: 0, count: 256)
    var scales = [Float](repeating: 0, count: 16)
    var squares = [Float](repeating: 0, count: 16)
    L.withUnsafeMutableBufferPointer { L in
    squares.withUnsafeMutableBufferPointer { squares in
    for b in 0..<blocks {
        let xb = x + 256 * b, p = y + 210 * b
        // ql[128] at 0, qh[64] at 128, scales[16] at 192, d at 208.
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
        var maxScale: Float = 0, maxAbsScale: Float = 0
        for ib in 0..<16 {
            // Without an importance matrix ggml weighs each value by its square.
            for l in 0..<16 { squares[l] = xb[16 * ib + l] * xb[16 * ib + l] }
            let s = makeQxQuants(16, 32, xb + 16 * ib, L.baseAddress! + 16 * ib, squares.baseAddress!)
            scales[ib] = s
            if abs(s) > maxAbsScale { maxAbsScale = abs(s); maxScale = s }
        }
        if maxAbsScale < groupMaxEps { continue }
        finishQ6K(xb, p, L.baseAddress!, scales: scales, maxScale: maxScale)
    }
    }}
}

/// IQ4_NL (one block of 32) and IQ4_XS (super-block of 8 × 32 with 6-bit scales): best scale over
/// 15 trial inverse scales mapping the block's extreme value to the outermost levels.
/// With `importance` (one weight per column), each value's weight is
/// `importance · sqrt(2·mean(x²) + x²)` over its super-block instead of `x²`.
func quantizeIQ4(_ type: GGMLType, _ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer,
                 importance: UnsafePointer<Float>? = nil, ntry: Int = 7) {
    let superSize = type == .iq4_xs ? 256 : 32
    let bytes = type.traits.typeSize
    var L = [UInt8](repeating: 0, count: 256)
    var weight = [Float](repeating: 0, count: 32)
    var scales = [Float](repeating: 0, count: 8)
    let v0 = Float(iq4nlValues[0])
    for b in 0..<blocks {
        let xs = x + superSize * b, p = y + bytes * b
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        var maxScale: Float = 0, amaxScale: Float = 0
        var sigma2: Float = 0
        if importance != nil {
            for j in 0..<superSize { sigma2 += xs[j] * xs[j] }
            sigma2 *= 2 / Float(superSize)
        }
        for ib in 0..<(superSize / 32) {
            let xb = xs + 32 * ib
            if let importance {
                let qw = importance + superSize * b + 32 * ib
                for j in 0..<32 { weight[j] = qw[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            } else {
                for j in 0..<32 { weight[j] = xb[j] * xb[j] }
            }
            let (max, amax) = largestMagnitude(xb, 32)
            if amax < groupMaxEps { scales[ib] = 0; continue }
            var d = ntry > 0 ? -max / v0 : max / v0
            var id = 1 / d
            var sumqx: Float = 0, sumq2: Float = 0
            for j in 0..<32 {
                let l = bestIndexIQ4(id * xb[j])
                L[32 * ib + j] = UInt8(l)
                let q = Float(iq4nlValues[l]), w = weight[j]
                sumqx += w * q * xb[j]
                sumq2 += w * q * q
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0
            var best = d * sumqx
            for itry in stride(from: -ntry, through: ntry, by: 1) {
                id = (Float(itry) + v0) / max
                sumqx = 0; sumq2 = 0
                for j in 0..<32 {
                    let l = bestIndexIQ4(id * xb[j])
                    let q = Float(iq4nlValues[l]), w = weight[j]
                    sumqx += w * q * xb[j]
                    sumq2 += w * q * q
                }
                if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                    d = sumqx / sumq2; best = d * sumqx
                }
            }
            scales[ib] = d
            if abs(d) > amaxScale { amaxScale = abs(d); maxScale = d }
        }
        let qs: Int
        if superSize > 32 {
            // d at 0, scales_h (u16) at 2, scales_l[4] at 4, qs[128] at 8.
            qs = 8
            let d = -maxScale / 32
            storeHalf(p, 0, d)
            let id: Float = d != 0 ? 1 / d : 0
            var scalesH: UInt16 = 0
            for ib in 0..<8 {
                var l = Swift.max(-32, Swift.min(31, nearestInt(id * scales[ib])))
                let dl = d * Float(l)
                let idl: Float = dl != 0 ? 1 / dl : 0
                for j in 0..<32 { L[32 * ib + j] = UInt8(bestIndexIQ4(idl * xs[32 * ib + j])) }
                l += 32
                let lowNibble = UInt8(l & 0xf), high = UInt16(l >> 4)
                if ib % 2 == 0 { storeU8(p, 4 + ib / 2, lowNibble) } else { storeU8(p, 4 + ib / 2, loadU8(p, 4 + ib / 2) | (lowNibble << 4)) }
                scalesH |= high << UInt16(2 * (ib % 8))
            }
            storeU16(p, 2, scalesH)
        } else {
            qs = 2
            storeHalf(p, 0, scales[0])
            if ntry > 0 {
                let id: Float = scales[0] != 0 ? 1 / scales[0] : 0
                for j in 0..<32 { L[j] = UInt8(bestIndexIQ4(id * xs[j])) }
            }
        }
        for i in 0..<(superSize / 32) {
            for j in 0..<16 { storeU8(p, qs + 16 * i + j, L[32 * i + j] | (L[32 * i + 16 + j] << 4)) }
        }
    }
}

/// Quantizes `count` values of `src` as ggml's `quantize_row_<type>_ref`, the row quantizer
/// llama.cpp's CPU backend writes KV cache rows with. It equals ``quantize(_:src:count:into:)``
/// except for IQ4_NL, whose row quantizer keeps its first scale (no search over the 15 nearby
/// scales that `quantize_iq4_nl` makes: `ntry` −1 in `quantize_row_iq4_nl_impl`).
///
/// - Throws: as ``quantize(_:src:count:into:)``.
public func quantizeRowReference(_ type: GGMLType, src: UnsafePointer<Float>, count: Int,
                                 into out: UnsafeMutableRawBufferPointer) throws {
    guard type == .iq4_nl else { return try quantize(type, src: src, count: count, into: out) }
    let bytes = try type.checkedBytes(count, op: "quantize")
    guard out.count >= bytes else {
        throw SwiftletError.shapeMismatch(op: "quantize", detail: "\(count) values of \(type) need \(bytes) bytes, output has \(out.count)")
    }
    guard count > 0, let base = out.baseAddress else { return }
    quantizeIQ4(type, src, blocks: count / 32, into: base, ntry: -1)
}

/// Quantizes `count` values of `src` into block format `type`, writing `type.rowBytes(count)`
/// bytes to `out`, with ggml's reference algorithm (byte-identical to ggml without an importance
/// matrix).
///
/// - Throws: ``SwiftletError/unsupportedTensorType(_:)`` for a type SwiftletQuant does not handle;
///   ``SwiftletError/invalidArgument(_:)`` when `count` is not a whole number of blocks;
///   ``SwiftletError/shapeMismatch(op:detail:)`` when `out` is too small.
public func quantize(_ type: GGMLType, src: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawBufferPointer) throws {
    let bytes = try type.checkedBytes(count, op: "quantize")
    guard out.count >= bytes else {
        throw SwiftletError.shapeMismatch(op: "quantize", detail: "\(count) values of \(type) need \(bytes) bytes, output has \(out.count)")
    }
    guard count > 0, let base = out.baseAddress else { return }
    quantizeUnchecked(type, src, count: count, into: base)
}
