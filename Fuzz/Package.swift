// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for Swiftlet's file parsers, kept out of the main package: they only link
// under `--sanitize=fuzzer` (libFuzzer supplies `main`), and the main package stays free of
// sanitizer flags. Build and run with `scripts/fuzz.sh`.
let package = Package(
    name: "SwiftletFuzz",
    dependencies: [.package(name: "Swiftlet", path: "..")],
    targets: [
        .executableTarget(name: "SwiftletFuzzGGUF", dependencies: [
            .product(name: "SwiftletFormats", package: "Swiftlet"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
