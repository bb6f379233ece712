import XCTest
import CSwiftletKernels
import SwiftletTensor

final class BLASTests: XCTestCase {
    func testLibraryLoadedOnLinux() {
        #if os(Linux)
        // CI installs libopenblas-dev; an unloadable library would silently cost 5-20x.
        if ProcessInfo.processInfo.environment["SWIFTLET_BLAS_LIBRARY"] == nil {
            XCTAssertTrue(BLAS.isAvailable, SystemInfo.report())
        }
        #endif
        let report = SystemInfo.report()
        XCTAssertTrue(report.contains("simd gemm kernel"), report)
    }

    func testOpenBLASRunsTheChosenCoreType() throws {
        #if os(Linux)
        guard BLAS.isAvailable, let core = SystemInfo.blasCoreName else {
            throw XCTSkip("OpenBLAS not loaded")
        }
        if SystemInfo.blasCoreTypeChosenBySwiftlet {
            // No OPENBLAS_CORETYPE from the user: Swiftlet's choice for this CPU must be what runs.
            XCTAssertEqual(core.lowercased(), SystemInfo.preferredBLASCoreType?.lowercased(), SystemInfo.report())
        } else if let requested = SystemInfo.blasCoreType {
            // An explicit OPENBLAS_CORETYPE is respected (OpenBLAS spells names its own way).
            XCTAssertEqual(core.lowercased(), requested.lowercased(), SystemInfo.report())
        }
        // Never the generic SSE3 fallback on a CPU with AVX2 or AVX-512, unless the user asked for it.
        if SystemInfo.preferredBLASCoreType != nil, SystemInfo.blasCoreTypeChosenBySwiftlet {
            XCTAssertNotEqual(core.lowercased(), "prescott")
        }
        #endif
    }

    func testSgemmMatchesReferenceOnBothBackends() {
        let shapes = [(1, 1, 1), (3, 5, 7), (17, 33, 45), (1, 100, 3), (100, 1, 17), (65, 130, 31), (40, 1000, 9)]
        for (m, n, k) in shapes {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 1, ldc = n + 3
                    let a = randomFloats((transA ? k : m) * lda, seed: 11)
                    let b = randomFloats((transB ? n : k) * ldb, seed: 12)
                    let c0 = randomFloats(m * ldc, seed: 13)
                    var expected = c0
                    ScalarReference.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                                         b: b, ldb: ldb, beta: 0.5, c: &expected, ldc: ldc)
                    forEachBackend { backend in
                        var c = c0
                        BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda, b: b,
                                   ldb: ldb, beta: 0.5, c: &c, ldc: ldc)
                        assertClose(c, expected, absolute: 1e-5 * Float(k) + 1e-5,
                                    "\(backend) m\(m) n\(n) k\(k) tA\(transA) tB\(transB)")
                    }
                }
            }
        }
    }

    func testEveryGemmMicroKernelMatchesReference() {
        // 1 = generic C (4-wide vectors), 2 = AVX2+FMA, 3 = AVX-512 (missing ones fall back).
        for (m, n, k) in [(1, 1, 1), (7, 9, 5), (33, 70, 200), (130, 45, 3)] {
            for (transA, transB) in [(false, false), (true, true), (false, true)] {
                let lda = transA ? m : k, ldb = transB ? k : n
                let a = randomFloats(m * k, seed: 40), b = randomFloats(k * n, seed: 41)
                let c0 = randomFloats(m * n, seed: 42)
                var expected = c0
                ScalarReference.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: -1.5, a: a, lda: lda,
                                     b: b, ldb: ldb, beta: 2, c: &expected, ldc: n)
                for variant in Int32(1)...3 {
                    var c = c0
                    swiftlet_sgemm_f32_variant(variant, transA ? 1 : 0, transB ? 1 : 0, m, n, k, -1.5, a, lda, b, ldb, 2,
                                               &c, n)
                    assertClose(c, expected, absolute: 1e-5 * Float(k) + 1e-5,
                                "variant \(variant) m\(m) n\(n) k\(k) tA\(transA) tB\(transB)")
                }
            }
        }
    }

    func testSgemmLargeSplitOverThreadsAndBetaZeroIgnoresNaN() {
        // Large enough to be split over the pool; C starts as NaN to check beta == 0.
        let (m, n, k) = (70, 300, 129)
        let a = randomFloats(m * k, seed: 14), b = randomFloats(n * k, seed: 15)
        var expected = [Float](repeating: 0, count: m * n)
        ScalarReference.gemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: k,
                             beta: 0, c: &expected, ldc: n)
        var results: [[Float]] = []
        forEachBackend { backend in
            var c = [Float](repeating: .nan, count: m * n)
            BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: k, beta: 0,
                       c: &c, ldc: n)
            assertClose(c, expected, absolute: 2e-4, "\(backend)")
            results.append(c)
        }
        // The two backends agree with each other within float rounding.
        assertClose(results[0], results[1], absolute: 2e-4, "blas vs simd")
    }

    func testSgemv() {
        for (m, n) in [(1, 1), (3, 17), (17, 3), (100, 1000), (1536, 576)] {
            let a = randomFloats(m * (n + 1), seed: 16)
            for trans in [false, true] {
                let x = randomFloats(trans ? m : n, seed: 17)
                let y0 = randomFloats(trans ? n : m, seed: 18)
                var expected = y0
                ScalarReference.gemm(transA: trans, transB: false, m: trans ? n : m, n: 1, k: trans ? m : n, alpha: 2,
                                     a: a, lda: n + 1, b: x, ldb: 1, beta: 0.5, c: &expected, ldc: 1)
                forEachBackend { backend in
                    var y = y0
                    BLAS.sgemv(trans: trans, m: m, n: n, alpha: 2, a: a, lda: n + 1, x: x, beta: 0.5, y: &y)
                    assertClose(y, expected, absolute: 1e-5 * Float(max(m, n)) + 1e-5, "\(backend) \(m)x\(n) t\(trans)")
                }
            }
        }
    }
}
