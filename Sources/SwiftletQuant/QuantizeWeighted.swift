import SwiftletCore
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
            l.withMemoryRebound(to: UInt8.self, capacity: 32) { packBlock32($0, into: p, qs: is5 ? 6 : 2, qh: is5 ? 2 : nil) }
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
            packBlock32(l, into: p, qs: is5 ? 8 : 4, qh: is5 ? 4 : nil)
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
            for j in 0..<16 { storeU8(p, j, Ls[j] | (Lm[j] << 4)) }
            finishQ2K(x, p, L)
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
            for j in 0..<16 { storeQ3KScale(sc, j, Int(Ls[j])) }
            storeHalf(p, 108, dBlock)
            finishQ3K(x, p, L)
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
                storeKScaleMin(sc, j, scale: is5 ? Swift.min(63, Ls[j]) : Ls[j], min: is5 ? Swift.min(63, Lm[j]) : Lm[j])
            }
            storeHalf(p, 0, dBlock)
            storeHalf(p, 2, mBlock)
            finishQ4KQ5K(type, x, p, L)
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
            finishQ6K(x, p, L, scales: scales.baseAddress!, maxScale: maxScale)
        }
    }}
}
