import XCTest
import Foundation
import SwiftletFormats
import SwiftletTensor
import SwiftletModels
import SwiftletTestSupport

/// Qwen3, Llama 3.x RoPE scaling (frequency factors, linear, YaRN) and Phi-3 on small random-weight
/// GGUFs written by `scripts/make_synthetic_models.py`, against llama.cpp's logits for the same
/// files (Tests/Fixtures/synthetic-models).
final class SyntheticModelTests: XCTestCase {
    static let fixture = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/synthetic-models/llama-logits.json")

    /// Writes the models once per test run (a few seconds) into a temporary folder.
    static func models() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-synthetic-\(getpid())")
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("phi3.gguf").path) { return dir }
        try Python.requireGGUFPy()
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/make_synthetic_models.py").path
        let (status, _, err) = try Python.run([script, try RealModel.smollm2.url().path, dir.path])
        guard status == 0 else { throw Python.skipOrFail("make_synthetic_models.py failed: \(err)") }
        return dir
    }

    func check(_ name: String, architecture: Architecture) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixture)) as! [String: Any]
        let model = (json["models"] as! [String: Any])[name] as! [String: Any]
        let url = try Self.models().appendingPathComponent(model["file"] as! String)
        XCTAssertEqual(try sha256(url), model["sha256"] as? String, "\(name): the script no longer writes the fixture's file")
        let ids = (model["ids"] as! [NSNumber]).map(\.int32Value)
        let positions = (model["positions"] as! [[String: Any]]).map { pos in
            ReferenceLogitsTests.Position(top: (pos["top"] as! [[NSNumber]]).map { ($0[0].intValue, $0[1].floatValue) },
                                          logSumExp: (pos["logsumexp"] as! NSNumber).floatValue)
        }
        let transformer = try Transformer.load(url: url, contextLength: 64)
        XCTAssertEqual(transformer.config.architecture, architecture)

        // One batch, as llama.cpp evaluated it, then token by token through the decode path.
        var batchKL = 0.0, decodeKL = 0.0, maxDelta: Float = 0
        try ids.withUnsafeBufferPointer { buffer in
            try transformer.evaluate(buffer, at: 0, logits: .all) { i, logits in
                batchKL += ReferenceLogitsTests.klDivergence(positions[i], logits, ourLSE: Perplexity.logSumExp(logits))
                for (id, logit) in positions[i].top { maxDelta = max(maxDelta, abs(logits[id] - logit)) }
            }
        }
        for (i, id) in ids.enumerated() {
            let logits = try transformer.decode(id, at: i)
            decodeKL += ReferenceLogitsTests.klDivergence(positions[i], logits, ourLSE: Perplexity.logSumExp(logits))
        }
        batchKL /= Double(ids.count); decodeKL /= Double(ids.count)
        print("SYNTHETIC \(name): mean KL batch \(batchKL), decode \(decodeKL), max |Δ logit| \(maxDelta)")
        XCTAssertLessThan(batchKL, 1e-6, name)
        XCTAssertLessThan(decodeKL, 1e-6, name)
        // The batch repeats llama.cpp's operations in its order: equal to the printed precision.
        XCTAssertLessThan(maxDelta, 1e-5, name)
    }

    func sha256(_ url: URL) throws -> String {
        let (status, out, err) = try Python.run(["-c", "import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())", url.path])
        guard status == 0 else { throw Python.skipOrFail("sha256: \(err)") }
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testQwen3() throws { try check("qwen3", architecture: .qwen3) }
    func testLlama3FrequencyFactors() throws { try check("llama3", architecture: .llama) }
    func testLlamaLinearScaling() throws { try check("llama-linear", architecture: .llama) }
    func testLlamaYaRN() throws { try check("llama-yarn", architecture: .llama) }
    func testPhi3() throws { try check("phi3", architecture: .phi3) }

    /// Keys and tensors the runtime does not implement are refused by name.
    func testUnimplementedMetadataIsRefused() throws {
        let source = try GGUFFile(url: Self.models().appendingPathComponent("llama-yarn.gguf"))
        func load(_ edit: (inout GGUFWriter) -> Void) throws {
            var w = try GGUFWriter(copying: source)
            edit(&w)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-edited-\(getpid()).gguf")
            defer { try? FileManager.default.removeItem(at: url) }
            try w.write(to: url)
            _ = try Transformer.load(url: url, contextLength: 16)
        }
        XCTAssertThrowsError(try load { $0.set("llama.rope.scaling.type", .string("longrope")) }) {
            XCTAssertEqual($0 as? SwiftletError, .unsupportedMetadata(key: "llama.rope.scaling.type", value: "longrope"))
        }
        XCTAssertThrowsError(try load { $0.set("llama.expert_count", .uint32(8)) }) {
            guard case .unsupportedMetadata(key: "llama.expert_count", _)? = $0 as? SwiftletError else {
                return XCTFail("\($0)")
            }
        }
    }
}
