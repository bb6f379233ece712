// swift-tools-version: 6.1
import PackageDescription

// The module graph points one way (see README "Architecture"):
// SwiftletCore (errors, GGMLType, TokenID) -> SwiftletFormats -> SwiftletTokenizers   (no kernels: the fuzzer's parsers)
// CBLAS, CSwiftletKernels, SwiftletCore -> SwiftletTensor -> SwiftletQuant
//   -> SwiftletModels (on Formats, Tokenizers too) -> Swiftlet -> SwiftletCLI
//   (SwiftletTrain sits beside SwiftletModels, on the modules up to SwiftletTokenizers; only the CLI uses it)
// No unsafeFlags anywhere: the package must stay usable as a dependency.
let package = Package(
    name: "Swiftlet",
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        .library(name: "Swiftlet", targets: ["Swiftlet"]),
        .library(name: "SwiftletFormats", targets: ["SwiftletFormats"]), // also used by Fuzz/
        .library(name: "SwiftletTrain", targets: ["SwiftletTrain"]),
        // llama-bench-compatible benchmarking, for the CLI and Benchmarks/ (not part of `Swiftlet`).
        .library(name: "SwiftletBench", targets: ["SwiftletBench"]),
        // The OpenAI-compatible HTTP server behind `swiftlet serve` (Hummingbird; not part of `Swiftlet`).
        .library(name: "SwiftletServer", targets: ["SwiftletServer"]),
        .executable(name: "swiftlet", targets: ["SwiftletCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // OpenBLAS is loaded at run time (dlopen) so Swiftlet can choose its core type first;
        // on Apple platforms Accelerate is used instead. See Sources/CBLAS/include/swiftlet_cblas.h.
        .target(name: "CBLAS", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "CSwiftletKernels"),
        .target(name: "SwiftletCore"),
        .target(name: "SwiftletTensor", dependencies: ["SwiftletCore", "CBLAS", "CSwiftletKernels"]),
        .target(name: "SwiftletQuant", dependencies: ["SwiftletCore", "SwiftletTensor", "CSwiftletKernels"]),
        .target(name: "SwiftletFormats", dependencies: ["SwiftletCore"]),
        .target(name: "SwiftletTokenizers", dependencies: ["SwiftletCore", "SwiftletFormats"]),
        .target(name: "SwiftletModels", dependencies: ["SwiftletTensor", "SwiftletQuant", "SwiftletFormats", "SwiftletTokenizers", "CSwiftletKernels"]),
        .target(name: "SwiftletTrain", dependencies: ["SwiftletTensor", "SwiftletQuant", "SwiftletFormats", "SwiftletTokenizers", "SwiftletModels"]),
        .target(name: "Swiftlet", dependencies: ["SwiftletTensor", "SwiftletQuant", "SwiftletFormats", "SwiftletTokenizers", "SwiftletModels"]),
        .target(name: "SwiftletBench", dependencies: ["Swiftlet"]),
        .target(name: "SwiftletServer", dependencies: [
            "Swiftlet",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "SwiftletCLI", dependencies: [
            "SwiftletBench", "SwiftletServer",
            "Swiftlet", "SwiftletTrain",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fixed workloads of the regression gate (scripts/bench-gate.sh); no product of its own.
        .target(name: "CSwiftletGateRegion"),
        .executableTarget(name: "SwiftletGateWorkloads", dependencies: ["Swiftlet", "SwiftletBench", "CSwiftletKernels", "CSwiftletGateRegion"]),

        // Shared by the test targets: locating the real models and the reference fixtures.
        .target(name: "SwiftletTestSupport", dependencies: ["SwiftletTensor"], path: "Tests/SwiftletTestSupport"),
        .testTarget(name: "SwiftletTensorTests", dependencies: ["SwiftletTensor", "SwiftletTestSupport"]),
        .testTarget(name: "SwiftletQuantTests", dependencies: ["SwiftletQuant", "SwiftletFormats", "Swiftlet", "SwiftletTestSupport"]),
        .testTarget(name: "SwiftletFormatsTests", dependencies: ["SwiftletFormats", "SwiftletQuant", "SwiftletTestSupport"]),
        .testTarget(name: "SwiftletTokenizersTests", dependencies: ["SwiftletTokenizers", "SwiftletFormats", "SwiftletTestSupport"]),
        .testTarget(name: "SwiftletTrainTests", dependencies: ["SwiftletTrain", "SwiftletModels", "SwiftletTestSupport"]),
        .testTarget(name: "SwiftletModelsTests", dependencies: ["SwiftletModels", "Swiftlet", "SwiftletBench", "SwiftletTestSupport", "CSwiftletKernels"]),
        // Hostile model files, texts and options (issue 13): typed errors and bounded costs.
        // The real server on a loopback port, driven by real HTTP clients (issue 17).
        .testTarget(name: "SwiftletServerTests", dependencies: [
            "SwiftletServer", "Swiftlet", "SwiftletTestSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "SwiftletHostileTests", dependencies: ["Swiftlet", "SwiftletBench", "SwiftletCLI", "SwiftletTestSupport"],
                    path: "Tests/Hostile"),
        // The `swiftlet` binary's contract: exit codes, stdout/stderr, JSON output, flag names.
        .testTarget(name: "SwiftletCLITests", dependencies: ["Swiftlet", "SwiftletCLI", "SwiftletTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
