/// Conversions between `Float` and the 16-bit float formats stored in block headers (IEEE half,
/// bfloat16). Written on bit patterns so they behave the same on every platform (Swift's `Float16`
/// is unavailable on Intel macOS) and round exactly as ggml does (nearest, ties to even).
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        // Zero or subnormal: mantissa · 2^-24, exact in Float.
        let magnitude = Float(mantissa) * 5.9604644775390625e-8
        return Float(bitPattern: magnitude.bitPattern | sign)
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// Rounds to the nearest IEEE half (ties to even); overflow gives ±infinity, NaN stays NaN.
@inline(__always)
func floatToHalf(_ f: Float) -> UInt16 {
    var bits = f.bitPattern
    let sign = bits & 0x8000_0000
    bits ^= sign
    let result: UInt32
    if bits >= 0x4780_0000 {                        // ≥ 65536 (or inf / NaN)
        result = bits > 0x7f80_0000 ? 0x7e00 : 0x7c00
    } else if bits < 0x3880_0000 {                  // below 2^-14: subnormal half or zero
        // Adding 0.5 aligns the half's subnormal grid with the float's last mantissa bits; the
        // FPU's own rounding then gives round-to-nearest-even.
        let denormMagic: UInt32 = ((127 - 15) + (23 - 10) + 1) << 23
        let sum = Float(bitPattern: bits) + Float(bitPattern: denormMagic)
        result = sum.bitPattern &- denormMagic
    } else {
        let mantissaOdd = (bits >> 13) & 1
        var v = bits &+ (UInt32(bitPattern: Int32(15 - 127)) << 23) &+ 0xfff
        v &+= mantissaOdd
        result = v >> 13
    }
    return UInt16(truncatingIfNeeded: result | (sign >> 16))
}

@inline(__always)
func bfloat16ToFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

/// Rounds to the nearest bfloat16 (ties to even); NaN becomes a quiet NaN, as in ggml.
@inline(__always)
func floatToBFloat16(_ f: Float) -> UInt16 {
    let u = f.bitPattern
    if u & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 64) }
    return UInt16(truncatingIfNeeded: (u &+ (0x7fff + ((u >> 16) & 1))) >> 16)
}
