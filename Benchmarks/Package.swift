// swift-tools-version: 6.1
// Swiftlet's benchmarks, a package of their own so that the library never depends on the
// benchmark harness. Run them with `Benchmarks/run.sh` (or `make bench`).
import PackageDescription

let package = Package(
    name: "SwiftletBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Swiftlet", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // package-benchmark suites (`swift package benchmark`): tracked over time with thresholds.
        .executableTarget(
            name: "TensorBenchmarks",
            dependencies: [
                .product(name: "Swiftlet", package: "Swiftlet"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/TensorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Quantized matvec/matmul per weight type, and end-to-end pp/tg/attention on the real models.
        .executableTarget(
            name: "QuantBenchmarks",
            dependencies: [.product(name: "Swiftlet", package: "Swiftlet"), .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/QuantBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ModelBenchmarks",
            dependencies: [.product(name: "Swiftlet", package: "Swiftlet"), .product(name: "SwiftletBench", package: "Swiftlet"),
                           .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/ModelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Side-by-side comparison printed as ratios (Swiftlet vs OpenBLAS called directly, SIMD
        // fallback, pool dispatch vs DispatchQueue.concurrentPerform).
        .executableTarget(
            name: "tensor-bench",
            dependencies: [.product(name: "Swiftlet", package: "Swiftlet")],
            path: "Sources/TensorBench"
        ),
        // Block-format throughput on the real models' shapes: dequantize, matvec (stream / hot, GB/s
        // against the measured read bandwidth), matmul GFLOP/s (`quant-bench --variants`).
        .executableTarget(
            name: "quant-bench",
            dependencies: [.product(name: "Swiftlet", package: "Swiftlet")],
            path: "Sources/QuantBench"
        ),
    ],
    swiftLanguageModes: [.v5]
)
