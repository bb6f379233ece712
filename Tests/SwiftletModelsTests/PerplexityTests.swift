import XCTest
import Foundation
import Swiftlet
import SwiftletTestSupport

/// llama-perplexity's figures (Tests/Fixtures/reference/perplexity.json) on the GPL-3 text.
/// The text is Debian's `/usr/share/common-licenses/GPL-3`, copied verbatim into the fixtures.
final class PerplexityTests: XCTestCase {
    func check(_ model: RealModel, fileName: String) throws {
        let textURL = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/texts/GPL-3")
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
