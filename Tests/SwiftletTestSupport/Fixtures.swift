import Foundation
import XCTest

/// Locates the reference fixtures (copied from the shared reference set, see
/// `Tests/Fixtures/reference/SOURCE.md`) and the real models fetched by `Models/fetch.py`.
public enum Fixtures {
    /// The package root, derived from this file's location.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures/reference/NAME`.
    public static func reference(_ name: String) -> URL {
        packageRoot.appendingPathComponent("Tests/Fixtures/reference").appendingPathComponent(name)
    }

    /// Parsed JSON of a reference fixture.
    public static func referenceJSON(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: reference(name)))
    }
}

/// The real models of `Models/catalog.json`.
public enum RealModel: String, CaseIterable, Sendable {
    case smollm2 = "smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf"
    case gemma3 = "gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf"
    case minilm = "all-minilm-l6-v2"
    case qwen2 = "qwen2.5-coder-0.5b-instruct-q4_k_m/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

    /// The model's path under `SWIFTLET_MODELS_DIR` (default `Models/cache`).
    ///
    /// When the model is missing the test is skipped, unless `SWIFTLET_REQUIRE_MODELS=1`
    /// (set in CI), where a missing model fails the test instead.
    public func url() throws -> URL {
        let env = ProcessInfo.processInfo.environment
        let base = env["SWIFTLET_MODELS_DIR"].map { URL(fileURLWithPath: $0) }
            ?? Fixtures.packageRoot.appendingPathComponent("Models/cache")
        let url = base.appendingPathComponent(rawValue)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        if env["SWIFTLET_REQUIRE_MODELS"] == "1" {
            throw MissingModel(path: url.path)
        }
        throw XCTSkip("model not fetched: \(url.path) (run `python3 Models/fetch.py`)")
    }

    public struct MissingModel: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "required model missing: \(path) (SWIFTLET_REQUIRE_MODELS=1)" }
    }
}
