import Foundation
import XCTest
import SwiftletTokenizers
import SwiftletTestSupport

/// Token ids compared with llama.cpp's (Tests/Fixtures/reference/llama-*.json, made by
/// llama.cpp as vendored in llama-cpp-python 0.3.36 on the real GGUF files).
final class GGUFParityTests: XCTestCase {
    static func vocabularyFromTemp(_ name: String) throws -> TokenizerVocabulary {
        let url = URL(fileURLWithPath: "/tmp/tokdata/\(name).json")
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("no temp vocabulary") }
        let d = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func i32(_ k: String) -> Int32? { (d[k] as? NSNumber).map { $0.int32Value } }
        func b(_ k: String) -> Bool? { (d[k] as? NSNumber).map { $0.boolValue } }
        return TokenizerVocabulary(
            model: d["tokenizer.ggml.model"] as! String, pre: d["tokenizer.ggml.pre"] as? String,
            tokens: d["tokenizer.ggml.tokens"] as! [String],
            scores: (d["tokenizer.ggml.scores"] as? [NSNumber])?.map { $0.floatValue } ?? [],
            tokenTypes: (d["tokenizer.ggml.token_type"] as? [NSNumber])?.map { $0.int32Value } ?? [],
            merges: d["tokenizer.ggml.merges"] as? [String] ?? [],
            bosID: i32("tokenizer.ggml.bos_token_id"), eosID: i32("tokenizer.ggml.eos_token_id"),
            unknownID: i32("tokenizer.ggml.unknown_token_id"), paddingID: i32("tokenizer.ggml.padding_token_id"),
            addBOS: b("tokenizer.ggml.add_bos_token"), addEOS: b("tokenizer.ggml.add_eos_token"),
            addSpacePrefix: b("tokenizer.ggml.add_space_prefix"), chatTemplate: d["tokenizer.chat_template"] as? String)
    }

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

    func testSmolLM2Temp() throws {
        var v = try Self.vocabularyFromTemp("smollm2")
        v.tokens = v.tokens.map { String(decoding: Array($0.utf8), as: UTF8.self) }
        v.merges = v.merges.map { String(decoding: Array($0.utf8), as: UTF8.self) }
        var t0 = Date()
        _ = try SentencePieceTokenizer(vocabulary: TokenizerVocabulary(model: "llama", tokens: v.tokens))
        print("smollm2 core only", Date().timeIntervalSince(t0))
        t0 = Date()
        let t = try BPETokenizer(vocabulary: v)
        print("smollm2 construct", Date().timeIntervalSince(t0))
        try checkParity(t, reference: "llama-smollm2.json")
    }

    func testGemma3Temp() throws {
        let v = try Self.vocabularyFromTemp("gemma3")
        let t0 = Date()
        let t = try SentencePieceTokenizer(vocabulary: v)
        print("gemma construct", Date().timeIntervalSince(t0))
        try checkParity(t, reference: "llama-gemma3.json")
    }
}
