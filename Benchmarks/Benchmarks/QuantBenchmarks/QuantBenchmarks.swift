// package-benchmark suite for the quantized kernels: `QuantizedMatrix.matvec` (decode) and
// `matmul` (prefill GEMM) per weight type, on random weights shaped like the real models'.
// Thresholds: a p50 wall-clock regression beyond `SWIFTLET_BENCH_TOLERANCE` percent (default 10)
// fails `swift package benchmark baseline check`.
import Benchmark
import Foundation
import Swiftlet

/// One random quantized matrix with its activation, output and scratch buffers.
final class MatrixFixture: @unchecked Sendable {
    let matrix: QuantizedMatrix
    let x: UnsafeMutablePointer<Float>
    let y: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutableRawBufferPointer
    private let storage: UnsafeMutableRawBufferPointer

    init(type: GGMLType, rows: Int, cols: Int, tokens: Int) throws {
        var rng = SystemRandomNumberGenerator()
        guard let rowBytes = type.rowBytes(cols) else {
            throw SwiftletError.invalidArgument("\(cols) columns are not whole \(type) blocks")
        }
        storage = .allocate(byteCount: rowBytes * rows, alignment: 64)
        let row = UnsafeMutablePointer<Float>.allocate(capacity: cols)
        defer { row.deallocate() }
        for r in 0..<rows {
            for c in 0..<cols { row[c] = Float.random(in: -1...1, using: &rng) * 0.05 }
            try quantize(type, src: row, count: cols,
                         into: UnsafeMutableRawBufferPointer(rebasing: storage[r * rowBytes ..< (r + 1) * rowBytes]))
        }
        matrix = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: UnsafeRawBufferPointer(storage))
        x = .allocate(capacity: cols * tokens)
        for i in 0..<(cols * tokens) { x[i] = Float.random(in: -1...1, using: &rng) }
        y = .allocate(capacity: rows * tokens)
        scratch = .allocate(byteCount: max(QuantizedMatrix.activationScratchBytes(type: type, cols: cols, tokens: tokens), 64),
                            alignment: 64)
    }

    deinit { storage.deallocate(); x.deallocate(); y.deallocate(); scratch.deallocate() }
}

/// Relative p50 tolerance (percent) for regressions.
let tolerance = Double(ProcessInfo.processInfo.environment["SWIFTLET_BENCH_TOLERANCE"] ?? "") ?? 10
let thresholds: [BenchmarkMetric: BenchmarkThresholds] = [
    .wallClock: .init(relative: [.p50: tolerance]),
    .throughput: .init(relative: [.p50: tolerance]),
]
/// A short run (`SWIFTLET_BENCH_SMOKE=1`) for CI.
let smoke = ProcessInfo.processInfo.environment["SWIFTLET_BENCH_SMOKE"] == "1"

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput], warmupIterations: 2,
        maxDuration: .milliseconds(smoke ? 300 : 2000), maxIterations: smoke ? 30 : 500, thresholds: thresholds)
    let pool = ComputePool(threadCount: 2)

    // Decode shapes (rows × cols) and types as in the files: SmolLM2-135M Q4_1 (FFN 1536×576 and
    // 576×1536, Q8_0 tied unembedding 49152×576), Gemma 3 270M Q4_K_M (Q5_0 FFN up/gate 2048×640,
    // Q4_K / Q6_K FFN down 640×2048, Q8_0 tied unembedding 262144×640).
    let matvecs: [(GGMLType, String, Int, Int)] = [
        (.q4_1, "ffn_up 1536x576", 1536, 576), (.q4_1, "ffn_down 576x1536", 576, 1536),
        (.q4_0, "ffn_up 1536x576", 1536, 576), (.q8_0, "ffn_up 1536x576", 1536, 576),
        (.q8_0, "output 49152x576", 49152, 576), (.q5_0, "ffn_up 2048x640", 2048, 640),
        (.q4_K, "ffn_down 640x2048", 640, 2048), (.q6_K, "ffn_down 640x2048", 640, 2048),
    ] + (smoke ? [] : [(.q8_0, "output 262144x640", 262144, 640)])
    for (type, shape, rows, cols) in matvecs {
        Benchmark("matvec \(type) \(shape) t2",
                  closure: { benchmark, f in
                      for _ in benchmark.scaledIterations {
                          f.matrix.matvec(f.x, into: f.y, scratch: f.scratch, pool: pool)
                      }
                      blackHole(f.y[0])
                  },
                  setup: { try MatrixFixture(type: type, rows: rows, cols: cols, tokens: 1) })
    }

    // Prefill GEMM: 512 tokens through SmolLM2's FFN up and Gemma's.
    let matmuls: [(GGMLType, String, Int, Int)] = smoke
        ? [(.q4_1, "ffn_up 1536x576", 1536, 576)]
        : [(.q4_1, "ffn_up 1536x576", 1536, 576), (.q8_0, "ffn_up 1536x576", 1536, 576),
           (.q5_0, "ffn_up 2048x640", 2048, 640), (.q4_K, "ffn_down 640x2048", 640, 2048),
           (.q6_K, "ffn_down 640x2048", 640, 2048)]
    let tokens = smoke ? 128 : 512
    for (type, shape, rows, cols) in matmuls {
        Benchmark("matmul \(type) \(shape) x\(tokens) t2",
                  configuration: .init(maxIterations: smoke ? 5 : 50),
                  closure: { benchmark, f in
                      for _ in benchmark.scaledIterations {
                          f.matrix.matmul(f.x, tokens: tokens, into: f.y, scratch: f.scratch, pool: pool)
                      }
                      blackHole(f.y[0])
                  },
                  setup: { try MatrixFixture(type: type, rows: rows, cols: cols, tokens: tokens) })
    }
}
