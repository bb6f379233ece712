import Foundation
import XCTest
import SwiftletTokenizers
import SwiftletFormats
import SwiftletTensor
import SwiftletTestSupport

final class ChatAndStreamingTests: XCTestCase {
    func referencePrompt(_ file: String, containing marker: String) throws -> (text: String, ids: [Int32]) {
        let ref = try Fixtures.referenceJSON(file) as! [String: Any]
        let entry = (ref["prompts"] as! [[String: Any]]).first { ($0["prompt"] as! String).hasPrefix(marker) }!
        return (entry["prompt"] as! String, (entry["ids"] as! [NSNumber]).map { $0.int32Value })
    }

    /// Gemma 3's GGUF has no chat template: the default comes from the architecture, and one user
    /// turn renders to the reference prompt, whose ids llama.cpp produced.
    func testGemmaChatTemplateRendersReferencePrompt() throws {
        let file = try GGUFFile(url: RealModel.gemma3.url())
        let template = try ChatTemplate(gguf: file)
        XCTAssertEqual(template.source, ChatTemplate.gemmaTemplate)
        let reference = try referencePrompt("llama-gemma3.json", containing: "<start_of_turn>")
        let prompt = try template.render(messages: [.user("Write a haiku about the sea.")], addGenerationPrompt: true)
        XCTAssertEqual(prompt, reference.text)
        let tokenizer = try Tokenizers.load(gguf: file)
        XCTAssertEqual(tokenizer.encode(prompt, addSpecial: true, parseSpecial: true), reference.ids)
    }

    /// Multi-turn Gemma rendering, worked out by hand from Gemma 3's Hugging Face template:
    /// the system text prefixes the first user turn, contents are trimmed, assistant is "model".
    func testGemmaMultiTurnFollowsTheTemplate() throws {
        let template = try ChatTemplate(template: ChatTemplate.defaultTemplate(architecture: "gemma3"))
        let text = try template.render(messages: [.system("Be brief."), .user("Hi"), .assistant(" Hello! "), .user("Bye")],
                                       addGenerationPrompt: true)
        XCTAssertEqual(text, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            + "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
        XCTAssertThrowsError(try template.render(messages: [.assistant("x")], addGenerationPrompt: false))
    }

    /// SmolLM2's template (from its GGUF) inserts its default system message before the turn.
    func testSmolLM2ChatTemplate() throws {
        let file = try GGUFFile(url: RealModel.smollm2.url())
        let template = try ChatTemplate(gguf: file)
        let reference = try referencePrompt("llama-smollm2.json", containing: "<|im_start|>")
        let prompt = try template.render(messages: [.user("What is the boiling point of water?")], addGenerationPrompt: true)
        let system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
        XCTAssertEqual(prompt, "<|im_start|>system\n\(system)<|im_end|>\n" + reference.text)
        let withSystem = try template.render(messages: [.system("S"), .user("What is the boiling point of water?")],
                                             addGenerationPrompt: true)
        XCTAssertEqual(withSystem, "<|im_start|>system\nS<|im_end|>\n" + reference.text)
    }

    func testUnknownTemplateAndPreTokenizerAreErrors() {
        XCTAssertThrowsError(try ChatTemplate(template: "{% for m in messages %}[[{{ m.content }}]]{% endfo %}"))
        XCTAssertThrowsError(try BPETokenizer(vocabulary: TokenizerVocabulary(model: "gpt2", pre: "mystery", tokens: ["a"]))) {
            guard case SwiftletError.unsupportedTokenizer = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Tokenizers.load(vocabulary: TokenizerVocabulary(model: "rwkv", tokens: ["a"])))
    }

    /// Streaming the reference ids reproduces the text, and no chunk ends inside a character.
    func testStreamingDetokenizerNeverSplitsCharacters() throws {
        for (model, file) in [(RealModel.gemma3, "llama-gemma3.json"), (.smollm2, "llama-smollm2.json")] {
            let tokenizer = try Tokenizers.load(gguf: GGUFFile(url: model.url()))
            let ref = try Fixtures.referenceJSON(file) as! [String: Any]
            for entry in ref["tokenize"] as! [[String: Any]] {
                let text = entry["text"] as! String
                var stream = StreamingDetokenizer(tokenizer: tokenizer)
                var out = ""
                for id in (entry["ids_plain"] as! [NSNumber]).map({ $0.int32Value }) {
                    let chunk = stream.append(id)
                    XCTAssertFalse(chunk.unicodeScalars.contains("\u{FFFD}"), "\(file) \(text.debugDescription)")
                    out += chunk
                }
                out += stream.finish()
                XCTAssertEqual(out, text)
            }
        }
    }
}

final class TokenizerInputValidationTests: XCTestCase {
    /// Malformed vocabularies are errors, not traps.
    func testMalformedVocabulariesThrow() {
        XCTAssertThrowsError(try SentencePieceTokenizer(vocabulary: TokenizerVocabulary(model: "llama", tokens: [])))
        XCTAssertThrowsError(try SentencePieceTokenizer(vocabulary: TokenizerVocabulary(model: "llama", tokens: ["a", "b"], bosID: 7)))
        XCTAssertThrowsError(try SentencePieceTokenizer(vocabulary: TokenizerVocabulary(model: "llama", tokens: ["a", "b"], scores: [1])))
        XCTAssertThrowsError(try SentencePieceTokenizer(vocabulary: TokenizerVocabulary(model: "llama", tokens: ["a"], tokenTypes: [1, 1])))
        XCTAssertThrowsError(try BPETokenizer(vocabulary: TokenizerVocabulary(model: "gpt2", pre: "gpt2", tokens: ["a", "b", "ab"], merges: ["ab"])))
        XCTAssertThrowsError(try BPETokenizer(vocabulary: TokenizerVocabulary(model: "gpt2", tokens: ["a"])))  // no pre
    }

    /// Ids outside the vocabulary decode to nothing instead of reading out of bounds.
    func testOutOfRangeIdsDecodeToNothing() throws {
        let t = try SentencePieceTokenizer(vocabulary: TokenizerVocabulary(
            model: "llama", tokens: ["<unk>", "▁a"], tokenTypes: [2, 1], addSpacePrefix: false))
        XCTAssertEqual(t.decode([-1, 1, 99]), " a")
    }

    /// With add_space_prefix, encoding adds "▁" in front and decoding drops it again (llama.cpp).
    func testSpacePrefixRoundTrip() throws {
        let t = try SentencePieceTokenizer(vocabulary: TokenizerVocabulary(
            model: "llama", tokens: ["<unk>", "▁a", "▁b", "▁"], scores: [0, -1, -1, -2], tokenTypes: [2, 1, 1, 1]))
        XCTAssertEqual(t.encode("a b", addSpecial: false, parseSpecial: false), [1, 2])
        XCTAssertEqual(t.decode([1, 2]), "a b")
        var stream = StreamingDetokenizer(tokenizer: t)
        XCTAssertEqual(stream.append(1) + stream.append(2) + stream.finish(), "a b")
    }
}
