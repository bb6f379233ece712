import Foundation
import Synchronization
import CSwiftletKernels
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Which implementation runs GEMM/GEMV (and, through them, `Tensor.matmul`).
///
/// `.blas` uses the platform BLAS (OpenBLAS loaded at run time on Linux, Accelerate on Apple
/// platforms) and falls back to `.simd` when no BLAS library could be loaded. `.simd` uses
/// Swiftlet's own kernels only. The initial value comes from `SWIFTLET_BACKEND=simd|blas`
/// (default `blas`); tests switch it at run time to check that both agree.
public enum ComputeBackend: String, Sendable, CaseIterable {
    case blas
    case simd

    private static let selected = Atomic<Int>(-1)

    /// The backend requested for this process (see the type's documentation).
    public static var current: ComputeBackend {
        get {
            var raw = selected.load(ordering: .relaxed)
            if raw < 0 {
                let env = ProcessInfo.processInfo.environment["SWIFTLET_BACKEND"]?.lowercased()
                raw = env == "simd" ? 1 : 0
                selected.store(raw, ordering: .relaxed)
            }
            return raw == 1 ? .simd : .blas
        }
        set { selected.store(newValue == .simd ? 1 : 0, ordering: .relaxed) }
    }

    /// The backend that actually runs: `.simd` when `.blas` is requested but unavailable.
    public static var effective: ComputeBackend {
        current == .blas && BLAS.isAvailable ? .blas : .simd
    }

    /// Runs `body` with `backend` selected, restoring the previous choice afterwards
    /// (process-wide: not meant for concurrent use with different backends).
    public static func with<T>(_ backend: ComputeBackend, _ body: () throws -> T) rethrows -> T {
        let previous = current
        current = backend
        defer { current = previous }
        return try body()
    }
}

/// Row-major single-precision GEMM and GEMV.
///
/// Dispatches to the platform BLAS when it is loaded and `ComputeBackend.current == .blas`, else to
/// Swiftlet's packed SIMD kernels (`swiftlet_sgemm_f32`). Large problems are split over
/// `ComputePool.shared` by output blocks, each block one single-threaded BLAS call: OpenBLAS's own
/// threads are set to 1 so that only one set of spinning threads competes for the cores.
/// Callers guarantee valid pointers and leading dimensions (the `Tensor` API validates shapes and
/// throws); non-positive sizes are a no-op.
public enum BLAS {
    /// True when a BLAS library is loaded (Accelerate on Apple platforms; on Linux OpenBLAS is loaded
    /// on first use of this property, after Swiftlet has chosen `OPENBLAS_CORETYPE`).
    public static var isAvailable: Bool { library.loaded }

