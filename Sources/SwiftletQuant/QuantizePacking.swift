import SwiftletCore

// The last steps the reference and the importance-weighted quantizers share: once a block's
// scales are chosen and stored, each weight is re-quantized against its stored scale and the
// quants are packed in ggml's layout.

/// Q4_0 / Q4_1 / Q5_0 / Q5_1: quants `j` and `j + 16` share a byte at `qs`; for the 5-bit types
/// the fifth bits form a little-endian 32-bit word at `qh`.
func packBlock32(_ L: UnsafePointer<UInt8>, into p: UnsafeMutableRawPointer, qs: Int, qh: Int?) {
    var high: UInt32 = 0
    for j in 0..<16 {
        let l0 = L[j], l1 = L[j + 16]
        storeU8(p, qs + j, (l0 & 0xf) | ((l1 & 0xf) << 4))
        high |= UInt32((l0 & 0x10) >> 4) << UInt32(j)
        high |= UInt32((l1 & 0x10) >> 4) << UInt32(j + 16)
    }
    if let qh { p.storeBytes(of: high.littleEndian, toByteOffset: qh, as: UInt32.self) }
}

/// Q2_K: each weight re-quantized to 0...3 against its sub-block's stored 4-bit scale and min
/// (scales[16] at 0, d at 80, dmin at 82), four quants a byte into qs[64] at 16.
func finishQ2K(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>) {
    let d = loadHalf(p, 80), dmin = loadHalf(p, 82)
    for j in 0..<16 {
        let sc = loadU8(p, j)
        let dl = d * Float(sc & 0xf)
        if dl == 0 { continue }
        let dm = dmin * Float(sc >> 4)
        for i in 0..<16 { L[16 * j + i] = UInt8(Swift.max(0, Swift.min(3, nearestInt((x[16 * j + i] + dm) / dl)))) }
    }
    for j in stride(from: 0, to: 256, by: 128) {
        for l in 0..<32 {
            storeU8(p, 16 + j / 4 + l, L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6))
        }
    }
}

/// Stores Q3_K's 6-bit scale level (0...63) of sub-block `j` into the 12 packed scale bytes at
/// `sc`, which start zeroed: low nibbles in bytes 0..<8, high two bits in bytes 8..<12.
func storeQ3KScale(_ sc: UnsafeMutableRawPointer, _ j: Int, _ level: Int) {
    if j < 8 {
        storeU8(sc, j, UInt8(level & 0xf))
    } else {
        storeU8(sc, j - 8, loadU8(sc, j - 8) | UInt8((level & 0xf) << 4))
    }
    storeU8(sc, j % 4 + 8, loadU8(sc, j % 4 + 8) | UInt8(truncatingIfNeeded: (level >> 4) << (2 * (j / 4))))
}

/// Q3_K: each weight re-quantized to -4...3 against its sub-block's stored scale (scales[12] at
/// 96, d at 108); the third bits into hmask[32] at 0, the low two bits four a byte into qs[64]
/// at 32.
func finishQ3K(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>) {
    let dAll = loadHalf(p, 108)
    for j in 0..<16 {
        let d = dAll * Float(q3KScale(j, p + 96))
        if d == 0 { continue }
        for i in 0..<16 { L[16 * j + i] = Int8(Swift.max(-4, Swift.min(3, nearestInt(x[16 * j + i] / d))) + 4) }
    }
    p.initializeMemory(as: UInt8.self, repeating: 0, count: 32)
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

/// Stores the 6-bit scale and min levels of sub-block `j` of Q4_K / Q5_K into the 12 packed
/// bytes at `sc`, which start zeroed.
func storeKScaleMin(_ sc: UnsafeMutableRawPointer, _ j: Int, scale ls: UInt8, min lm: UInt8) {
    if j < 4 {
        storeU8(sc, j, ls)
        storeU8(sc, j + 4, lm)
    } else {
        storeU8(sc, j + 4, (ls & 0xf) | ((lm & 0xf) << 4))
        storeU8(sc, j - 4, loadU8(sc, j - 4) | ((ls >> 4) << 6))
        storeU8(sc, j, loadU8(sc, j) | ((lm >> 4) << 6))
    }
}

/// Q4_K / Q5_K: each weight re-quantized against its sub-block's stored scale and min (d at 0,
/// dmin at 2, scales[12] at 4); Q4_K's nibbles into qs[128] at 16, Q5_K's fifth bits into
/// qh[32] at 16 and nibbles into qs[128] at 48.
func finishQ4KQ5K(_ type: GGMLType, _ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>) {
    let is5 = type == .q5_K, nmax = is5 ? 31 : 15
    let d = loadHalf(p, 0), dmin = loadHalf(p, 2)
    for j in 0..<8 {
        let (s, m) = kQuantScaleMin(j, p + 4)
        let dl = d * Float(s)
        if dl == 0 { continue }
        let dm = dmin * Float(m)
        for i in 0..<32 { L[32 * j + i] = UInt8(Swift.max(0, Swift.min(nmax, nearestInt((x[32 * j + i] + dm) / dl)))) }
    }
    guard is5 else {
        for (k, j) in stride(from: 0, to: 256, by: 64).enumerated() {
            for l in 0..<32 { storeU8(p, 16 + 32 * k + l, L[j + l] | (L[j + l + 32] << 4)) }
        }
        return
    }
    (p + 16).initializeMemory(as: UInt8.self, repeating: 0, count: 32)
    var m1: UInt8 = 1, m2: UInt8 = 2
    for (k, n) in stride(from: 0, to: 256, by: 64).enumerated() {
        for j in 0..<32 {
            var l1 = L[n + j], l2 = L[n + j + 32]
            var h = loadU8(p, 16 + j)
            if l1 > 15 { l1 -= 16; h |= m1 }
            if l2 > 15 { l2 -= 16; h |= m2 }
            storeU8(p, 16 + j, h)
            storeU8(p, 48 + 32 * k + j, l1 | (l2 << 4))
        }
        m1 <<= 2; m2 <<= 2
    }
}

/// Q6_K once its 16 sub-block scales are chosen (`maxScale` the one of largest magnitude, not
/// zero): 8-bit scales against d = maxScale / -128 (scales[16] at 192, d at 208), each weight
/// re-quantized to -32...31, low nibbles into ql[128] at 0 and high two bits into qh[64] at 128.
func finishQ6K(_ x: UnsafePointer<Float>, _ p: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>,
               scales: UnsafePointer<Float>, maxScale: Float) {
    let iscale = -128 / maxScale
    storeHalf(p, 208, 1 / iscale)
    for ib in 0..<16 { storeU8(p, 192 + ib, UInt8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[ib])))) }
    let dAll = loadHalf(p, 208)
    for j in 0..<16 {
        let d = dAll * Float(loadI8(p, 192 + j))
        if d == 0 { continue }
        for i in 0..<16 { L[16 * j + i] = Int8(Swift.max(-32, Swift.min(31, nearestInt(x[16 * j + i] / d))) + 32) }
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
