// swift-tools-version: 6.1
import PackageDescription

// An app that embeds Swiftlet by path: two conversations on one model at once, and a cancelled one.
let package = Package(
    name: "ChatSessions",
    platforms: [.macOS(.v15), .iOS(.v18)],
    dependencies: [.package(name: "Swiftlet", path: "../..")],
    targets: [
        .executableTarget(name: "ChatSessions", dependencies: [.product(name: "Swiftlet", package: "Swiftlet")]),
        // The README's Swift blocks, written here by scripts/readme-examples.py: compiled, never run.
        .target(name: "ReadmeExamples", dependencies: [.product(name: "Swiftlet", package: "Swiftlet")]),
    ]
)
