import SwiftletTensor

// Importance-weighted quantizers: ggml's `quantize_row_*_impl` with `quant_weights`, which
// llama-quantize calls when it has an importance matrix. Same algorithms, same float evaluation
// order (ggml-base is built without FMA contraction, so each `a*b + c` rounds twice), so the
// bytes equal ggml's.

/// One row of `columns` values with importance weights `weights[0..<columns]`.
func quantizeWeightedRow(_ type: GGMLType, _ x: UnsafePointer<Float>, columns: Int, into y: UnsafeMutableRawPointer, weights: UnsafePointer<Float>) {
    switch type {
    case .q4_0, .q5_0: weightedQ4Q5Symmetric(type, x, columns, y, weights)
    case .q4_1, .q5_1: weightedQ4Q5WithMin(type, x, columns, y, weights)
    case .q2_K: weightedQ2K(x, columns, y, weights)
    case .q3_K: weightedQ3K(x, columns, y, weights)
    case .q4_K, .q5_K: weightedQ4KQ5K(type, x, columns, y, weights)
    case .q6_K: weightedQ6K(x, columns, y, weights)
    case .iq4_nl, .iq4_xs: quantizeIQ4(type, x, blocks: columns / type.traits.blockSize, into: y, importance: weights)
    default: quantizeUnchecked(type, x, count: columns, into: y)
    }
}

