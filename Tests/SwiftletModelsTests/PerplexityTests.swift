import XCTest
import Foundation
import Swiftlet
import SwiftletTestSupport

/// llama-perplexity's figures (Tests/Fixtures/reference/perplexity.json) on the GPL-3 text.
/// Minutes on a 2-core machine, so opt-in: `SWIFTLET_SLOW_TESTS=1`.
final class PerplexityTests: XCTestCase {
    func check(_ model: RealModel, fileName: String) throws {
        guard ProcessInfo.processInfo.environment["SWIFTLET_SLOW_TESTS"] == "1" else {
            throw XCTSkip("perplexity runs take minutes; set SWIFTLET_SLOW_TESTS=1")
        }
        let textURL = URL(fileURLWithPath: "/usr/share/common-licenses/GPL-3")
        guard FileManager.default.fileExists(atPath: textURL.path) else { throw XCTSkip("no \(textURL.path)") }
        let json = try Fixtures.referenceJSON("perplexity.json") as! [String: Any]
        let reference = (json["results"] as! [[String: Any]]).first { ($0["model"] as! String) == fileName }!
        let nCtx = (reference["n_ctx"] as! NSNumber).intValue
        let expected = (reference["ppl"] as! NSNumber).doubleValue
        let lm = try LanguageModel(url: model.url(), contextLength: nCtx)
        let result = try lm.perplexity(text: String(contentsOf: textURL, encoding: .utf8), contextSize: nCtx)
        print("PERPLEXITY \(fileName) c=\(nCtx): \(result.perplexity) (llama.cpp \(expected)), \(result.chunkCount) chunks")
        XCTAssertEqual(result.chunkCount, (reference["chunks"] as! NSNumber).intValue)
        XCTAssertEqual(result.perplexity, expected, accuracy: expected * 0.005)
    }

    func testSmolLM2() throws { try check(.smollm2, fileName: "SmolLM2-135M-Instruct.Q4_1.gguf") }
    func testGemma3() throws { try check(.gemma3, fileName: "gemma-3-270m-q4_k_m.gguf") }
}
