import Foundation
import XCTest
import SwiftletFormats
import SwiftletTensor
import SwiftletTokenizers
import SwiftletTestSupport

/// llama.cpp's own tokenizer test suite (`models/ggml-vocab-*.gguf` with `.inp` / `.out`, run by its
/// test-tokenizer-0 with add_special and parse_special off), copied into Tests/Fixtures/llamacpp-vocab
/// (the GGUFs xz-compressed). Every case of the vocabularies Swiftlet supports passes; the others are
/// refused with an error naming what is missing.
final class LlamaCppVocabTests: XCTestCase {
    static let folder = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/llamacpp-vocab")
    static let supported = ["gpt-2", "llama-bpe", "llama-spm", "qwen2", "phi-3", "mpt", "starcoder", "refact", "command-r"]

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
    static func vocabularies() throws -> URL {
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

    func testSupportedVocabulariesPassEveryCase() throws {
        let dir = try Self.vocabularies()
        var total = 0, passed = 0
        for name in Self.supported {
            let tokenizer = try Tokenizers.load(gguf: GGUFFile(url: dir.appendingPathComponent("ggml-vocab-\(name).gguf")))
            for (text, ids) in try Self.cases(name) {
                total += 1
                let got = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
                if got == ids { passed += 1 } else { XCTFail("\(name) \(text.debugDescription):\n got \(got)\nwant \(ids)") }
            }
        }
        print("VOCAB SUITE: \(passed) / \(total) cases of \(Self.supported.count) vocabularies")
        XCTAssertEqual(total, 9 * 46)
    }

    /// The vocabularies of the suite Swiftlet does not implement yet: a typed error that names the
    /// tokenizer model or pre-tokenizer, never wrong ids.
    func testUnsupportedVocabulariesAreRefused() throws {
        let unsupported: [(suite: String, model: String, pre: String?, named: String)] = [
            ("bert-bge", "bert", nil, "bert"), ("gemma-4", "gemma4", nil, "gemma4"),
            ("deepseek-coder", "gpt2", "deepseek-coder", "deepseek-coder"),
            ("deepseek-llm", "gpt2", "deepseek-llm", "deepseek-llm"),
            ("falcon", "gpt2", "falcon", "falcon"), ("qwen35", "gpt2", "qwen35", "qwen35"),
        ]
        for v in unsupported {
            XCTAssertFalse(try Self.cases(v.suite).isEmpty)
            let vocabulary = TokenizerVocabulary(model: v.model, pre: v.pre, tokens: ["a", "b"], merges: ["a b"])
            XCTAssertThrowsError(try Tokenizers.load(vocabulary: vocabulary), v.suite) {
                guard case .unsupportedTokenizer(let message)? = $0 as? SwiftletError else { return XCTFail("\(v.suite): \($0)") }
                XCTAssertTrue(message.contains("'\(v.named)'"), message)
            }
        }
    }
}