/// ggml's `make_qp_quants`: non-negative levels `0...nmax` for the (non-negative) sub-block
/// scales or mins, weighted by `qw`, refined one value at a time.
private func makeQpQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
                          _ qw: UnsafePointer<Float>) -> Float {
    var max: Float = 0
    for i in 0..<n { max = Swift.max(max, x[i]) }
    if max < 1e-15 {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    var iscale = Float(nmax) / max
    for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
    let scale = 1 / iscale
    var bestMse: Float = 0
    for i in 0..<n {
        let diff = x[i] - scale * Float(L[i])
        bestMse += qw[i] * diff * diff
    }
    for step in -4...4 where step != 0 {
        let iscaleStep = (0.1 * Float(step) + Float(nmax)) / max
        let scaleStep = 1 / iscaleStep
        var mse: Float = 0
        for i in 0..<n {
            let l = Swift.min(nmax, nearestInt(iscaleStep * x[i]))
            let diff = x[i] - scaleStep * Float(l)
            mse += qw[i] * diff * diff
        }
        if mse < bestMse {
            bestMse = mse
            iscale = iscaleStep
        }
    }
    var sumlx: Float = 0, suml2: Float = 0
    for i in 0..<n {
        let l = Swift.min(nmax, nearestInt(iscale * x[i]))
        L[i] = UInt8(truncatingIfNeeded: l)
        let fl = Float(l)
        sumlx += qw[i] * x[i] * fl
        suml2 += qw[i] * fl * fl
    }
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = qw[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            var sl2 = suml2 - w * li * li
            if slx > 0 && sl2 > 0 {
                let newL = Swift.min(nmax, nearestInt(x[i] * sl2 / slx))
                if newL != Int(L[i]) {
                    let fl = Float(newL)
                    slx += w * x[i] * fl
                    sl2 += w * fl * fl
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = UInt8(truncatingIfNeeded: newL); sumlx = slx; suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// Sum of squares of `n` values, in order.
@inline(__always)
private func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Float = 0
    for j in 0..<n { s += x[j] * x[j] }
    return s
}

/// Q4_0 / Q5_0 (`quantize_row_q4_0_impl`, `quantize_row_q5_0_impl`).
private func weightedQ4Q5Symmetric(_ type: GGMLType, _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, _ qw: UnsafePointer<Float>) {
    let is5 = type == .q5_0
    let bytes = type.traits.typeSize
    let sigma2 = sumOfSquares(x, n) / Float(n)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { weight in
    withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { L in
        let w = weight.baseAddress!, l = L.baseAddress!
        for ib in 0..<(n / 32) {
            let xb = x + 32 * ib, q = qw + 32 * ib, p = y + bytes * ib
            for j in 0..<32 { w[j] = q[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            let d = makeQxQuants(32, is5 ? 16 : 8, xb, l, w)
            storeHalf(p, 0, d)
            if is5 {
                var qh: UInt32 = 0
                for j in 0..<16 {
                    let xi0 = UInt8(bitPattern: l[j]), xi1 = UInt8(bitPattern: l[j + 16])
                    storeU8(p, 6 + j, (xi0 & 0x0f) | ((xi1 & 0x0f) << 4))
                    qh |= UInt32((xi0 & 0x10) >> 4) << UInt32(j)
                    qh |= UInt32((xi1 & 0x10) >> 4) << UInt32(j + 16)
                }
                p.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
            } else {
                for j in 0..<16 { storeU8(p, 2 + j, UInt8(bitPattern: l[j]) | (UInt8(bitPattern: l[j + 16]) << 4)) }
            }
        }
    }}
}

/// Q4_1 / Q5_1 (`quantize_row_q4_1_impl`, `quantize_row_q5_1_impl`).
private func weightedQ4Q5WithMin(_ type: GGMLType, _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, _ qw: UnsafePointer<Float>) {
    let is5 = type == .q5_1
    let bytes = type.traits.typeSize
    let sigma2 = sumOfSquares(x, n) / Float(n)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { weight in
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
        let w = weight.baseAddress!, l = L.baseAddress!
        for ib in 0..<(n / 32) {
            let xb = x + 32 * ib, q = qw + 32 * ib, p = y + bytes * ib
            for j in 0..<32 { w[j] = q[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            var min: Float = 0
            let d = makeQkxQuants(32, is5 ? 31 : 15, xb, w, l, &min, rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false)
            storeHalf(p, 0, d)
            storeHalf(p, 2, -min)
            if is5 {
                var qh: UInt32 = 0
                for j in 0..<16 {
                    let xi0 = l[j], xi1 = l[j + 16]
                    storeU8(p, 8 + j, (xi0 & 0x0f) | ((xi1 & 0x0f) << 4))
                    qh |= UInt32((xi0 & 0x10) >> 4) << UInt32(j)
                    qh |= UInt32((xi1 & 0x10) >> 4) << UInt32(j + 16)
                }
                p.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
            } else {
                for j in 0..<16 { storeU8(p, 4 + j, l[j] | (l[j + 16] << 4)) }
            }
        }
    }}
}

/// Q2_K (`quantize_row_q2_K_impl`): d at 80, dmin at 82, scales[16] at 0, qs[64] at 16.
private func weightedQ2K(_ x0: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, _ qw0: UnsafePointer<Float>) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 32) { bytesBuf in
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * 4) { floatBuf in
        let L = bytesBuf.baseAddress!, LsLm = L + 256
        let mins = floatBuf.baseAddress!, scales = mins + 16, sw = mins + 32, weight = mins + 48
        for i in 0..<(n / 256) {
            let x = x0 + 256 * i, p = y + 84 * i
            for j in 0..<16 { sw[j] = 0 }
            let sigma2 = sumOfSquares(x, 256) / 256
            for j in 0..<16 {
                let qw = qw0 + 256 * i + 16 * j
                for l in 0..<16 { weight[l] = qw[l] * (sigma2 + x[16 * j + l] * x[16 * j + l]).squareRoot() }
                for l in 0..<16 { sw[j] += weight[l] }
                scales[j] = makeQkxQuants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false)
            }
            let Ls = LsLm, Lm = LsLm + 16
            let dm0 = makeQpQuants(16, 15, scales, Ls, sw)
            let mm0 = makeQpQuants(16, 15, mins, Lm, sw)
            storeHalf(p, 80, dm0)
            storeHalf(p, 82, mm0)
            let dm = loadHalf(p, 80), mm = loadHalf(p, 82)
            for j in 0..<16 { storeU8(p, j, Ls[j] | (Lm[j] << 4)) }
            for j in 0..<16 {
                let sc = loadU8(p, j)
                let d = dm * Float(sc & 0xf)
                if d == 0 { continue }
                let m = mm * Float(sc >> 4)
                for ii in 0..<16 { L[16 * j + ii] = UInt8(Swift.max(0, Swift.min(3, nearestInt((x[16 * j + ii] + m) / d)))) }
            }
            for j in stride(from: 0, to: 256, by: 128) {
                for l in 0..<32 {
                    storeU8(p, 16 + j / 4 + l, L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6))
                }
            }
        }
    }}
}

/// Q3_K (`quantize_row_q3_K_impl`): hmask[32] at 0, qs[64] at 32, scales[12] at 96, d at 108.
private func weightedQ3K(_ x0: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, _ qw0: UnsafePointer<Float>) {
    withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256 + 16) { bytesBuf in
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * 3) { floatBuf in
        let L = bytesBuf.baseAddress!, Ls = L + 256
        let scales = floatBuf.baseAddress!, weight = scales + 16, sw = scales + 32
        for i in 0..<(n / 256) {
            let x = x0 + 256 * i, p = y + 110 * i
            let sigma2 = 2 * sumOfSquares(x, 256) / 256
            for j in 0..<16 {
                let qw = qw0 + 256 * i + 16 * j
                for l in 0..<16 { weight[l] = qw[l] * (sigma2 + x[16 * j + l] * x[16 * j + l]).squareRoot() }
                var sumw: Float = 0
                for l in 0..<16 { sumw += weight[l] }
                sw[j] = sumw
                scales[j] = makeQxQuants(16, 4, x + 16 * j, L + 16 * j, weight)
            }
            let sc = p + 96
            for j in 0..<12 { storeU8(sc, j, 0) }
            let dBlock = makeQxQuants(16, 32, scales, Ls, sw)
            for j in 0..<16 {
                var l = Int(Ls[j])
                if j < 8 { storeU8(sc, j, UInt8(l & 0xf)) } else { storeU8(sc, j - 8, loadU8(sc, j - 8) | UInt8((l & 0xf) << 4)) }
                l >>= 4
                storeU8(sc, j % 4 + 8, loadU8(sc, j % 4 + 8) | UInt8(truncatingIfNeeded: l << (2 * (j / 4))))
            }
            storeHalf(p, 108, dBlock)
            let dAll = loadHalf(p, 108)
            for j in 0..<16 {
                let d = dAll * Float(q3KScale(j, sc))
                if d == 0 { continue }
                for ii in 0..<16 { L[16 * j + ii] = Int8(Swift.max(-4, Swift.min(3, nearestInt(x[16 * j + ii] / d))) + 4) }
            }
            for j in 0..<32 { storeU8(p, j, 0) }
            var m = 0
            var hm: UInt8 = 1
            for j in 0..<256 {
                if L[j] > 3 {
                    storeU8(p, m, loadU8(p, m) | hm)
                    L[j] -= 4
                }
                m += 1
                if m == 32 { m = 0; hm <<= 1 }
            }
            for j in stride(from: 0, to: 256, by: 128) {
                for l in 0..<32 {
                    let v = UInt8(L[j + l]) | (UInt8(L[j + l + 32]) << 2) | (UInt8(L[j + l + 64]) << 4) | (UInt8(L[j + l + 96]) << 6)
                    storeU8(p, 32 + j / 4 + l, v)
                }
            }
        }
    }}
}

