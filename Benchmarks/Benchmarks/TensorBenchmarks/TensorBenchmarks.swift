// package-benchmark suite for the tensor core: GEMM on both backends and pool dispatch overhead.
import Benchmark
import Dispatch
import SwiftletTensor

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

    Benchmark("pool dispatch", configuration: .init(metrics: [.wallClock], scalingFactor: .kilo)) { benchmark in
        let threads = ComputePool.shared.threadCount
        let sink = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        sink.initialize(repeating: 0, count: 64)
        for _ in benchmark.scaledIterations {
            ComputePool.shared.parallelFor(threads) { i in sink[i * 8] &+= 1 }
        }
    }

    Benchmark("concurrentPerform dispatch", configuration: .init(metrics: [.wallClock], scalingFactor: .kilo)) { benchmark in
        let threads = ComputePool.shared.threadCount
        let sink = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        sink.initialize(repeating: 0, count: 64)
        for _ in benchmark.scaledIterations {
            DispatchQueue.concurrentPerform(iterations: threads) { i in sink[i * 8] &+= 1 }
        }
    }
}
