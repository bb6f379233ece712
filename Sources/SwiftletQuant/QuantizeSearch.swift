// The scale searches shared by the reference and the importance-weighted quantizers (ggml's
// `make_qx_quants` and `make_qkx2_quants` / `make_qkx3_quants`, which differ only in their
// weights). Each search tries a fixed list of inverse scales; the trials' sums are accumulated
// side by side in SIMD lanes, every lane in ggml's element order and operation order, and the
// trials are then compared one after another in ggml's order, so the chosen levels and scales are
// ggml's to the bit. Side by side the sums run as independent chains instead of one
// latency-bound chain per trial.

let groupMaxEps: Float = 1e-15

/// The first of `n` values with the largest magnitude, and that magnitude.
@inline(__always)
func largestMagnitude(_ x: UnsafePointer<Float>, _ n: Int) -> (value: Float, magnitude: Float) {
    var max: Float = 0, amax: Float = 0
    for i in 0..<n where abs(x[i]) > amax { amax = abs(x[i]); max = x[i] }
    return (max, amax)
}

/// `round(v)` (ties to even, as ggml's `nearest_int`) clamped to `lo...hi`, per lane, as floats.
/// Exact while |v| < 2²²: adding 1.5·2²³ leaves the rounded integer in the low mantissa bits.
@inline(__always)
private func roundedLevels(_ v: SIMD8<Float>, _ lo: SIMD8<Float>, _ hi: SIMD8<Float>) -> SIMD8<Float> {
    var r = (v + 12582912) - 12582912
    r.replace(with: lo, where: r .< lo)
    r.replace(with: hi, where: r .> hi)
    return r
}

/// `count` consecutive trial steps from `first`, in lanes (lanes past `count` repeat the last).
@inline(__always)
private func trialSteps(from first: Int, count: Int) -> SIMD8<Float> {
    var s = SIMD8<Float>()
    for k in 0..<8 { s[k] = Float(first + Swift.min(k, count - 1)) }
    return s
}

/// Group `g` of `make_qx_quants`' trial steps -9…-1, 1…9 and its number of lanes in use.
@inline(__always)
private func qxTrialGroup(_ g: Int) -> (steps: SIMD8<Float>, count: Int) {
    switch g {
    case 0: return (SIMD8(-9, -8, -7, -6, -5, -4, -3, -2), 8)
    case 1: return (SIMD8(-1, 1, 2, 3, 4, 5, 6, 7), 8)
    default: return (SIMD8(8, 9, 9, 9, 9, 9, 9, 9), 2)
    }
}

/// ggml's `make_qx_quants` with `rmse_type` 1: symmetric levels `-nmax..<nmax`, written to `L` as
/// `level + nmax`, scale refined over 18 trial inverse scales, weights `w` (ggml uses `x²` when it
/// has no importance matrix). Returns the scale.
func makeQxQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
                  _ w: UnsafePointer<Float>) -> Float {
    let (max, amax) = largestMagnitude(x, n)
    if amax < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let fmax = Float(nmax)
    let iscale0 = -fmax / max
    var sumlx: Float = 0, suml2: Float = 0
    for i in 0..<n {
        let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale0 * x[i])))
        L[i] = Int8(truncatingIfNeeded: l + nmax)
        let fl = Float(l)
        sumlx += w[i] * x[i] * fl
        suml2 += w[i] * fl * fl
    }
    var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
    var best = scale * sumlx
    var chosen: Float? = nil
    let lo = SIMD8<Float>(repeating: -fmax), hi = SIMD8<Float>(repeating: fmax - 1)
    // Trials -9…-1, 1…9 in three groups of lanes.
    for group in 0..<3 {
        let (steps, count) = qxTrialGroup(group)
        let iscales = -(SIMD8<Float>(repeating: fmax) + 0.1 * steps) / max
        var slx = SIMD8<Float>(), sl2 = SIMD8<Float>()
        for i in 0..<n {
            let l = roundedLevels(iscales * x[i], lo, hi)
            slx += (w[i] * x[i]) * l
            sl2 += (w[i] * l) * l
        }
        for k in 0..<count where sl2[k] > 0 && slx[k] * slx[k] > best * sl2[k] {
            scale = slx[k] / sl2[k]; best = scale * slx[k]
            chosen = iscales[k]
        }
    }
    if let iscale = chosen {
        for i in 0..<n {
            L[i] = Int8(truncatingIfNeeded: nmax + Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i]))))
        }
    }
    return scale
}

