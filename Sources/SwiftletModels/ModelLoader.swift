import Foundation
import SwiftletTensor
import SwiftletFormats

extension Transformer {
    /// Builds the transformer a GGUF file describes: architecture and hyperparameters from its
    /// metadata, weights mapped strictly and read in place from the mapping.
    ///
    /// - Parameters:
    ///   - contextLength: positions of the KV cache; `nil` uses the model's trained context,
    ///     capped at 4096 to bound memory.
    public static func load(gguf file: GGUFFile, contextLength: Int? = nil, maxBatch: Int = 512,
                            cacheType: KVCacheType = .f16, pool: ComputePool = .shared) throws -> Transformer {
        var tensors: [String: WeightTensor] = [:]
        for info in file.tensors {
            let data = file.data(for: info)
            guard data.count == info.byteCount else {
                throw SwiftletError.malformedFile(path: file.url?.path ?? "<memory>", reason: "tensor \(info.name) lies outside the file")
            }
            tensors[info.name] = WeightTensor(type: info.type, shape: info.shape, data: data)
        }
        guard let embedding = file.tensor(named: "token_embd.weight"), embedding.shape.count == 2 else {
            // Name the architecture problem first when there is one.
            _ = try Architecture(gguf: file.string("general.architecture"))
            throw SwiftletError.missingTensor("token_embd.weight")
        }
        let config = try TransformerConfig(metadata: file, vocabSize: embedding.shape[1])
        let weights = try TransformerWeights(config: config, tensors: tensors, storageOwner: file)
        let context = contextLength ?? min(config.trainedContext, 4096)
        return try Transformer(config: config, weights: weights, contextLength: context, maxBatch: maxBatch, cacheType: cacheType, pool: pool)
    }

    /// Opens (memory-maps) the GGUF file at `url` and builds its transformer.
    public static func load(url: URL, contextLength: Int? = nil, maxBatch: Int = 512,
                            cacheType: KVCacheType = .f16) throws -> Transformer {
        try load(gguf: GGUFFile(url: url), contextLength: contextLength, maxBatch: maxBatch, cacheType: cacheType)
    }
}
