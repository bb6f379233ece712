import Foundation
import XCTest
import SwiftletFormats
import SwiftletTensor
import SwiftletTokenizers
import SwiftletTestSupport

/// llama.cpp's own tokenizer test suite (`models/ggml-vocab-*.gguf` with `.inp` / `.out`, run by its
/// test-tokenizer-0 with add_special and parse_special off), copied into Tests/Fixtures/llamacpp-vocab
/// (the GGUFs xz-compressed): every case of all 15 vocabularies passes.
final class LlamaCppVocabTests: XCTestCase {
    static let folder = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/llamacpp-vocab")
    static let vocabularies = ["gpt-2", "llama-bpe", "llama-spm", "qwen2", "phi-3", "mpt", "starcoder", "refact", "command-r",
                               "bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "qwen35", "gemma-4"]
    /// The test texts and expected ids of one vocabulary, split as test-tokenizer-0 splits them.
    static func cases(_ name: String) throws -> [(text: String, ids: [Int32])] {
        let input = try String(contentsOf: folder.appendingPathComponent("ggml-vocab-\(name).gguf.inp"), encoding: .utf8)
        let output = try String(contentsOf: folder.appendingPathComponent("ggml-vocab-\(name).gguf.out"), encoding: .utf8)
        let separator = "\n__ggml_vocab_test__\n"
        var texts = input.components(separatedBy: separator)
        if texts.last == "" { texts.removeLast() }
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        XCTAssertEqual(lines.count, texts.count, "\(name): one line of ids per text")
        return texts.enumerated().map { i, text in
            (text, lines[i].split(separator: " ").map { Int32($0)! })
        }
    }

    /// Decompresses the vocabulary GGUFs once into a temporary folder (python3's lzma).
    static func decompressed() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-vocab-\(getpid())")
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("done").path) { return dir }
        let script = """
        import lzma, os, sys
        src, dst = sys.argv[1], sys.argv[2]
        os.makedirs(dst, exist_ok=True)
        for f in os.listdir(src):
            if f.endswith('.gguf.xz'):
                open(os.path.join(dst, f[:-3]), 'wb').write(lzma.open(os.path.join(src, f)).read())
        open(os.path.join(dst, 'done'), 'w').close()
        """
        let (status, _, err) = try Python.run(["-c", script, folder.path, dir.path])
        guard status == 0 else { throw Python.skipOrFail("decompressing the vocabularies failed: \(err)") }
        return dir
    }

    func testEveryVocabularyPassesEveryCase() throws {
        let dir = try Self.decompressed()
        var total = 0, passed = 0
        for name in Self.vocabularies {
            let tokenizer = try Tokenizers.load(gguf: GGUFFile(url: dir.appendingPathComponent("ggml-vocab-\(name).gguf")))
            var passedHere = 0
            let cases = try Self.cases(name)
            for (text, ids) in cases {
                total += 1
                let got = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
                if got == ids { passed += 1; passedHere += 1 } else { XCTFail("\(name) \(text.debugDescription):\n got \(got)\nwant \(ids)") }
            }
            print("VOCAB \(name): \(passedHere) / \(cases.count)")
        }
        print("VOCAB SUITE: \(passed) / \(total) cases of \(Self.vocabularies.count) vocabularies")
        XCTAssertEqual(total, 14 * 46 + 50)  // qwen35 has 4 more texts (combining marks)
    }

    /// The pre-tokenizer splits of the regex-stage vocabularies on texts whose splits are known
    /// from the regexes by hand (the id tests above cover them only through the merges).
    func testRegexStageSplits() throws {
        XCTAssertEqual(BPEPreTokenizer.deepseekCoder.pieces(of: "Hello world, 42!\n你好"),
                       ["Hello", " world", ",", " ", "4", "2", "!", "\n", "你好"])
        // The punctuation stage's `:-~` range holds the ASCII letters too, so it cuts them out of
        // a letter run again: llama.cpp's (and DeepSeek's) split.
        XCTAssertEqual(BPEPreTokenizer.deepseekLLM.pieces(of: "Ünïcode 123 ok.  "),
                       ["Ü", "n", "ï", "code", " ", "123", " ok", ".", "  "])
        XCTAssertEqual(BPEPreTokenizer.falcon.pieces(of: "a+=12345 <b>"),
                       ["a", "+=", "123", "45", " ", "<", "b", ">"])
        XCTAssertEqual(BPEPreTokenizer.qwen35.pieces(of: "e\u{301}te 12"), ["e\u{301}te", " ", "1", "2"])
        XCTAssertEqual(BPEPreTokenizer.gemma4.pieces(of: "a b\n\nc"), ["a b", "\n\n", "c"])
    }

    /// A tokenizer model or pre-tokenizer Swiftlet does not implement is a typed error naming it.
    func testUnknownTokenizersAreRefused() throws {
        for (model, pre, named) in [("rwkv", nil, "rwkv"), ("gpt2", "kimi-k2", "kimi-k2"), ("gpt2", "tekken", "tekken")] as [(String, String?, String)] {
            let vocabulary = TokenizerVocabulary(model: model, pre: pre, tokens: ["a", "b"], merges: ["a b"])
            XCTAssertThrowsError(try Tokenizers.load(vocabulary: vocabulary), named) {
                guard case .unsupportedTokenizer(let message)? = $0 as? SwiftletError else { return XCTFail("\(named): \($0)") }
                XCTAssertTrue(message.contains("'\(named)'"), message)
            }
        }
    }
}