/// Q4_K / Q5_K (`quantize_row_q4_K_impl`, `quantize_row_q5_K_impl`): d at 0, dmin at 2,
/// scales[12] at 4, then (Q5_K) qh[32] at 16 and qs at 16 or 48.
private func weightedQ4KQ5K(_ type: GGMLType, _ x0: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, _ qw0: UnsafePointer<Float>) {
    let is5 = type == .q5_K
    let nmax = is5 ? 31 : 15
    let bytes = type.traits.typeSize
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 16) { bytesBuf in
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + 8 * 3) { floatBuf in
        let L = bytesBuf.baseAddress!, Ls = L + 256, Lm = L + 264
        let weights = floatBuf.baseAddress!, sw = weights + 32, mins = weights + 40, scales = weights + 48
        for i in 0..<(n / 256) {
            let x = x0 + 256 * i, p = y + bytes * i
            let sigma2 = 2 * sumOfSquares(x, 256) / 256
            for j in 0..<8 {
                let qw = qw0 + 256 * i + 32 * j
                for l in 0..<32 { weights[l] = qw[l] * (sigma2 + x[32 * j + l] * x[32 * j + l]).squareRoot() }
                var sumw: Float = 0
                for l in 0..<32 { sumw += weights[l] }
                sw[j] = sumw
                scales[j] = makeQkxQuants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false)
            }
            let dBlock = makeQpQuants(8, 63, scales, Ls, sw)
            let mBlock = makeQpQuants(8, 63, mins, Lm, sw)
            let sc = p + 4
            for j in 0..<12 { storeU8(sc, j, 0) }
            for j in 0..<8 {
                var ls = Ls[j], lm = Lm[j]
                if is5 { ls = Swift.min(63, ls); lm = Swift.min(63, lm) }
                if j < 4 {
                    storeU8(sc, j, ls)
                    storeU8(sc, j + 4, lm)
                } else {
                    storeU8(sc, j + 4, (ls & 0xf) | ((lm & 0xf) << 4))
                    storeU8(sc, j - 4, loadU8(sc, j - 4) | ((ls >> 4) << 6))
                    storeU8(sc, j, loadU8(sc, j) | ((lm >> 4) << 6))
                }
            }
            storeHalf(p, 0, dBlock)
            storeHalf(p, 2, mBlock)
            let dAll = loadHalf(p, 0), mAll = loadHalf(p, 2)
            for j in 0..<8 {
                let (s, m) = kQuantScaleMin(j, sc)
                let d = dAll * Float(s)
                if d == 0 { continue }
                let dm = mAll * Float(m)
                for ii in 0..<32 { L[32 * j + ii] = UInt8(Swift.max(0, Swift.min(nmax, nearestInt((x[32 * j + ii] + dm) / d)))) }
            }
            if is5 {
                for j in 0..<32 { storeU8(p, 16 + j, 0) }
                var m1: UInt8 = 1, m2: UInt8 = 2
                for (k, base) in stride(from: 0, to: 256, by: 64).enumerated() {
                    for j in 0..<32 {
                        var l1 = L[base + j], l2 = L[base + j + 32]
                        var h = loadU8(p, 16 + j)
                        if l1 > 15 { l1 -= 16; h |= m1 }
                        if l2 > 15 { l2 -= 16; h |= m2 }
                        storeU8(p, 16 + j, h)
                        storeU8(p, 48 + 32 * k + j, l1 | (l2 << 4))
                    }
                    m1 <<= 2; m2 <<= 2
                }
            } else {
                for (k, base) in stride(from: 0, to: 256, by: 64).enumerated() {
                    for l in 0..<32 { storeU8(p, 16 + 32 * k + l, L[base + l] | (L[base + l + 32] << 4)) }
                }
            }
        }
    }}
}