/// ggml's `make_qkx2_quants` (`useMad` selects its absolute-error variant) and `make_qkx3_quants`:
/// asymmetric levels `0...nmax` with a min, searched over `nstep + 1` trial scales by weighted
/// least squares. Returns the scale; `theMin` receives `-min`.
///
/// An accepted trial moves the min that later trials start from, so trials run eight at a time
/// from the current min and a batch is cut after its first accepted lane.
func makeQkxQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                   _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float,
                   rmin: Float, rdelta: Float, nstep: Int, useMad: Bool) -> Float {
    var min = x[0], max = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
        if x[i] < min { min = x[i] }
        if x[i] > max { max = x[i] }
        let w = weights[i]
        sumW += w
        sumX += w * x[i]
    }
    if min > 0 { min = 0 }
    if max <= min {
        for i in 0..<n { L[i] = 0 }
        theMin = -min
        return 0
    }
    let fnmax = Float(nmax)
    let iscale0 = fnmax / (max - min)
    var scale = 1 / iscale0
    var bestError: Float = 0
    for i in 0..<n {
        let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale0 * (x[i] - min))))
        L[i] = UInt8(truncatingIfNeeded: l)
        var diff = scale * Float(l) + min - x[i]
        diff = useMad ? abs(diff) : diff * diff
        bestError += weights[i] * diff
    }
    if nstep < 1 { theMin = -min; return scale }

    let lo = SIMD8<Float>(repeating: 0), hi = SIMD8<Float>(repeating: fnmax)
    var accepted: (iscale: Float, min: Float)? = nil
    var step = 0
    while step <= nstep {
        let count = Swift.min(8, nstep - step + 1)
        let iscales = (rmin + rdelta * trialSteps(from: step, count: count) + fnmax) / (max - min)
        var sumL = SIMD8<Float>(), sumL2 = SIMD8<Float>(), sumXL = SIMD8<Float>()
        for i in 0..<n {
            let l = roundedLevels(iscales * (x[i] - min), lo, hi)
            let wl = weights[i] * l
            sumL += wl
            sumL2 += wl * l
            sumXL += wl * x[i]
        }
        let D = sumW * sumL2 - sumL * sumL
        var thisScale = (sumW * sumXL - sumX * sumL) / D
        var thisMin = (sumL2 * sumX - sumL * sumXL) / D
        let positive = thisMin .> 0
        thisMin.replace(with: 0, where: positive)
        thisScale.replace(with: sumXL / sumL2, where: positive)
        var error = SIMD8<Float>()
        for i in 0..<n {
            let l = roundedLevels(iscales * (x[i] - min), lo, hi)
            var diff = thisScale * l + thisMin - x[i]
            if useMad {
                diff = SIMD8<Float>(bitPattern: diff.bitPattern & 0x7fff_ffff)
            } else {
                diff = diff * diff
            }
            error += weights[i] * diff
        }
        var next = step + count
        for k in 0..<count where D[k] > 0 && error[k] < bestError {
            accepted = (iscales[k], min)
            bestError = error[k]
            scale = thisScale[k]
            min = thisMin[k]
            next = step + k + 1
            break
        }
        step = next
    }
    if let (iscale, trialMin) = accepted {
        for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - trialMin))))) }
    }
    theMin = -min
    return scale
}

private extension SIMD8 where Scalar == Float {
    init(bitPattern: SIMD8<UInt32>) { self = unsafeBitCast(bitPattern, to: SIMD8<Float>.self) }
    var bitPattern: SIMD8<UInt32> { unsafeBitCast(self, to: SIMD8<UInt32>.self) }
}
