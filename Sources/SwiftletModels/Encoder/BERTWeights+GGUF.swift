import Foundation
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats

extension BERTConfig {
    /// The hyper-parameters of a GGUF file with `general.architecture` = `bert` (llama.cpp's
    /// keys: `bert.block_count`, `bert.embedding_length`, …).
    public init(gguf: GGUFFile) throws {
        guard gguf.architecture == "bert" else {
            throw SwiftletError.unsupportedArchitecture(gguf.architecture ?? "(none)", supported: ["bert"])
        }
        self.init()
        hiddenSize = try gguf.int("bert.embedding_length")
        numHiddenLayers = try gguf.int("bert.block_count")
        numAttentionHeads = try gguf.int("bert.attention.head_count")
        intermediateSize = try gguf.int("bert.feed_forward_length")
        maxPositionEmbeddings = try gguf.int("bert.context_length")
        layerNormEps = try gguf.float("bert.attention.layer_norm_epsilon")
        guard let embedding = gguf.tensor(named: "token_embd.weight"), embedding.shape.count == 2,
              let types = gguf.tensor(named: "token_types.weight"), types.shape.count == 2 else {
            throw SwiftletError.missingTensor("token_embd.weight / token_types.weight (2-D)")
        }
        vocabSize = embedding.shape[1]
        typeVocabSize = types.shape[1]
        padTokenId = try gguf.intIfPresent("tokenizer.ggml.padding_token_id") ?? 0
        try validate(path: gguf.url?.path ?? "GGUF")
    }
}

extension BERTWeights {
    /// llama.cpp's tensor names of a `bert` GGUF file for each Hugging Face name this encoder reads.
    static func ggufName(_ huggingFaceName: String) -> String {
        let global = ["embeddings.word_embeddings": "token_embd", "embeddings.position_embeddings": "position_embd",
                      "embeddings.token_type_embeddings": "token_types", "embeddings.LayerNorm": "token_embd_norm"]
        let local = ["attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
                     "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
                     "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"]
        let suffix = huggingFaceName.hasSuffix(".bias") ? ".bias" : ".weight"
        let base = String(huggingFaceName.dropLast(suffix.count))
        if let g = global[base] { return g + suffix }
        let parts = base.split(separator: ".", maxSplits: 3).map(String.init)  // encoder, layer, N, rest
        return "blk.\(parts[2]).\(local[parts[3]]!)\(suffix)"
    }

    /// Loads the weights of a `bert` GGUF file (F32, F16, BF16 or quantized tensors, dequantized
    /// to F32 once): every tensor the encoder needs must be present with its shape, and every
    /// other tensor of the file is rejected (the file and the config disagree).
    public init(config: BERTConfig, gguf: GGUFFile) throws {
        let expected = Self.tensorNames(config: config)
        let known = Set(expected.map { Self.ggufName($0.name) })
        if let extra = gguf.tensors.map(\.name).filter({ !known.contains($0) }).sorted().first {
            throw SwiftletError.unexpectedTensor(extra)
        }
        var loaded: [String: WeightBuffer] = [:]
        for (name, shape) in expected {
            let ggufName = Self.ggufName(name)
            guard let info = gguf.tensor(named: ggufName) else { throw SwiftletError.missingTensor(ggufName) }
            guard info.shape == Array(shape.reversed()) else {
                throw SwiftletError.shapeMismatch(op: "load \(ggufName)", detail: "expected \(Array(shape.reversed())), file has \(info.shape)")
            }
            let storage = OwnedFloats(count: info.elementCount)
            try dequantize(info.type, src: gguf.data(for: info), count: info.elementCount, into: storage.pointer)
            loaded[name] = WeightBuffer(owned: storage)
        }
        try self.init(config: config, loaded: loaded)
    }
}
