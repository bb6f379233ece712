import Foundation
import SwiftletTensor
import SwiftletFormats

/// A read-only float matrix or vector of a model: points into the file mapping (zero copy) or
/// into storage owned by the model, and keeps that memory alive.
public struct WeightBuffer: @unchecked Sendable {  // read-only memory kept alive by `owner`
    /// First element.
    public let pointer: UnsafePointer<Float>
    /// Number of elements.
    public let count: Int
    private let owner: Any

    init(_ tensor: SafetensorsFloatTensor) {
        pointer = tensor.pointer
        count = tensor.buffer.count
        owner = tensor
    }

    init(owned storage: OwnedFloats) {
        pointer = UnsafePointer(storage.pointer)
        count = storage.count
        owner = storage
    }
}

/// Heap floats owned by a model (repacked weights), 64-byte aligned.
final class OwnedFloats: @unchecked Sendable {  // written at load, read-only afterwards
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }
    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// One BERT encoder layer's parameters (PyTorch `Linear` layout: `[out, in]`).
public struct BERTLayerWeights: Sendable {
    /// Query, key and value projections stacked into one `[3·hidden, hidden]` matrix so the
    /// three projections run as one GEMM.
    public let qkvWeight: WeightBuffer
    /// Their biases, `[3·hidden]`.
    public let qkvBias: WeightBuffer
    /// Attention output projection `[hidden, hidden]` and bias.
    public let attentionOutputWeight: WeightBuffer, attentionOutputBias: WeightBuffer
    /// LayerNorm after the attention residual.
    public let attentionNormWeight: WeightBuffer, attentionNormBias: WeightBuffer
    /// Feed-forward up projection `[intermediate, hidden]` and bias.
    public let intermediateWeight: WeightBuffer, intermediateBias: WeightBuffer
    /// Feed-forward down projection `[hidden, intermediate]` and bias.
    public let outputWeight: WeightBuffer, outputBias: WeightBuffer
    /// LayerNorm after the feed-forward residual.
    public let outputNormWeight: WeightBuffer, outputNormBias: WeightBuffer
}

/// All parameters of a BERT encoder.
public struct BERTWeights: Sendable {
    /// `[vocab, hidden]`, `[maxPositions, hidden]`, `[typeVocab, hidden]`.
    public let wordEmbeddings: WeightBuffer, positionEmbeddings: WeightBuffer, tokenTypeEmbeddings: WeightBuffer
    /// LayerNorm after the embedding sum.
    public let embeddingNormWeight: WeightBuffer, embeddingNormBias: WeightBuffer
    /// The encoder layers in order.
    public let layers: [BERTLayerWeights]

    /// The Hugging Face tensor names this encoder reads, with their shapes: the one place the
    /// checkpoint layout is written down. `prefix` is `""` for `BertModel` checkpoints and
    /// `"bert."` for checkpoints saved from a task model.
    public static func tensorNames(config c: BERTConfig, prefix: String = "") -> [(name: String, shape: [Int])] {
        let h = c.hiddenSize, i = c.intermediateSize
        var names: [(String, [Int])] = [
            ("embeddings.word_embeddings.weight", [c.vocabSize, h]),
            ("embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h]),
            ("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h]),
            ("embeddings.LayerNorm.weight", [h]), ("embeddings.LayerNorm.bias", [h]),
        ]
        for l in 0..<c.numHiddenLayers {
            let p = "encoder.layer.\(l)."
            names += [
                (p + "attention.self.query.weight", [h, h]), (p + "attention.self.query.bias", [h]),
                (p + "attention.self.key.weight", [h, h]), (p + "attention.self.key.bias", [h]),
                (p + "attention.self.value.weight", [h, h]), (p + "attention.self.value.bias", [h]),
                (p + "attention.output.dense.weight", [h, h]), (p + "attention.output.dense.bias", [h]),
                (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
                (p + "intermediate.dense.weight", [i, h]), (p + "intermediate.dense.bias", [i]),
                (p + "output.dense.weight", [h, i]), (p + "output.dense.bias", [h]),
                (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h]),
            ]
        }
        return names.map { (prefix + $0.0, $0.1) }
    }

    /// Tensors a BERT checkpoint may carry that an encoder for embeddings does not use: the
    /// position-id buffer and the pooler head (sentence-transformers pools the token states).
    public static let ignoredTensorNames: Set<String> = [
        "embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias",
    ]

    /// Loads and verifies the weights: every tensor of ``tensorNames(config:prefix:)`` must be
    /// present with exactly its shape, and every other tensor of the checkpoint must be one of
    /// ``ignoredTensorNames`` (anything else means the config and checkpoint disagree).
    public init(config: BERTConfig, checkpoint: SafetensorsCheckpoint) throws {
        let present = Set(checkpoint.names)
        let prefix = present.contains("bert.embeddings.word_embeddings.weight") ? "bert." : ""
        let expected = Self.tensorNames(config: config, prefix: prefix)
        let known = Set(expected.map(\.name)).union(Self.ignoredTensorNames.map { prefix + $0 })
        if let extra = present.subtracting(known).sorted().first {
            throw SwiftletError.unexpectedTensor(extra)
        }
        var loaded: [String: WeightBuffer] = [:]
        for (name, shape) in expected {
            loaded[String(name.dropFirst(prefix.count))] = WeightBuffer(try checkpoint.floats(name, shape: shape))
        }
        try self.init(config: config, loaded: loaded)
    }

    /// Assembles the encoder from buffers keyed by the Hugging Face names of
    /// ``tensorNames(config:prefix:)`` (no prefix), all present with their shapes.
    init(config: BERTConfig, loaded: [String: WeightBuffer]) throws {
        func w(_ name: String) -> WeightBuffer { loaded[name]! }

        wordEmbeddings = w("embeddings.word_embeddings.weight")
        positionEmbeddings = w("embeddings.position_embeddings.weight")
        tokenTypeEmbeddings = w("embeddings.token_type_embeddings.weight")
        embeddingNormWeight = w("embeddings.LayerNorm.weight")
        embeddingNormBias = w("embeddings.LayerNorm.bias")
        let h = config.hiddenSize
        layers = (0..<config.numHiddenLayers).map { l in
            let p = "encoder.layer.\(l)."
            let qkv = OwnedFloats(count: 3 * h * h)
            let qkvBias = OwnedFloats(count: 3 * h)
            for (k, part) in ["query", "key", "value"].enumerated() {
                let weight = w(p + "attention.self.\(part).weight"), bias = w(p + "attention.self.\(part).bias")
                (qkv.pointer + k * h * h).update(from: weight.pointer, count: h * h)
                (qkvBias.pointer + k * h).update(from: bias.pointer, count: h)
            }
            return BERTLayerWeights(
                qkvWeight: WeightBuffer(owned: qkv), qkvBias: WeightBuffer(owned: qkvBias),
                attentionOutputWeight: w(p + "attention.output.dense.weight"), attentionOutputBias: w(p + "attention.output.dense.bias"),
                attentionNormWeight: w(p + "attention.output.LayerNorm.weight"), attentionNormBias: w(p + "attention.output.LayerNorm.bias"),
                intermediateWeight: w(p + "intermediate.dense.weight"), intermediateBias: w(p + "intermediate.dense.bias"),
                outputWeight: w(p + "output.dense.weight"), outputBias: w(p + "output.dense.bias"),
                outputNormWeight: w(p + "output.LayerNorm.weight"), outputNormBias: w(p + "output.LayerNorm.bias"))
        }
    }
}
