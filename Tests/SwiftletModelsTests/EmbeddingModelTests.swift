import Foundation
import XCTest
import Swiftlet
import SwiftletTestSupport

/// The public API end to end, from raw text: tokenizer + encoder + pooling + normalization,
/// against sentence-transformers' ids and embeddings.
final class EmbeddingModelTests: XCTestCase {
    func testTextsMatchSentenceTransformers() async throws {
        let model = try await EmbeddingModel.load(RealModel.minilm.url())
        XCTAssertEqual(model.dimension, 384)
        let items = try MiniLMItem.load("minilm.json") + MiniLMItem.load("minilm-truncation.json")
        for item in items {
            XCTAssertEqual(try model.tokenize(item.text), item.ids, "ids of \(item.text.prefix(40))")
        }
        let vectors = try await model.embed(items.map(\.text))
        var worst = 1.0
        for (item, vector) in zip(items, vectors) {
            let c = cosine(vector, item.embedding)
            worst = min(worst, c)
            XCTAssertGreaterThanOrEqual(c, 0.9999, String(item.text.prefix(40)))
            var norm: Float = 0
            for v in vector { norm += v * v }
            XCTAssertEqual(norm, 1, accuracy: 1e-5, "Normalize is listed in modules.json")
        }
        print("EmbeddingModel: worst cosine to sentence-transformers over \(items.count) texts from raw text: \(worst)")
    }

    func testPairCosinesMatchReference() throws {
        let model = try EmbeddingModel(directory: RealModel.minilm.url())
        let root = try XCTUnwrap(Fixtures.referenceJSON("minilm.json") as? [String: Any])
        let pairs = try XCTUnwrap(root["pairs"] as? [[String: Any]])
        XCTAssertFalse(pairs.isEmpty)
        for pair in pairs {
            let a = try XCTUnwrap(pair["a"] as? String), b = try XCTUnwrap(pair["b"] as? String)
            let expected = try XCTUnwrap(pair["cosine"] as? NSNumber).floatValue
            let v = try model.embeddings(for: [a, b])
            XCTAssertEqual(EmbeddingModel.cosineSimilarity(v[0], v[1]), expected, accuracy: 1e-4, "\(a) / \(b)")
        }
        XCTAssertEqual(EmbeddingModel.cosineSimilarity([1, 0], [0, 2]), 0)
        XCTAssertEqual(EmbeddingModel.cosineSimilarity([1, 2], [2, 4]), 1, accuracy: 1e-6)
        XCTAssertEqual(EmbeddingModel.cosineSimilarity([1], [1, 2]), 0, "lengths differ")
    }
}
