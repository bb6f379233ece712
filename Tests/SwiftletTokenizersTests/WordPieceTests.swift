import Foundation
import XCTest
import SwiftletTokenizers
import SwiftletTestSupport

/// WordPiece ids compared with Hugging Face tokenizers 0.23.3 through sentence-transformers
/// (Tests/Fixtures/reference/minilm*.json; max_seq_length 256, no padding).
final class WordPieceTests: XCTestCase {
    func testMiniLMParity() throws {
        let tokenizer = try WordPieceTokenizer(directory: RealModel.minilm.url())
        for file in ["minilm.json", "minilm-truncation.json"] {
            let ref = try Fixtures.referenceJSON(file) as! [String: Any]
            let maxLength = (ref["max_seq_length"] as! NSNumber).intValue
            XCTAssertEqual(maxLength, 256)
            for item in ref["items"] as! [[String: Any]] {
                let text = item["text"] as! String
                let want = (item["ids"] as! [NSNumber]).map { $0.int32Value }
                XCTAssertEqual(tokenizer.encode(text, maxLength: maxLength), want, "\(file): \(text.prefix(60).debugDescription)")
            }
        }
    }

    func testVocabTxtMatchesTokenizerJSON() throws {
        let dir = try RealModel.minilm.url()
        let fromJSON = try WordPieceTokenizer(directory: dir)
        let fromTxt = try WordPieceTokenizer(vocabulary: String(contentsOf: dir.appendingPathComponent("vocab.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init))
        XCTAssertEqual(fromJSON.vocabularySize, fromTxt.vocabularySize)
        let ref = try Fixtures.referenceJSON("minilm.json") as! [String: Any]
        for item in ref["items"] as! [[String: Any]] {
            let text = item["text"] as! String
            XCTAssertEqual(fromTxt.encode(text, maxLength: 256), fromJSON.encode(text, maxLength: 256))
        }
        XCTAssertEqual(fromJSON.id(of: "[CLS]"), 101)
        XCTAssertEqual(fromJSON.token(102), "[SEP]")
    }
}
