// package-benchmark suite for the tensor core: GEMM on both backends and pool dispatch overhead.
import Benchmark
import Dispatch
import SwiftletTensor
import CBLAS

private func matrices(_ m: Int, _ n: Int, _ k: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
    let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    for i in 0..<(m * k) { a[i] = Float(i % 13) * 0.01 }
    for i in 0..<(k * n) { b[i] = Float(i % 7) * 0.02 }
    return (a, b, c)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(2), maxIterations: 200)

    for (name, m, n, k) in [("512x512x512", 512, 512, 512), ("prefill 512x1536x576", 512, 1536, 576)] {
        for backend in ComputeBackend.allCases {
            Benchmark("sgemm \(backend.rawValue) \(name)") { benchmark in
                let (a, b, c) = matrices(m, n, k)
                ComputeBackend.current = backend
                for _ in benchmark.scaledIterations {
                    BLAS.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                               beta: 0, c: c, ldc: n)
                }
                ComputeBackend.current = .blas
            }
        }
    }

    // OpenBLAS called directly, with its own threads (same count as Swiftlet's pool): the peer
    // for the "sgemm blas" figures above.
    for (name, m, n, k) in [("512x512x512", 512, 512, 512), ("prefill 512x1536x576", 512, 1536, 576)] {
        Benchmark("sgemm openblas-direct \(name)") { benchmark in
            guard BLAS.isAvailable else { return }
            let (a, b, c) = matrices(m, n, k)
            swiftlet_blas_set_num_threads(Int32(ComputePool.shared.threadCount))
            defer { swiftlet_blas_set_num_threads(1) }
            for _ in benchmark.scaledIterations {
                swiftlet_cblas_sgemm(101, 111, 111, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, c, Int32(n))
            }
        }
    }

    Benchmark("pool dispatch", configuration: .init(metrics: [.wallClock], scalingFactor: .kilo)) { benchmark in
        let threads = ComputePool.shared.threadCount
        for _ in benchmark.scaledIterations {
            ComputePool.shared.parallelFor(threads) { i in blackHole(i) }
        }
    }

    Benchmark("concurrentPerform dispatch", configuration: .init(metrics: [.wallClock], scalingFactor: .kilo)) { benchmark in
        let threads = ComputePool.shared.threadCount
        for _ in benchmark.scaledIterations {
            DispatchQueue.concurrentPerform(iterations: threads) { i in blackHole(i) }
        }
    }
}
