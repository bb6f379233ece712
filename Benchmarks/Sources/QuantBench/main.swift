// quant-bench: throughput of SwiftletQuant's block formats on the real models' weight shapes.
//
//   swift run -c release --package-path Benchmarks quant-bench [--variants] [--rounds N]
//
// Prints, per weight type found in SmolLM2-135M Q4_1 and Gemma 3 270M Q4_K_M (from
// SWIFTLET_MODELS_DIR, default ../Models/cache):
//   - dequantize: GB/s of quantized weights read (1 thread, Swift reference path);
//   - matvec stream: every matrix of the type once per pass, as decode does (weights from memory),
//     GB/s of weights at 1 and 2 threads, against the machine's streaming-read bandwidth measured
//     in the same run;
//   - matvec hot: one real shape repeatedly (weights in cache): the kernel's own speed;
//   - matmul: 64 tokens (prefill), GFLOP/s.
// `--variants` repeats the matvec figures for every kernel variant the CPU runs.
import Foundation
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor

let arguments = CommandLine.arguments
let allVariants = arguments.contains("--variants")
let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 5

let modelsDir = ProcessInfo.processInfo.environment["SWIFTLET_MODELS_DIR"]
    ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../Models/cache").standardized.path
let models = [
    ("SmolLM2-135M Q4_1", "smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("Gemma 3 270M Q4_K_M", "gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf"),
]

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Best of `rounds` wall-clock runs of `body`, in nanoseconds.
func best(_ body: () -> Void) -> Double {
    var b = Double.infinity
    for _ in 0..<rounds {
        let t0 = now()
        body()
        b = min(b, Double(now() - t0))
    }
    return b
}

/// Streaming-read bandwidth of this machine right now (256 MiB, summed with `threads` threads).
func readBandwidth(threads: Int) -> Double {
    let count = 64 << 20
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 1, count: count)
    let pool = ComputePool(threadCount: threads)
    var sink = [Float](repeating: 0, count: 64)
    let t = best {
        sink.withUnsafeMutableBufferPointer { s in
            pool.parallelFor(64) { c in
                let base = buffer + c * (count / 64)
                var acc = SIMD16<Float>()
                var i = 0
                while i < count / 64 {
                    acc += UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<Float>.self)
                    i += 16
                }
                s[c] = acc.sum()
            }
        }
    }
    return Double(count * 4) / t
}

print("quant-bench — kernel variant: \(QuantKernel.best), CPU variants: \(QuantKernel.supported.map(\.description).joined(separator: ", "))")
let bw1 = readBandwidth(threads: 1), bw2 = readBandwidth(threads: 2)
print(String(format: "memory streaming read: %.1f GB/s (1 thread), %.1f GB/s (2 threads)", bw1, bw2))

for (label, path) in models {
    let url = URL(fileURLWithPath: modelsDir).appendingPathComponent(path)
    guard let gguf = try? GGUFFile(url: url) else {
        print("\(label): not found at \(url.path), skipped")
        continue
    }
    print("\n\(label)")
    var byType: [GGMLType: [QuantizedMatrix]] = [:]
    for info in gguf.tensors where info.shape.count == 2 && info.type != .f32 {
        if let m = try? QuantizedMatrix(type: info.type, rows: info.rowCount, cols: info.rowLength, data: gguf.data(for: info)) {
            byType[info.type, default: []].append(m)
        }
    }
    for (type, mats) in byType.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
        let bytes = mats.reduce(0) { $0 + $1.data.count }
        let maxCols = mats.map(\.cols).max()!, maxRows = mats.map(\.rows).max()!
        let tokens = 64
        let x = (0..<(maxCols * tokens)).map { Float(sin(Double($0) * 0.37)) }
        var y = [Float](repeating: 0, count: maxRows * tokens)
        var scratch = [UInt8](repeating: 0, count: QuantizedMatrix.activationScratchBytes(type: type, cols: maxCols, tokens: tokens))
        // The hot shape: the largest matrix under 4 MB (a layer weight), else the largest.
        let hot = mats.filter { $0.data.count < 4 << 20 }.max { $0.data.count < $1.data.count } ?? mats[0]
        print(String(format: "  %@: %d matrices, %.1f MB; hot shape %dx%d (%.2f MB)", type.description, mats.count,
                     Double(bytes) / 1e6, hot.rows, hot.cols, Double(hot.data.count) / 1e6))

        // Dequantize (reference path, 1 thread) over the hot matrix.
        let deqBuffer = UnsafeMutablePointer<Float>.allocate(capacity: hot.rows * hot.cols)
        let tDeq = best { for r in 0..<hot.rows { hot.dequantizeRow(r, into: deqBuffer + r * hot.cols) } }
        deqBuffer.deallocate()
        print(String(format: "    dequantize            %6.2f GB/s", Double(hot.data.count) / tDeq))

        for kernel in allVariants ? QuantKernel.supported.reversed() : [QuantKernel.best] {
            for threads in [1, 2] {
                let pool = ComputePool(threadCount: threads)
                let tStream = best {
                    scratch.withUnsafeMutableBytes { s in
                        for var m in mats { m.kernel = kernel; m.matvec(x, into: &y, scratch: s, pool: pool) }
                    }
                }
                var m = hot
                m.kernel = kernel
                let reps = max(1, (64 << 20) / hot.data.count)
                let tHot = best {
                    scratch.withUnsafeMutableBytes { s in for _ in 0..<reps { m.matvec(x, into: &y, scratch: s, pool: pool) } }
                }
                let tMM = best {
                    scratch.withUnsafeMutableBytes { s in m.matmul(x, tokens: tokens, into: &y, scratch: s, pool: pool) }
                }
                let bw = threads == 1 ? bw1 : bw2
                print(String(format: "    %-10@ %d thread%@  matvec stream %6.2f GB/s (%3.0f%% of read bandwidth)   hot %6.2f GB/s   matmul %5.1f GFLOP/s (%.1f µs/matvec hot)",
                             kernel.description, threads, threads == 1 ? " " : "s", Double(bytes) / tStream,
                             100 * Double(bytes) / tStream / bw, Double(hot.data.count * reps) / tHot,
                             2 * Double(hot.rows * hot.cols * tokens) / tMM, tHot / Double(reps) / 1000))
            }
        }
    }
}
