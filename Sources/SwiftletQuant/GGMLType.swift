/// Element and block types of ggml / GGUF, numbered as in the GGUF file format.
///
/// One traits table (``GGMLType/traits``) says for each type how many weights a block holds and how
/// many bytes it takes; everything else (quantize, dequantize, dot kernels) is indexed by this type.
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

    /// Block geometry of a type.
    public struct Traits: Sendable, Equatable {
        /// Weights per block (1 for plain element types).
        public let blockSize: Int
        /// Bytes per block.
        public let typeSize: Int
        public init(blockSize: Int, typeSize: Int) { self.blockSize = blockSize; self.typeSize = typeSize }
    }

    /// Super-block size of the k-quants.
    public static let qkK = 256

    /// Block size and byte size, as in ggml's type traits table.
    public var traits: Traits {
        switch self {
        case .f32: return Traits(blockSize: 1, typeSize: 4)
        case .f16, .bf16: return Traits(blockSize: 1, typeSize: 2)
        case .q4_0: return Traits(blockSize: 32, typeSize: 2 + 16)
        case .q4_1: return Traits(blockSize: 32, typeSize: 2 + 2 + 16)
        case .q5_0: return Traits(blockSize: 32, typeSize: 2 + 4 + 16)
        case .q5_1: return Traits(blockSize: 32, typeSize: 2 + 2 + 4 + 16)
        case .q8_0: return Traits(blockSize: 32, typeSize: 2 + 32)
        case .q8_1: return Traits(blockSize: 32, typeSize: 4 + 32)
        case .q2_K: return Traits(blockSize: 256, typeSize: 2 * 2 + 256 / 16 + 256 / 4)
        case .q3_K: return Traits(blockSize: 256, typeSize: 2 + 256 / 4 + 256 / 8 + 12)
        case .q4_K: return Traits(blockSize: 256, typeSize: 2 * 2 + 12 + 256 / 2)
        case .q5_K: return Traits(blockSize: 256, typeSize: 2 * 2 + 12 + 256 / 8 + 256 / 2)
        case .q6_K: return Traits(blockSize: 256, typeSize: 2 + 256 / 16 + 3 * 256 / 4)
        case .q8_K: return Traits(blockSize: 256, typeSize: 4 + 256 + 16 * 2)
        case .iq2_xxs: return Traits(blockSize: 256, typeSize: 2 + 256 / 8 * 2)
        case .iq2_xs: return Traits(blockSize: 256, typeSize: 2 + 256 / 8 * 2 + 256 / 32)
        case .iq3_xxs: return Traits(blockSize: 256, typeSize: 2 + 3 * 256 / 8)
        case .iq1_s: return Traits(blockSize: 256, typeSize: 2 + 256 / 8 + 256 / 16)
        case .iq4_nl: return Traits(blockSize: 32, typeSize: 2 + 16)
        case .iq3_s: return Traits(blockSize: 256, typeSize: 2 + 256 / 4 + 256 / 8 + 256 / 32 + 4)
        case .iq2_s: return Traits(blockSize: 256, typeSize: 2 + 256 / 4 + 256 / 16)
        case .iq4_xs: return Traits(blockSize: 256, typeSize: 2 + 2 + 256 / 64 + 256 / 2)
        case .i8: return Traits(blockSize: 1, typeSize: 1)
        case .i16: return Traits(blockSize: 1, typeSize: 2)
        case .i32: return Traits(blockSize: 1, typeSize: 4)
        case .i64, .f64: return Traits(blockSize: 1, typeSize: 8)
        case .iq1_m: return Traits(blockSize: 256, typeSize: 256 / 8 + 256 / 16 + 256 / 32)
        case .tq1_0: return Traits(blockSize: 256, typeSize: 2 + 4 * 13)
        case .tq2_0: return Traits(blockSize: 256, typeSize: 2 + 64)
        }
    }

    /// ggml's name for the type ("Q4_K", "F32", …).
    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        case .iq2_xxs: return "IQ2_XXS"
        case .iq2_xs: return "IQ2_XS"
        case .iq3_xxs: return "IQ3_XXS"
        case .iq1_s: return "IQ1_S"
        case .iq4_nl: return "IQ4_NL"
        case .iq3_s: return "IQ3_S"
        case .iq2_s: return "IQ2_S"
        case .iq4_xs: return "IQ4_XS"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .f64: return "F64"
        case .iq1_m: return "IQ1_M"
        case .bf16: return "BF16"
        case .tq1_0: return "TQ1_0"
        case .tq2_0: return "TQ2_0"
        }
    }

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