    /// C = alpha · op(A) · op(B) + beta · C, all row-major. op(A) is m×k: A is m×k (`lda ≥ k`) or,
    /// with `transA`, k×m (`lda ≥ m`); op(B) is k×n likewise. With beta == 0 C need not be initialised.
    /// `pool` splits large products (default: the shared pool).
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ComputePool = .shared) {
        guard m > 0, n > 0 else { return }
        let useBLAS = ComputeBackend.current == .blas && isAvailable
        if !useBLAS && m <= 4 && k > 0 {
            // A few rows (decode): one GEMV per row streams B once instead of packing all of it.
            // op(B)ᵀ·a_i: B stored n×k (transB) is GEMV without transpose, k×n is with.
            for i in 0..<m {
                let row = transA ? a + i : a + i * lda
                if transA {
                    // Rows of op(A) are strided: gather one into a small buffer.
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: k) { buffer in
                        for p in 0..<k { buffer[p] = row[p * lda] }
                        sgemv(trans: !transB, m: transB ? n : k, n: transB ? k : n, alpha: alpha, a: b, lda: ldb,
                              x: buffer.baseAddress!, beta: beta, y: c + i * ldc, pool: pool)
                    }
                } else {
                    sgemv(trans: !transB, m: transB ? n : k, n: transB ? k : n, alpha: alpha, a: b, lda: ldb,
                          x: row, beta: beta, y: c + i * ldc, pool: pool)
                }
            }
            return
        }
        // Below ~2 MFLOP a dispatch costs more than it saves.
        let parts = (m * n * k < 1 << 21 || pool.threadCount == 1) ? 1 : pool.threadCount
        // Split the longer side of C; blocks are multiples of the micro-tile (32 columns / 16 rows).
        let splitColumns = n >= m
        let extent = splitColumns ? n : m
        let granule = splitColumns ? 32 : 16
        let blocks = (extent + granule - 1) / granule
        let partCount = min(parts, blocks)
        // A nested function, not a closure value: its context stays on the stack (a step of the
        // training graph calls this hundreds of times and must not allocate).
        func run(_ start: Int, _ end: Int) {
            let mm = splitColumns ? m : end - start
            let nn = splitColumns ? end - start : n
            let aa = splitColumns ? a : (transA ? a + start : a + start * lda)
            let bb = splitColumns ? (transB ? b + start * ldb : b + start) : b
            let cc = splitColumns ? c + start : c + start * ldc
            if useBLAS {
                gemmLibrary(transA: transA, transB: transB, m: mm, n: nn, k: k, alpha: alpha, a: aa, lda: lda,
                            b: bb, ldb: ldb, beta: beta, c: cc, ldc: ldc)
            } else {
                swiftlet_sgemm_f32(transA ? 1 : 0, transB ? 1 : 0, mm, nn, k, alpha, aa, lda, bb, ldb, beta, cc, ldc)
            }
        }
        if partCount <= 1 {
            run(0, extent)
            return
        }
        pool.parallelChunks(partCount, chunk: 1) { parts, _ in
            for part in parts {
                let start = (blocks * part / partCount) * granule
                let end = min(extent, (blocks * (part + 1) / partCount) * granule)
                if start < end { run(start, end) }
            }
        }
    }

    /// y = alpha · op(A) · x + beta · y, A row-major m×n (`lda ≥ n`). op(A) = A (x has n elements,
    /// y has m) or, with `trans`, Aᵀ (x has m elements, y has n). With beta == 0 y need not be
    /// initialised. Large problems are split over `ComputePool.shared` by blocks of y.
    public static func sgemv(trans: Bool, m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                             x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>,
                             pool: ComputePool = .shared) {
        guard m > 0, n > 0 else { return }
        let useBLAS = ComputeBackend.current == .blas && isAvailable
        let outCount = trans ? n : m
        let parts = (m * n < 1 << 16 || pool.threadCount == 1) ? 1 : min(pool.threadCount * 2, (outCount + 15) / 16)
        func run(_ start: Int, _ end: Int) {
            if useBLAS {
                // Block of y: rows start..<end of A (no trans) or columns start..<end (trans).
                if trans {
                    gemvLibrary(trans: true, m: m, n: end - start, alpha: alpha, a: a + start, lda: lda, x: x,
                                beta: beta, y: y + start)
                } else {
                    gemvLibrary(trans: false, m: end - start, n: n, alpha: alpha, a: a + start * lda, lda: lda, x: x,
                                beta: beta, y: y + start)
                }
            } else if trans {
                SIMDKernels.gemvTransposed(m: m, columns: start..<end, alpha: alpha, a: a, lda: lda, x: x, beta: beta, y: y)
            } else {
                for i in start..<end {
                    let d = alpha * VectorOps.dot(a + i * lda, x, count: n)
                    y[i] = beta == 0 ? d : d + beta * y[i]
                }
            }
        }
        if parts <= 1 {
            run(0, outCount)
            return
        }
        pool.parallelChunks(parts, chunk: 1) { range, _ in
            for part in range {
                let start = (outCount * part / parts) & ~15
                let end = part == parts - 1 ? outCount : (outCount * (part + 1) / parts) & ~15
                if start < end { run(start, end) }
            }
        }
    }

    // MARK: - library calls

    private static func gemmLibrary(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        #if canImport(Accelerate)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #else
        swiftlet_cblas_sgemm(Int32(SWIFTLET_CBLAS_ROW_MAJOR),
                             Int32(transA ? SWIFTLET_CBLAS_TRANS : SWIFTLET_CBLAS_NO_TRANS),
                             Int32(transB ? SWIFTLET_CBLAS_TRANS : SWIFTLET_CBLAS_NO_TRANS),
                             Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #endif
    }

    private static func gemvLibrary(trans: Bool, m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                                    x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        #if canImport(Accelerate)
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
        #else
        swiftlet_cblas_sgemv(Int32(SWIFTLET_CBLAS_ROW_MAJOR),
                             Int32(trans ? SWIFTLET_CBLAS_TRANS : SWIFTLET_CBLAS_NO_TRANS),
                             Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
        #endif
    }

    /// What was loaded, resolved once.
    struct Library: Sendable {
        var loaded: Bool
        var path: String?
        var coreName: String?
        var config: String?
        var coreType: String?
        var coreTypeChosenBySwiftlet: Bool
        var loadError: String?
    }

    static let library: Library = {
        #if canImport(Accelerate)
        return Library(loaded: true, path: "Accelerate.framework", coreName: nil, config: nil, coreType: nil,
                       coreTypeChosenBySwiftlet: false, loadError: nil)
        #else
        let loaded = swiftlet_blas_load() == 1
        if loaded {
            // One BLAS thread per call: Swiftlet splits big products over its own pool instead.
            swiftlet_blas_set_num_threads(1)
        }
        func string(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }
        return Library(loaded: loaded, path: string(swiftlet_blas_library_path()),
                       coreName: string(swiftlet_blas_corename()).map { $0.trimmingCharacters(in: .whitespaces) },
                       config: string(swiftlet_blas_config()).map { $0.trimmingCharacters(in: .whitespaces) },
                       coreType: string(swiftlet_blas_coretype()),
                       coreTypeChosenBySwiftlet: swiftlet_blas_coretype_was_chosen() == 1,
                       loadError: string(swiftlet_blas_load_error()))
        #endif
    }()
}

/// Portable kernels that have no single VectorOps equivalent.
enum SIMDKernels {
    /// y[j] = alpha · Σ_i x[i]·A[i, j] + beta · y[j] for j in `columns`, streaming A row by row.
    static func gemvTransposed(m: Int, columns: Range<Int>, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                               x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        let width = columns.count
        guard width > 0 else { return }
        let out = y + columns.lowerBound
        if beta == 0 {
            out.update(repeating: 0, count: width)
        } else if beta != 1 {
            VectorOps.scale(out, by: beta, count: width)
        }
        for i in 0..<m {
            VectorOps.axpy(alpha * x[i], a + i * lda + columns.lowerBound, out, count: width)
        }
    }
}