/// Q6_K (`quantize_row_q6_K_impl`): the importance weights straight into `make_qx_quants`.
/// ql[128] at 0, qh[64] at 128, scales[16] at 192, d at 208.
private func weightedQ6K(_ x0: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, _ qw0: UnsafePointer<Float>) {
    withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { lBuf in
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { scales in
        let L = lBuf.baseAddress!
        for i in 0..<(n / 256) {
            let x = x0 + 256 * i, p = y + 210 * i
            var maxScale: Float = 0, maxAbsScale: Float = 0
            for ib in 0..<16 {
                let s = makeQxQuants(16, 32, x + 16 * ib, L + 16 * ib, qw0 + 256 * i + 16 * ib)
                scales[ib] = s
                if abs(s) > maxAbsScale { maxAbsScale = abs(s); maxScale = s }
            }
            if maxAbsScale < 1e-15 {
                p.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                continue
            }
            let iscale = -128 / maxScale
            storeHalf(p, 208, 1 / iscale)
            for ib in 0..<16 { storeU8(p, 192 + ib, UInt8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[ib])))) }
            let dAll = loadHalf(p, 208)
            for j in 0..<16 {
                let d = dAll * Float(loadI8(p, 192 + j))
                if d == 0 { continue }
                for ii in 0..<16 { L[16 * j + ii] = Int8(Swift.max(-32, Swift.min(31, nearestInt(x[16 * j + ii] / d))) + 32) }
            }
            for (k, j) in stride(from: 0, to: 256, by: 128).enumerated() {
                let ql = 64 * k, qh = 128 + 32 * k
                for l in 0..<32 {
                    let q1 = UInt8(L[j + l]), q2 = UInt8(L[j + l + 32]), q3 = UInt8(L[j + l + 64]), q4 = UInt8(L[j + l + 96])
                    storeU8(p, ql + l, (q1 & 0xf) | ((q3 & 0xf) << 4))
                    storeU8(p, ql + l + 32, (q2 & 0xf) | ((q4 & 0xf) << 4))
                    storeU8(p, qh + l, (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6))
                }
            }
        }
    }}
}
