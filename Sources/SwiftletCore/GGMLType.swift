/// Element and block types of ggml / GGUF, numbered as in the GGUF file format.
///
/// One traits table (``GGMLType/traits``) holds each type's name, block geometry, activation type
/// and codec support; everything else (quantize, dequantize, dot kernels) is indexed by this type.
public enum GGMLType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1
    case q4_0 = 2, q4_1 = 3
    case q5_0 = 6, q5_1 = 7
    case q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
    case iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35

    /// One row of ggml's type traits table.
    public struct Traits: Sendable, Equatable {
        /// ggml's name ("Q4_K", "F32", …).
        public let name: String
        /// Weights per block (1 for plain element types).
        public let blockSize: Int
        /// Bytes per block.
        public let typeSize: Int
        /// The type activations are converted to before a dot product with weights of this type
        /// (ggml's `vec_dot_type`); `.f32` for float weights, whose activations stay f32.
        public let activationType: GGMLType
        /// Whether SwiftletQuant quantizes and dequantizes this type.
        public let hasCodec: Bool

        public init(name: String, blockSize: Int, typeSize: Int, activationType: GGMLType, hasCodec: Bool) {
            self.name = name; self.blockSize = blockSize; self.typeSize = typeSize
            self.activationType = activationType; self.hasCodec = hasCodec
        }
    }

    /// Super-block size of the k-quants.
    public static let qkK = 256

    /// The type's row of the traits table: everything else (quantize, dequantize, the dot
    /// kernels, file sizes) is indexed by this. The C kernels' type ids and dispatch are checked
    /// against it in `GGMLTypeTraitsTests`.
    public var traits: Traits {
        let K = GGMLType.qkK
        func row(_ name: String, _ blockSize: Int, _ typeSize: Int, _ act: GGMLType = .f32, codec: Bool = false) -> Traits {
            Traits(name: name, blockSize: blockSize, typeSize: typeSize, activationType: act, hasCodec: codec)
        }
        switch self {
        case .f32:     return row("F32", 1, 4, codec: true)
        case .f16:     return row("F16", 1, 2, codec: true)
        case .bf16:    return row("BF16", 1, 2, codec: true)
        case .q4_0:    return row("Q4_0", 32, 2 + 16, .q8_0, codec: true)
        case .q4_1:    return row("Q4_1", 32, 2 + 2 + 16, .q8_1, codec: true)
        case .q5_0:    return row("Q5_0", 32, 2 + 4 + 16, .q8_0, codec: true)
        case .q5_1:    return row("Q5_1", 32, 2 + 2 + 4 + 16, .q8_1, codec: true)
        case .q8_0:    return row("Q8_0", 32, 2 + 32, .q8_0, codec: true)
        case .q8_1:    return row("Q8_1", 32, 4 + 32, .q8_1, codec: true)
        case .q2_K:    return row("Q2_K", K, 2 * 2 + K / 16 + K / 4, .q8_K, codec: true)
        case .q3_K:    return row("Q3_K", K, 2 + K / 4 + K / 8 + 12, .q8_K, codec: true)
        case .q4_K:    return row("Q4_K", K, 2 * 2 + 12 + K / 2, .q8_K, codec: true)
        case .q5_K:    return row("Q5_K", K, 2 * 2 + 12 + K / 8 + K / 2, .q8_K, codec: true)
        case .q6_K:    return row("Q6_K", K, 2 + K / 16 + 3 * K / 4, .q8_K, codec: true)
        case .q8_K:    return row("Q8_K", K, 4 + K + 16 * 2, .q8_K, codec: true)
        case .iq2_xxs: return row("IQ2_XXS", K, 2 + K / 8 * 2)
        case .iq2_xs:  return row("IQ2_XS", K, 2 + K / 8 * 2 + K / 32)
        case .iq3_xxs: return row("IQ3_XXS", K, 2 + 3 * K / 8)
        case .iq1_s:   return row("IQ1_S", K, 2 + K / 8 + K / 16)
        case .iq4_nl:  return row("IQ4_NL", 32, 2 + 16, .q8_0, codec: true)
        case .iq3_s:   return row("IQ3_S", K, 2 + K / 4 + K / 8 + K / 32 + 4)
        case .iq2_s:   return row("IQ2_S", K, 2 + K / 4 + K / 16)
        case .iq4_xs:  return row("IQ4_XS", K, 2 + 2 + K / 64 + K / 2, .q8_K, codec: true)
        case .i8:      return row("I8", 1, 1)
        case .i16:     return row("I16", 1, 2)
        case .i32:     return row("I32", 1, 4)
        case .i64:     return row("I64", 1, 8)
        case .f64:     return row("F64", 1, 8)
        case .iq1_m:   return row("IQ1_M", K, K / 8 + K / 16 + K / 32)
        case .tq1_0:   return row("TQ1_0", K, 2 + 4 * 13)
        case .tq2_0:   return row("TQ2_0", K, 2 + 64)
        }
    }

    /// ggml's name for the type ("Q4_K", "F32", …).
    public var description: String { traits.name }

    /// The activation block type a weight of this type is multiplied with (ggml's `vec_dot_type`).
    public var activationType: GGMLType { traits.activationType }

    /// Whether SwiftletQuant can dequantize (and quantize) this type.
    public var isQuantSupported: Bool { traits.hasCodec }

    /// Whether ``QuantizedMatrix`` and the dot kernels handle this weight type (every type with a
    /// codec except the activation-only Q8_1).
    public var hasDotKernel: Bool { traits.hasCodec && self != .q8_1 }

    /// The type with ggml's name `name` (case-insensitive), if any.
    public init?(name: String) {
        guard let t = GGMLType.allCases.first(where: { $0.description == name.uppercased() }) else { return nil }
        self = t
    }

    /// Bytes taken by a row of `count` elements; `nil` when `count` is not a whole number of
    /// blocks or the product overflows.
    public func rowBytes(_ count: Int) -> Int? {
        let t = traits
        guard count >= 0, count % t.blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / t.blockSize).multipliedReportingOverflow(by: t.typeSize)
        return overflow ? nil : bytes
    }

    /// Bits per weight.
    public var bitsPerWeight: Double { Double(traits.typeSize * 8) / Double(traits.blockSize) }
}
