import Foundation
import XCTest
import Swiftlet
import SwiftletTestSupport

/// Texts that used to cost the WordPiece tokenizer quadratic time or a whole-text pass: the
/// cost must be linear, and `encode` must stop at the length it keeps. (The bars of issue 13,
/// measured with the CLI on 400 kB and 10 MB, are in the README; these bounds are loose so the
/// tests stay reliable on a busy machine, yet far below the old cost.)
final class HostileTokenizerTests: XCTestCase {
    private func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// 400 kB of `hello [SEP] `: each special-token match used to copy the rest of the text
    /// (12-13 s, ×4 per doubling).
    func testManySpecialTokensTokenizeInLinearTime() throws {
        let tokenizer = try WordPieceTokenizer(directory: RealModel.minilm.url())
        let text = String(repeating: "hello [SEP] ", count: 400_000 / 12)
        var ids: [Int32] = []
        let time = seconds { ids = tokenizer.tokenize(text) }
        XCTAssertEqual(ids.count, 2 * (400_000 / 12))
        XCTAssertEqual(Array(ids.prefix(4)), [7592, tokenizer.sepID, 7592, tokenizer.sepID])
        XCTAssertLessThan(time, 2, "400 kB of special tokens")
    }

    /// `encode` keeps 256 tokens of a 4 MB text: it must not tokenize the rest.
    func testEncodeStopsAtTheMaximumLength() throws {
        let tokenizer = try WordPieceTokenizer(directory: RealModel.minilm.url())
        let words = ["hello", "wörld", "[SEP]", "Grüße", "中文", "naïve", "don't", "Привет"]
        var text = ""
        var i = 0
        while text.utf8.count < 4_000_000 { text += words[i % words.count] + (i % 7 == 0 ? "\n" : " "); i += 1 }
        let full = tokenizer.tokenize(String(text.prefix(10_000)))
        var ids: [Int32] = []
        let time = seconds { ids = tokenizer.encode(text, maxLength: 256) }
        XCTAssertEqual(ids, [tokenizer.clsID] + full.prefix(254) + [tokenizer.sepID])
        XCTAssertLessThan(time, 0.5, "encode(maxLength: 256) of 4 MB")
        // Every length gives a prefix of the full tokenization.
        for length in [2, 3, 10, 77, 254] {
            XCTAssertEqual(tokenizer.encode(text, maxLength: length), [tokenizer.clsID] + full.prefix(length - 2) + [tokenizer.sepID])
        }
    }

    /// Tokenizing in pieces gives the ids of tokenizing whole: pieces end before an ASCII space
    /// or punctuation, including where combining marks, CJK and long words sit on the cut.
    func testPiecewiseTokenizationMatchesWholeText() throws {
        let tokenizer = try WordPieceTokenizer(directory: RealModel.minilm.url())
        var text = ""
        let parts = ["e\u{301}\u{308}", "!\u{301}", "中文字", "Å", String(repeating: "x", count: 700), "ǅ", "\u{0}", " \u{A0}",
                     "[SEP]", "[SE", "P]", "\t", "İstanbul", "ﬁ", "𝒳", "🎉"]
        var i = 0
        while text.utf8.count < 100_000 { text += parts[(i * 7) % parts.count] + (i % 3 == 0 ? " " : ""); i += 1 }
        let whole = tokenizer.tokenize(text)
        // The same text tokenized word by word through the public API (no piece cutting).
        var reference: [Int32] = []
        for segment in text.components(separatedBy: "[SEP]").enumerated() {
            if segment.offset > 0 { reference.append(tokenizer.sepID) }
            for word in segment.element.split(separator: " ", omittingEmptySubsequences: true) {
                reference += tokenizer.tokenize(String(word), limit: .max)
            }
        }
        XCTAssertEqual(whole, reference)
    }

    /// Gemma's user-defined whitespace tokens (runs of 1 to 31 spaces, of newlines, of tabs): in
    /// a long run every byte starts a match of each length, which once cost 7.7 s and 1.1 GB per
    /// MB of spaces. The ids equal llama-tokenize's on mixed runs, and a megabyte of spaces stays
    /// far from the old cost.
    func testWhitespaceRunsMatchLlamaCppInLinearTime() throws {
        let tokenizer = try Tokenizers.load(gguf: GGUFFile(url: RealModel.gemma3.url()))
        let fixtures = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/gemma-whitespace")
        let text = try String(contentsOf: fixtures.appendingPathComponent("whitespace.txt"), encoding: .utf8)
        let expected = try JSONDecoder().decode([Int32].self, from: Data(contentsOf: fixtures.appendingPathComponent("llama-tokenize.json")))
        XCTAssertEqual(tokenizer.encode(text, addSpecial: true, parseSpecial: false), expected)
        for run in [" ", "\n", "\t"] {
            var ids: [Int32] = []
            let time = seconds { ids = tokenizer.encode(String(repeating: run, count: 1_000_000), addSpecial: false, parseSpecial: false) }
            XCTAssertEqual(ids.count, 1_000_000 / 31 + 1, "a megabyte of \(run.debugDescription) in runs of 31")
            XCTAssertLessThan(time, 4, "a megabyte of \(run.debugDescription)")
        }
    }
}
