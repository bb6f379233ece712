/// IEEE half (F16) and bfloat16 (BF16) conversions, bit-exact and portable (no `Float16` type,
/// which is missing on some platforms). Float → half rounds to nearest even; NaN stays NaN.
public enum HalfPrecision {
    /// F16 bits → Float (exact: every half is representable).
    @inlinable @inline(__always)
    public static func float(fromF16 h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {  // Inf / NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24, exact in Float.
            let magnitude = Float(mantissa) * (1.0 / 16_777_216.0)
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// Float → F16 bits, round to nearest even, overflow to ±Inf, NaN kept quiet.
    @inlinable @inline(__always)
    public static func f16(from f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x200 | UInt16(mantissa >> 13) : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }
        if halfExponent <= 0 {
            // Subnormal half (or zero): shift the implicit-one mantissa right, rounding to nearest even.
            if halfExponent < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - halfExponent)
            let halfMantissa = mantissa >> shift
            let remainder = mantissa & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            var result = halfMantissa
            if remainder > halfway || (remainder == halfway && (halfMantissa & 1) == 1) { result += 1 }
            return sign | UInt16(result)
        }
        var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && (result & 1) == 1) {
            result += 1  // may carry into the exponent, which is the correct rounding (up to Inf)
        }
        return sign | UInt16(result)
    }

    /// BF16 bits → Float (exact).
    @inlinable @inline(__always)
    public static func float(fromBF16 h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Float → BF16 bits, round to nearest even; NaN kept quiet.
    @inlinable @inline(__always)
    public static func bf16(from f: Float) -> UInt16 {
        let bits = f.bitPattern
        if f.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }

    /// Converts `count` F16 values to Float.
    public static func convertF16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = float(fromF16: src[i]) }
    }

    /// Converts `count` Floats to F16.
    public static func convertFloatToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        for i in 0..<count { dst[i] = f16(from: src[i]) }
    }

    /// Converts `count` Floats to BF16.
    public static func convertFloatToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        for i in 0..<count { dst[i] = bf16(from: src[i]) }
    }
}
