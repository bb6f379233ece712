import Foundation
import XCTest
import SwiftletTokenizers
import SwiftletTestSupport
import SwiftletFormats

/// Token ids compared with llama.cpp's (Tests/Fixtures/reference/llama-*.json, made by
/// llama.cpp as vendored in llama-cpp-python 0.3.36 on the real GGUF files).
final class GGUFParityTests: XCTestCase {
    func checkParity(_ tokenizer: any Tokenizer, reference: String) throws {
        let ref = try Fixtures.referenceJSON(reference) as! [String: Any]
        var mismatches = 0
        for entry in ref["tokenize"] as! [[String: Any]] {
            let text = entry["text"] as! String
            let plain = (entry["ids_plain"] as! [NSNumber]).map { $0.int32Value }
            let special = (entry["ids_special"] as! [NSNumber]).map { $0.int32Value }
            let gotPlain = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            let gotSpecial = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
            if gotPlain != plain { mismatches += 1; XCTFail("plain \(reference) \(text.debugDescription):\n got \(gotPlain)\nwant \(plain)") }
            if gotSpecial != special { mismatches += 1; XCTFail("special \(reference) \(text.debugDescription):\n got \(gotSpecial)\nwant \(special)") }
            XCTAssertEqual(tokenizer.decode(plain), text, "round trip \(text.debugDescription)")
        }
        for entry in ref["prompts"] as! [[String: Any]] {
            let text = entry["prompt"] as! String
            let ids = (entry["ids"] as! [NSNumber]).map { $0.int32Value }
            let got = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
            if got != ids { XCTFail("prompt \(reference) \(text.prefix(60).debugDescription):\n got \(got)\nwant \(ids)") }
        }
    }

    func testSmolLM2MatchesLlamaCpp() throws {
        let t = try Tokenizers.load(gguf: GGUFFile(url: RealModel.smollm2.url()))
        XCTAssertTrue(t is BPETokenizer)
        try checkParity(t, reference: "llama-smollm2.json")
        XCTAssertEqual(t.endOfGenerationIDs, [0, 2])
    }

    func testGemma3MatchesLlamaCpp() throws {
        let t = try Tokenizers.load(gguf: GGUFFile(url: RealModel.gemma3.url()))
        XCTAssertTrue(t is SentencePieceTokenizer)
        try checkParity(t, reference: "llama-gemma3.json")
        XCTAssertEqual(t.endOfGenerationIDs, [1, 106])
    }

    func testQwen2MatchesLlamaCpp() throws {
        let t = try Tokenizers.load(gguf: GGUFFile(url: RealModel.qwen2.url()))
        XCTAssertTrue(t is BPETokenizer)
        try checkParity(t, reference: "llama-qwen2.json")
    }
}
