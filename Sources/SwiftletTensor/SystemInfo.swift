import Foundation
import CSwiftletKernels
#if canImport(CBLAS)
import CBLAS
#endif

/// What Swiftlet found about the machine and which compute paths it uses
/// (printed by `swiftlet info --system`).
public enum SystemInfo {
    /// CPU features Swiftlet's kernels care about, e.g. `["avx2", "fma", "avx512f", …]`.
    public static var cpuFeatures: [String] {
        #if canImport(CBLAS) && !canImport(Accelerate)
        let bits = swiftlet_cpu_features()
        let names: [(UInt32, String)] = [
            (UInt32(SWIFTLET_CPU_AVX), "avx"), (UInt32(SWIFTLET_CPU_AVX2), "avx2"), (UInt32(SWIFTLET_CPU_FMA), "fma"),
            (UInt32(SWIFTLET_CPU_F16C), "f16c"), (UInt32(SWIFTLET_CPU_AVX512F), "avx512f"),
            (UInt32(SWIFTLET_CPU_AVX512VL), "avx512vl"), (UInt32(SWIFTLET_CPU_AVX512BW), "avx512bw"),
            (UInt32(SWIFTLET_CPU_AVX512DQ), "avx512dq"), (UInt32(SWIFTLET_CPU_AVX512VNNI), "avx512vnni"),
            (UInt32(SWIFTLET_CPU_AVX512BF16), "avx512bf16"), (UInt32(SWIFTLET_CPU_NEON), "neon"),
        ]
        return names.filter { bits & $0.0 != 0 }.map(\.1) + armFeatures
        #else
        #if arch(arm64)
        return ["neon"] + armFeatures
        #else
        return []
        #endif
        #endif
    }

    /// The ARM64 extensions the quantized kernels use, when the CPU has them.
    private static var armFeatures: [String] {
        #if arch(arm64)
        return [(Int32(SWIFTLET_QK_DOTPROD), "dotprod"), (Int32(SWIFTLET_QK_I8MM), "i8mm")]
            .filter { swiftlet_qk_variant_supported($0.0) != 0 }.map(\.1)
        #else
        return []
        #endif
    }

    /// The CPU's model name (Linux: /proc/cpuinfo), or nil.
    public static var cpuModel: String? {
        #if os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
        #else
        return nil
        #endif
    }

    /// Physical cores available to this process (hyper-threads counted once).
    public static let physicalCoreCount: Int = {
        let logical = max(1, ProcessInfo.processInfo.activeProcessorCount)
        #if os(Linux)
        var cores = Set<String>()
        for cpu in 0..<logical {
            let base = "/sys/devices/system/cpu/cpu\(cpu)/topology/"
            guard let core = try? String(contentsOfFile: base + "core_id", encoding: .utf8),
                  let package = try? String(contentsOfFile: base + "physical_package_id", encoding: .utf8)
            else { return logical }
            cores.insert(package.trimmingCharacters(in: .whitespacesAndNewlines) + ":"
                         + core.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return max(1, min(logical, cores.count))
        #elseif canImport(Darwin)
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if sysctlbyname("hw.perflevel0.physicalcpu", &value, &size, nil, 0) == 0, value > 0 { return Int(value) }
        if sysctlbyname("hw.physicalcpu", &value, &size, nil, 0) == 0, value > 0 { return Int(value) }
        return logical
        #else
        return logical
        #endif
    }()

    /// Path of the loaded BLAS library, or nil when none could be loaded.
    public static var blasLibraryPath: String? { BLAS.library.loaded ? BLAS.library.path : nil }

    /// OpenBLAS's core name (`openblas_get_corename`), e.g. "SkylakeX"; nil when not OpenBLAS.
    public static var blasCoreName: String? { BLAS.library.coreName }

    /// The `OPENBLAS_CORETYPE` in effect when OpenBLAS was loaded (nil: none, OpenBLAS detected).
    public static var blasCoreType: String? { BLAS.library.coreType }

    /// True when Swiftlet chose `OPENBLAS_CORETYPE` itself (the user had not set it).
    public static var blasCoreTypeChosenBySwiftlet: Bool { BLAS.library.coreTypeChosenBySwiftlet }

    /// The core type Swiftlet picks for this CPU when the user sets none ("SkylakeX", "Haswell"), or nil.
    public static var preferredBLASCoreType: String? {
        #if canImport(CBLAS) && !canImport(Accelerate)
        return swiftlet_blas_preferred_coretype().map { String(cString: $0) }
        #else
        return nil
        #endif
    }

    /// Name of the portable GEMM micro-kernel chosen for this CPU ("avx512f", "avx2+fma", "generic").
    public static var simdGemmKernel: String { String(cString: swiftlet_sgemm_f32_kernel_name()) }

    /// Name of the quantized dot-product kernel variant chosen for this CPU ("avx512vnni", "avx2",
    /// "neon+dotprod+i8mm", "neon+dotprod", "neon" or "generic").
    public static var quantKernel: String { String(cString: swiftlet_qk_variant_name(swiftlet_qk_best_variant())) }

    /// A multi-line human-readable report of CPU, BLAS and threading choices.
    public static func report() -> String {
        let library = BLAS.library
        var lines: [String] = []
        lines.append("cpu: \(cpuModel ?? "unknown")")
        lines.append("cpu features: \(cpuFeatures.isEmpty ? "(none detected)" : cpuFeatures.joined(separator: " "))")
        lines.append("physical cores: \(physicalCoreCount), logical: \(ProcessInfo.processInfo.activeProcessorCount)")
        lines.append("compute threads: \(ComputePool.shared.threadCount)"
                     + (ProcessInfo.processInfo.environment["SWIFTLET_THREADS"] != nil ? " (SWIFTLET_THREADS)" : ""))
        lines.append("backend: requested \(ComputeBackend.current.rawValue), running \(ComputeBackend.effective.rawValue)")
        if library.loaded {
            lines.append("blas library: \(library.path ?? "?")")
            if let core = library.coreName { lines.append("blas core: \(core)") }
            if let type = library.coreType {
                let source = library.coreTypeChosenBySwiftlet ? "chosen by Swiftlet for this CPU" : "from the environment"
                lines.append("OPENBLAS_CORETYPE: \(type) (\(source))")
            }
            if let config = library.config { lines.append("blas config: \(config)") }
            lines.append("blas threads per call: 1 (products are split over the compute threads)")
        } else {
            lines.append("blas library: not loaded (\(library.loadError ?? "unknown reason")); using SIMD kernels")
        }
        lines.append("simd gemm kernel: \(simdGemmKernel)")
        lines.append("quantized dot kernel: \(quantKernel)")
        return lines.joined(separator: "\n")
    }
}
