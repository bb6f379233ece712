import CSwiftletKernels

/// A variant of the quantized dot-product kernels in CSwiftletKernels. The best variant the CPU
/// supports is chosen once (``best``); tests and benchmarks can force another.
public enum QuantKernel: Int32, CaseIterable, Sendable, CustomStringConvertible {
    /// Portable C, no SIMD intrinsics.
    case generic = 0
    /// x86-64 AVX2 + FMA + F16C (`vpmaddubsw`).
    case avx2 = 1
    /// x86-64 AVX-512 BW/VL + VNNI (`vpdpbusd`).
    case avx512vnni = 2
    /// ARM64 Advanced SIMD (every ARMv8-A core; `smull` / `sadalp`).
    case neon = 3
    /// ARM64 with the ARMv8.2 dot product (`sdot`).
    case dotprod = 4
    /// ARM64 with the dot product and the int8 matrix multiply (`smmla`).
    case i8mm = 5

    /// The fastest variant this CPU runs (decided once per process).
    public static let best: QuantKernel = QuantKernel(rawValue: swiftlet_qk_best_variant()) ?? .generic

    /// Whether this CPU can run the variant.
    public var isSupported: Bool { swiftlet_qk_variant_supported(rawValue) != 0 }

    /// The variants this CPU can run, generic first.
    public static var supported: [QuantKernel] { allCases.filter(\.isSupported) }

    public var description: String {
        switch self {
        case .generic: return "generic"
        case .avx2: return "avx2"
        case .avx512vnni: return "avx512vnni"
        case .neon: return "neon"
        case .dotprod: return "neon+dotprod"
        case .i8mm: return "neon+dotprod+i8mm"
        }
    }
}

/// Direct access to the row-level kernels: the activation quantizer, the C dot kernels and their
/// Swift reference twins. ``QuantizedMatrix`` is the usual entry point; these are for tests,
/// benchmarks and callers that manage their own activation buffers.
public enum QuantKernels {
    /// Bytes of one activation row of `cols` values in `weightType`'s paired activation type
    /// (`cols * 4` for float weights, which take f32 activations as they are).
    public static func activationRowBytes(weightType: GGMLType, cols: Int) -> Int? {
        let act = weightType.activationType
        return act.rowBytes(cols)
    }

    /// Quantizes `count` activations to `weightType.activationType` into `out` (round to nearest,
    /// ties to even). For float weight types this copies the f32 values.
    public static func quantizeActivations(weightType: GGMLType, _ x: UnsafePointer<Float>, count: Int,
                                           into out: UnsafeMutableRawPointer, kernel: QuantKernel = .best) {
        let act = weightType.activationType
        if act == .f32 {
            out.copyMemory(from: x, byteCount: 4 * count)
            return
        }
        _ = swiftlet_qk_quantize_act(kernel.rawValue, Int32(act.rawValue), x, out, Int32(count))
    }

    /// `Σ w·a` of one weight row (`count` weights of `type`) with one activation row in the paired
    /// type, by the C kernel `kernel`.
    public static func dot(_ type: GGMLType, count: Int, weights: UnsafeRawPointer, activations: UnsafeRawPointer,
                           kernel: QuantKernel = .best) -> Float {
        var out: Float = 0
        _ = swiftlet_qk_gemm(kernel.rawValue, Int32(type.rawValue), Int32(count), weights, 0, 1, activations, 0, 1, &out, 1)
        return out
    }

    /// The Swift scalar reference of ``quantizeActivations(weightType:_:count:into:kernel:)`` for
    /// the Q8_0 / Q8_1 activation types (llama.cpp's x86 rounding); returns false for other types.
    public static func referenceQuantizeActivations(weightType: GGMLType, _ x: UnsafePointer<Float>, count: Int,
                                                    into out: UnsafeMutableRawPointer) -> Bool {
        switch weightType.activationType {
        case .q8_0: SwiftletQuant.referenceQuantizeQ8(x, count, into: out, withSum: false)
        case .q8_1: SwiftletQuant.referenceQuantizeQ8(x, count, into: out, withSum: true)
        default: return false
        }
        return true
    }

    /// The Swift scalar reference of ``dot(_:count:weights:activations:kernel:)`` (the test oracle).
    public static func referenceDot(_ type: GGMLType, count: Int, weights: UnsafeRawPointer, activations: UnsafeRawPointer) -> Float {
        SwiftletQuant.referenceDot(type, count, weights, activations)
    }
}
