// Side-by-side GEMM and thread-pool figures. Every number is the best of several timed runs after
// warm-up; ratios compare runs made in the same process, one after the other.
import Foundation
import Dispatch
import SwiftletTensor
import CBLAS
import CSwiftletKernels

func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Best time of `runs` runs (after one warm-up), in seconds.
func best(runs: Int, _ body: () -> Void) -> Double {
    body()
    var b = Double.infinity
    for _ in 0..<runs { b = min(b, seconds(body)) }
    return b
}

struct Problem {
    let m, n, k: Int
    let a, b: UnsafeMutablePointer<Float>
    let c: UnsafeMutablePointer<Float>
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    init(m: Int, n: Int, k: Int) {
        (self.m, self.n, self.k) = (m, n, k)
        a = .allocate(capacity: m * k); b = .allocate(capacity: k * n); c = .allocate(capacity: m * n)
        for i in 0..<(m * k) { a[i] = Float(i % 13) * 0.01 - 0.06 }
        for i in 0..<(k * n) { b[i] = Float(i % 7) * 0.02 - 0.07 }
    }
}

let args = CommandLine.arguments
let runs = args.count > 1 ? Int(args[1]) ?? 10 : 10
let maxThreads = ComputePool.shared.threadCount

print("== system ==")
print(SystemInfo.report())
print("")

let problems = [("512x512x512", Problem(m: 512, n: 512, k: 512)),
                ("prefill M=512 K=576 N=1536", Problem(m: 512, n: 1536, k: 576))]
let threadCounts = Array(Set([1, min(2, maxThreads), maxThreads])).sorted()
let pools = Dictionary(uniqueKeysWithValues: threadCounts.map { ($0, ComputePool(threadCount: $0)) })

print("== sgemm GFLOP/s (best of \(runs)) ==")
print("shape                          threads  swiftlet(blas)  openblas-direct  ratio   swiftlet(simd)  simd/openblas")
for (name, p) in problems {
    for t in threadCounts {
        let pool = pools[t]!
        // Rounds alternate between the contenders so that load from other processes hits all alike;
        // each figure is the best round. OpenBLAS's own threads spin for a while after a threaded
        // call, so they get time to go idle before Swiftlet's pool runs.
        var direct = 0.0, ours = 0.0, simd = 0.0
        for _ in 0..<3 {
            if BLAS.isAvailable {
                swiftlet_blas_set_num_threads(Int32(t))
                direct = max(direct, p.flops / best(runs: runs) {
                    swiftlet_cblas_sgemm(101, 111, 111, Int32(p.m), Int32(p.n), Int32(p.k), 1, p.a, Int32(p.k), p.b,
                                         Int32(p.n), 0, p.c, Int32(p.n))
                } / 1e9)
                swiftlet_blas_set_num_threads(1)
                if t > 1 { usleep(300_000) }
            }
            ours = max(ours, ComputeBackend.with(.blas) {
                p.flops / best(runs: runs) {
                    BLAS.sgemm(transA: false, transB: false, m: p.m, n: p.n, k: p.k, alpha: 1, a: p.a, lda: p.k, b: p.b,
                               ldb: p.n, beta: 0, c: p.c, ldc: p.n, pool: pool)
                } / 1e9
            })
            simd = max(simd, ComputeBackend.with(.simd) {
                p.flops / best(runs: runs) {
                    BLAS.sgemm(transA: false, transB: false, m: p.m, n: p.n, k: p.k, alpha: 1, a: p.a, lda: p.k, b: p.b,
                               ldb: p.n, beta: 0, c: p.c, ldc: p.n, pool: pool)
                } / 1e9
            })
        }
        func f(_ x: Double) -> String { String(format: "%7.1f", x) }
        let ratio = direct > 0 ? String(format: "%5.2fx", ours / direct) : "  n/a"
        let simdRatio = direct > 0 ? String(format: "%5.2fx", simd / direct) : "  n/a"
        print(name.padding(toLength: 31, withPad: " ", startingAt: 0) + "\(t)".padding(toLength: 9, withPad: " ", startingAt: 0)
              + "\(f(ours))         \(f(direct))          \(ratio)  \(f(simd))          \(simdRatio)")
    }
}
print("")

// Transposed weights (x · Wᵀ, the layout of [out, in] weight matrices), prefill shape.
do {
    let p = Problem(m: 512, n: 1536, k: 576)
    for t in threadCounts {
        let g = ComputeBackend.with(.blas) {
            p.flops / best(runs: runs) {
                BLAS.sgemm(transA: false, transB: true, m: p.m, n: p.n, k: p.k, alpha: 1, a: p.a, lda: p.k, b: p.b,
                           ldb: p.k, beta: 0, c: p.c, ldc: p.n, pool: pools[t]!)
            } / 1e9
        }
        let s = ComputeBackend.with(.simd) {
            p.flops / best(runs: runs) {
                BLAS.sgemm(transA: false, transB: true, m: p.m, n: p.n, k: p.k, alpha: 1, a: p.a, lda: p.k, b: p.b,
                           ldb: p.k, beta: 0, c: p.c, ldc: p.n, pool: pools[t]!)
            } / 1e9
        }
        print(String(format: "prefill x·Wᵀ, %d thread(s): blas %.1f GFLOP/s, simd %.1f GFLOP/s", t, g, s))
    }
}
print("")

print("== pool dispatch overhead (2 tasks of ~0 work), µs per call ==")
do {
    let iterations = 20_000
    let sink = UnsafeMutablePointer<Int>.allocate(capacity: 64)
    sink.initialize(repeating: 0, count: 64)
    let pool = pools[maxThreads]!
    let poolTime = best(runs: 5) {
        for _ in 0..<iterations { pool.parallelFor(maxThreads) { i in sink[i * 8] &+= 1 } }
    } / Double(iterations) * 1e6
    let gcdTime = best(runs: 5) {
        for _ in 0..<iterations { DispatchQueue.concurrentPerform(iterations: maxThreads) { i in sink[i * 8] &+= 1 } }
    } / Double(iterations) * 1e6
    print(String(format: "ComputePool(%d).parallelFor: %.2f µs   DispatchQueue.concurrentPerform: %.2f µs   ratio %.2fx",
                 maxThreads, poolTime, gcdTime, gcdTime / poolTime))
    // With real work: 2 × ~20 µs bodies.
    let work = { (i: Int) in
        var x: Float = 1
        for j in 0..<8_000 { x = x * 1.0000001 + Float(j & 1) }
        sink[i * 8] &+= Int(x.bitPattern & 1)
    }
    let serial = best(runs: 5) { for _ in 0..<500 { work(0) } } / 500 * 1e6
    let poolWork = best(runs: 5) { for _ in 0..<500 { pool.parallelFor(maxThreads, work) } } / 500 * 1e6
    let gcdWork = best(runs: 5) { for _ in 0..<500 { DispatchQueue.concurrentPerform(iterations: maxThreads, execute: work) } } / 500 * 1e6
    print(String(format: "%d bodies of %.1f µs each: pool %.1f µs, concurrentPerform %.1f µs per dispatch",
                 maxThreads, serial, poolWork, gcdWork))
}
