// swift-tools-version: 6.1
import Foundation
import PackageDescription

// libFuzzer targets for Swiftlet's parsers and tokenizers, kept out of the main package: the
// main package must stay free of unsafeFlags. Build and run with `scripts/fuzz.sh` (`make fuzz`).
//
// The library modules are compiled here again from the main package's sources (the symlinks
// under Sources/Library), so that they carry sanitizer coverage: libFuzzer only learns from
// code built with `-sanitize-coverage`, and SwiftPM gives a dependency's targets no flags of
// ours. scripts/fuzz.sh builds with `--sanitize=fuzzer --sanitize=address` (libFuzzer's `main`,
// AddressSanitizer and LeakSanitizer everywhere); the flags here add edge coverage and
// comparison tracing to the parser, tokenizer and quantization (imatrix) modules under test.
//
// Two modules are partial on purpose, so the fuzzer builds without the compute code: the
// `SwiftletModels` here holds only the grammar sources and the sampling parameters, and the
// `Swiftlet` here (Sources/ServerModel) the generation parameters, the output constraints and a
// `LanguageModel` stand-in (a real tokenizer and chat template, no weights). The server's request
// decoding is compiled from its own files (Sources/SwiftletFuzz/Server) against them.
//
// SWIFTLET_FUZZ_TRACE_CMP=0 (`FUZZ_TRACE_CMP=0 scripts/fuzz.sh`) builds without comparison
// tracing: still edge-guided, with every sanitizer, and cheaper per execution. It is for long
// campaigns on corpora (and dictionaries) that already hold the keywords and magic values tracing
// finds; the default build, which `make fuzz` and CI use, keeps it.

let traceComparisons = ProcessInfo.processInfo.environment["SWIFTLET_FUZZ_TRACE_CMP"] != "0"
let address: [SwiftSetting] = [.unsafeFlags(["-sanitize=address"])]
let covered: [SwiftSetting] = [.unsafeFlags([
    "-sanitize=fuzzer,address",
    "-sanitize-coverage=edge,inline-8bit-counters,pc-table" + (traceComparisons ? ",trace-cmp" : ""),
])]
let addressC: [CSetting] = [.unsafeFlags(["-fsanitize=address"])]

let package = Package(
    name: "SwiftletFuzz",
    dependencies: [.package(url: "https://github.com/apple/swift-http-types", from: "1.4.0")],
    targets: [
        .target(name: "CBLAS", path: "Sources/Library/CBLAS", cSettings: addressC,
                linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "CSwiftletKernels", path: "Sources/Library/CSwiftletKernels", cSettings: addressC),
        .target(name: "SwiftletCore", path: "Sources/Library/SwiftletCore", swiftSettings: covered),
        .target(name: "SwiftletTensor", dependencies: ["SwiftletCore", "CBLAS", "CSwiftletKernels"],
                path: "Sources/Library/SwiftletTensor", swiftSettings: address),
        .target(name: "SwiftletQuant", dependencies: ["SwiftletTensor", "CSwiftletKernels"],
                path: "Sources/Library/SwiftletQuant", swiftSettings: covered),
        .target(name: "SwiftletFormats", dependencies: ["SwiftletCore"],
                path: "Sources/Library/SwiftletFormats", swiftSettings: covered),
        .target(name: "SwiftletTokenizers", dependencies: ["SwiftletCore", "SwiftletFormats"],
                path: "Sources/Library/SwiftletTokenizers", swiftSettings: covered),
        .target(name: "SwiftletModels", dependencies: ["SwiftletCore", "SwiftletTensor", "SwiftletTokenizers"],
                path: "Sources/Library/SwiftletModels", swiftSettings: covered),
        .target(name: "Swiftlet", dependencies: ["SwiftletModels", "SwiftletTokenizers", "SwiftletFormats", "SwiftletTensor"],
                path: "Sources/ServerModel", swiftSettings: covered),
        // One binary, several targets: SWIFTLET_FUZZ_TARGET picks which input format it fuzzes.
        .executableTarget(name: "SwiftletFuzz", dependencies: [
                              "SwiftletFormats", "SwiftletQuant", "SwiftletTokenizers", "SwiftletModels", "Swiftlet",
                              .product(name: "HTTPTypes", package: "swift-http-types"),
                          ],
                          path: "Sources/SwiftletFuzz", swiftSettings: covered),
    ],
    swiftLanguageModes: [.v5]
)
