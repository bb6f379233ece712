import Foundation
import XCTest
import SwiftletTensor
import SwiftletFormats
import SwiftletTestSupport
@testable import SwiftletModels

/// Reference items of `minilm.json` / `minilm-truncation.json` (sentence-transformers 6.2.0).
struct MiniLMItem {
    var text: String
    var ids: [Int32]
    var embedding: [Float]

    static func load(_ name: String) throws -> [MiniLMItem] {
        let root = try XCTUnwrap(Fixtures.referenceJSON(name) as? [String: Any])
        let items = try XCTUnwrap(root["items"] as? [[String: Any]])
        return try items.map {
            MiniLMItem(text: try XCTUnwrap($0["text"] as? String),
                       ids: try XCTUnwrap($0["ids"] as? [NSNumber]).map { Int32(truncating: $0) },
                       embedding: try XCTUnwrap($0["embedding"] as? [NSNumber]).map { Float(truncating: $0) })
        }
    }
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for i in a.indices { dot += Double(a[i]) * Double(b[i]); na += Double(a[i] * a[i]); nb += Double(b[i] * b[i]) }
    return dot / (na.squareRoot() * nb.squareRoot())
}

/// A small BERT with random weights, written as a Hugging Face folder.
enum TinyBERT {
    static let config: BERTConfig = {
        var c = BERTConfig()
        c.vocabSize = 50; c.hiddenSize = 32; c.numHiddenLayers = 2; c.numAttentionHeads = 4
        c.intermediateSize = 48; c.maxPositionEmbeddings = 24; c.layerNormEps = 1e-5
        return c
    }()

    /// Writes `config.json` and `model.safetensors`; `edit` may change the tensor list first.
    static func write(to dir: URL, edit: (inout [SafetensorsWriter.Tensor]) -> Void = { _ in }) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: 7)
        var tensors = BERTWeights.tensorNames(config: config).map { name, shape in
            let count = shape.reduce(1, *)
            let isNormWeight = name.hasSuffix("LayerNorm.weight")
            let values = (0..<count).map { _ in isNormWeight ? 1 + 0.1 * rng.nextSigned() : 0.5 * rng.nextSigned() }
            return SafetensorsWriter.Tensor(name: name, shape: shape, values: values)
        }
        tensors.append(.init(name: "embeddings.position_ids", dtype: .i64, shape: [1, 1], bytes: [UInt8](repeating: 0, count: 8)))
        edit(&tensors)
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        let json = """
        {"model_type":"bert","vocab_size":50,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,
         "intermediate_size":48,"max_position_embeddings":24,"layer_norm_eps":1e-5,"hidden_act":"gelu"}
        """
        try Data(json.utf8).write(to: dir.appendingPathComponent("config.json"))
    }
}

extension SplitMix64 {
    /// Uniform in [-1, 1).
    mutating func nextSigned() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}

/// Config and weights of a BERT folder, without the fast encoder.
func loadBERT(_ dir: URL) throws -> (BERTConfig, BERTWeights) {
    let config = try HFConfig.load(BERTConfig.self, from: dir.appendingPathComponent("config.json"))
    try config.validate()
    return (config, try BERTWeights(config: config, checkpoint: SafetensorsCheckpoint(directory: dir)))
}

