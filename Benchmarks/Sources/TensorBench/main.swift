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

if args.count > 2 && args[2] == "pool" {
    let pool = ComputePool.shared
    let counts = UnsafeMutablePointer<Int>.allocate(capacity: 64)
    counts.initialize(repeating: 0, count: 64)
    let body = { (i: Int, thread: Int) in
        var x: Float = 1
        for j in 0..<8_000 { x = x * 1.0000001 + Float(j & 1) }
        counts[thread * 8] += x > 0 ? 1 : 0
    }
    for _ in 0..<3 {
        counts.update(repeating: 0, count: 64)
        let t = best(runs: 1) { for _ in 0..<500 { pool.parallelFor(pool.threadCount, body) } } / 500 * 1e6
        let serial = best(runs: 1) { for _ in 0..<500 { body(0, 0) } } / 500 * 1e6
        print(String(format: "pool %.1f µs per dispatch, body %.1f µs; bodies run by thread 0: %d, thread 1: %d",
                     t, serial, counts[0], counts[8]))
    }
    exit(0)
}

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
    print(String(format: "%d bodies of %.1f µs each: pool %.1f µs, concurrentPerform %.1f µs per dispatch (ideal %.1f)",
                 maxThreads, serial, poolWork, gcdWork, serial))
    print(String(format: "overhead above ideal: pool %.1f µs, concurrentPerform %.1f µs", poolWork - serial, gcdWork - serial))
}

print("")
print("== decode-size vector kernels, ns per call (best of 5 × 20000) ==")
do {
    let n = 1536
    let x = UnsafeMutablePointer<Float>.allocate(capacity: n), y = UnsafeMutablePointer<Float>.allocate(capacity: n)
    let w = UnsafeMutablePointer<Float>.allocate(capacity: n), out = UnsafeMutablePointer<Float>.allocate(capacity: n)
    for i in 0..<n { x[i] = Float(i % 17) * 0.1 - 0.8; y[i] = Float(i % 5) * 0.3; w[i] = 1 + Float(i % 3) * 0.01 }
    var sink: Float = 0
    func time(_ name: String, _ body: () -> Void) {
        let t = best(runs: 5) { for _ in 0..<20_000 { body() } } / 20_000 * 1e9
        print(name.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: "%8.1f", t))
    }
    time("dot 1536") { sink += VectorOps.dot(x, y, count: n) }
    time("rmsNorm 1536") { VectorOps.rmsNorm(x, weight: w, count: n, eps: 1e-5, out: out) }
    time("softmax 1536") { out.update(from: x, count: n); VectorOps.softmax(out, count: n) }
    time("silu 1536") { out.update(from: x, count: n); VectorOps.silu(out, count: n) }
    time("geluTanh 1536") { out.update(from: x, count: n); VectorOps.geluTanh(out, count: n) }
    time("add 1536") { VectorOps.add(x, y, out: out, count: n) }
    time("RoPE neox 9 heads × 64") { RoPE.apply(out, heads: 9, headDim: 64, ropeDim: 64, position: 100, base: 10000, convention: .neox) }
    let table = try! RoPE.Table(ropeDim: 64, base: 10000, maxPositions: 2048)
    time("RoPE.Table neox 9 heads × 64") { table.apply(out, heads: 9, headDim: 64, position: 100, convention: .neox) }
    time("RoPE.Table interleaved 9 × 64") { table.apply(out, heads: 9, headDim: 64, position: 100, convention: .interleaved) }
    let a = UnsafeMutablePointer<Float>.allocate(capacity: 1536 * 576)
    for i in 0..<(1536 * 576) { a[i] = Float(i % 11) * 0.01 }
    for backend in ComputeBackend.allCases {
        ComputeBackend.with(backend) {
            let t = best(runs: 5) { for _ in 0..<200 { BLAS.sgemv(trans: false, m: 1536, n: 576, alpha: 1, a: a, lda: 576, x: x, beta: 0, y: out) } } / 200
            print(String(format: "sgemv 1536×576 (%@): %.1f µs, %.1f GB/s", backend.rawValue, t * 1e6, Double(1536 * 576 * 4) / t / 1e9))
        }
    }
    if sink == 12345 { print(sink) }
}

print("")
print("== one decode token's worth of dispatches: 200 × parallelFor(threads) of ~2 µs bodies ==")
do {
    let pool = ComputePool.shared
    let threads = pool.threadCount
    let sink = UnsafeMutablePointer<Float>.allocate(capacity: 64)
    sink.initialize(repeating: 0, count: 64)
    let body = { (i: Int) in
        var x: Float = 1
        for j in 0..<800 { x = x * 1.0000001 + Float(j & 1) }
        sink[i * 8] += x
    }
    let serial = best(runs: 10) { for _ in 0..<200 { for i in 0..<threads { body(i) } } } * 1e6
    let pooled = best(runs: 10) { for _ in 0..<200 { pool.parallelFor(threads, body) } } * 1e6
    let gcd = best(runs: 10) { for _ in 0..<200 { DispatchQueue.concurrentPerform(iterations: threads, execute: body) } } * 1e6
    print(String(format: "serial %.0f µs, pool %.0f µs (ideal %.0f), concurrentPerform %.0f µs",
                 serial, pooled, serial / Double(threads), gcd))
}