final class BERTTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-bert-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// The scalar oracle itself reproduces sentence-transformers on short texts.
    func testReferencePathMatchesSentenceTransformers() throws {
        let modelDir = try RealModel.minilm.url()
        let (config, weights) = try loadBERT(modelDir)
        let items = try MiniLMItem.load("minilm.json").filter { $0.ids.count <= 12 }
        XCTAssertGreaterThanOrEqual(items.count, 3)
        let pooling = PoolingConfig(modes: [.mean])
        for item in items {
            var states = try BERTReference.hiddenStates(config: config, weights: weights, ids: item.ids)
            var pooled = [Float](repeating: 0, count: 384)
            states.withUnsafeMutableBufferPointer { s in
                pooling.pool(states: s.baseAddress!, tokens: item.ids.count, hidden: 384, out: &pooled)
            }
            XCTAssertGreaterThanOrEqual(cosine(pooled, item.embedding), 0.9999, item.text)
        }
    }

    /// The packed, batched fast path agrees with the scalar oracle sequence by sequence.
    func testPackedBatchMatchesReference() throws {
        try TinyBERT.write(to: dir)
        let encoder = try BERTEncoder(directory: dir)
        var rng = SplitMix64(seed: 11)
        let lengths = [5, 1, 24, 3, 17, 2]
        let batch = lengths.map { n in (0..<n).map { _ in Int32(rng.next() % 50) } }
        let ws = BERTWorkspace()
        try encoder.forward(batch, workspace: ws)
        for (s, ids) in batch.enumerated() {
            let expected = try BERTReference.hiddenStates(config: encoder.config, weights: encoder.weights, ids: ids)
            let first = ws.rowOffsets[s]
            XCTAssertEqual(ws.rowOffsets[s + 1] - first, ids.count)
            var worst: Float = 0
            for k in expected.indices { worst = max(worst, abs(ws.hidden[first * 32 + k] - expected[k])) }
            XCTAssertLessThan(worst, 2e-4, "sequence \(s) of length \(ids.count)")
        }
        XCTAssertThrowsError(try encoder.forward([[1, 2], Array(repeating: 1, count: 25)], workspace: ws)) {
            XCTAssertEqual($0 as? SwiftletError, .contextOverflow(requested: 25, limit: 24))
        }
        XCTAssertThrowsError(try encoder.forward([[1, 50]], workspace: ws))
        XCTAssertThrowsError(try encoder.forward([[]], workspace: ws))
    }

    /// Every reference text, run together in mixed-length batches, matches sentence-transformers.
    func testMiniLMEmbeddingsMatchSentenceTransformers() throws {
        let pipeline = try EmbeddingPipeline(directory: RealModel.minilm.url())
        XCTAssertEqual(pipeline.dimension, 384)
        XCTAssertEqual(pipeline.maxSequenceLength, 256)
        let items = try MiniLMItem.load("minilm.json") + MiniLMItem.load("minilm-truncation.json")
        let batched = try pipeline.embed(tokenized: items.map(\.ids), batchSize: 8)
        var worst = 1.0
        for (item, embedding) in zip(items, batched) {
            let c = cosine(embedding, item.embedding)
            worst = min(worst, c)
            XCTAssertGreaterThanOrEqual(c, 0.9999, item.text)
        }
        print("MiniLM: worst cosine to sentence-transformers over \(items.count) texts: \(worst)")
        // Batch composition must not change a result (no padding leaks into attention or pooling).
        let alone = try pipeline.embed(tokenized: Array(items.map(\.ids).prefix(4)), batchSize: 1)
        for (a, b) in zip(alone, batched) {
            XCTAssertGreaterThan(cosine(a, b), 0.999999)
        }
    }

    func testTruncationKeepsFinalSeparator() throws {
        let pipeline = try EmbeddingPipeline(directory: RealModel.minilm.url())
        let long = [Int32(101)] + Array(repeating: 1000, count: 300) + [102]
        let cut = pipeline.truncated(long)
        XCTAssertEqual(cut.count, 256)
        XCTAssertEqual(cut.first, 101)
        XCTAssertEqual(cut.last, 102)
        XCTAssertEqual(pipeline.truncated([101, 7, 102]), [101, 7, 102])
    }

    func testStrictWeightMapping() throws {
        try TinyBERT.write(to: dir)
        XCTAssertNoThrow(try loadBERT(dir))

        try TinyBERT.write(to: dir) { $0.append(.init(name: "cls.predictions.bias", shape: [50], values: .init(repeating: 0, count: 50))) }
        XCTAssertThrowsError(try loadBERT(dir)) { XCTAssertEqual($0 as? SwiftletError, .unexpectedTensor("cls.predictions.bias")) }

        try TinyBERT.write(to: dir) { $0.removeAll { $0.name == "encoder.layer.1.output.dense.bias" } }
        XCTAssertThrowsError(try loadBERT(dir)) { XCTAssertEqual($0 as? SwiftletError, .missingTensor("encoder.layer.1.output.dense.bias")) }

        try TinyBERT.write(to: dir) { tensors in
            let i = tensors.firstIndex { $0.name == "encoder.layer.0.intermediate.dense.weight" }!
            tensors[i] = .init(name: tensors[i].name, shape: [32, 48], values: .init(repeating: 0, count: 48 * 32))
        }
        XCTAssertThrowsError(try loadBERT(dir)) {
            guard case .shapeMismatch? = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
    }

    func testPoolingModes() throws {
        // Three tokens of width 2; expected values computed by hand.
        let states: [Float] = [1, -2, 3, 4, -5, 0.5]
        let config = PoolingConfig(modes: [.cls, .max, .mean, .meanSqrtLen])
        var out = [Float](repeating: .nan, count: 8)
        config.pool(states: states, tokens: 3, hidden: 2, out: &out)
        let s3 = Float(3).squareRoot()
        let expected: [Float] = [1, -2, 3, 4, -1.0 / 3, 2.5 / 3, -1 / s3, 2.5 / s3]
        for (a, b) in zip(out, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }

        let json = #"{"word_embedding_dimension": 2, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#
        XCTAssertEqual(try JSONDecoder().decode(PoolingConfig.self, from: Data(json.utf8)).modes, [.cls])
        let weighted = #"{"pooling_mode_weightedmean_tokens": true}"#
        XCTAssertThrowsError(try JSONDecoder().decode(PoolingConfig.self, from: Data(weighted.utf8)))

        var v: [Float] = [3, 4]
        L2Normalize.apply(&v, count: 2)
        XCTAssertEqual(v, [0.6, 0.8])
    }

    func testPipelineConfigOfMiniLM() throws {
        let config = try EmbeddingPipelineConfig(directory: RealModel.minilm.url())
        XCTAssertEqual(config.pooling.modes, [.mean])
        XCTAssertTrue(config.normalize, "modules.json lists Normalize although its folder is absent")
        XCTAssertEqual(config.maxSequenceLength, 256)
    }
}
