import Foundation
import SwiftletTensor
import SwiftletFormats

extension Transformer {
    /// The context a model file gets when none is asked for: its trained context, at most this.
    public static let defaultContextLimit = 4096

    /// Builds the transformer a GGUF file describes: architecture and hyperparameters from its
    /// metadata, weights mapped strictly and read in place from the mapping.
    ///
    /// - Parameters:
    ///   - contextLength: positions of the KV cache, at most the model's trained context; `nil`
    ///     uses the trained context capped at ``defaultContextLimit`` to bound memory.
    ///   - cacheType, valueCacheType, flashAttention, attentionRotation: the KV cache's key and
    ///     value types, the attention kind and the rotation of quantized caches, as
    ///     ``init(config:weights:contextLength:maxBatch:cacheType:valueCacheType:flashAttention:attentionRotation:cacheBudget:pool:)``.
    ///   - cacheBudget: the memory limit of the KV caches (``KVCacheBudget``).
    public static func load(gguf file: GGUFFile, contextLength: Int? = nil, maxBatch: Int = 512,
                            cacheType: KVCacheType = .f16, valueCacheType: KVCacheType? = nil, flashAttention: Bool = false,
                            attentionRotation: Bool = KVCache.rotationDefault, cacheBudget: KVCacheBudget = .shared,
                            pool: ComputePool = .shared) throws -> Transformer {
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
        // As llama.cpp: the embedding has one row per token of the vocabulary, no more, no fewer
        // (ids beyond the tokenizer would decode to nothing).
        if let tokens = try file.arrayIfPresent("tokenizer.ggml.tokens"), tokens.count != embedding.shape[1] {
            throw SwiftletError.malformedFile(
                path: file.url?.path ?? "<memory>",
                reason: "token_embd.weight has \(embedding.shape[1]) rows but the tokenizer has \(tokens.count) tokens")
        }
        let config = try TransformerConfig(metadata: file, vocabSize: embedding.shape[1])
        let weights = try TransformerWeights(config: config, tensors: tensors, storageOwner: file)
        let context = contextLength ?? min(config.trainedContext, defaultContextLimit)
        guard context <= config.trainedContext else {
            throw SwiftletError.invalidArgument("context length \(context) exceeds the \(config.trainedContext) positions the model was trained for")
        }
        return try Transformer(config: config, weights: weights, contextLength: context, maxBatch: maxBatch, cacheType: cacheType,
                               valueCacheType: valueCacheType, flashAttention: flashAttention,
                               attentionRotation: attentionRotation, cacheBudget: cacheBudget, pool: pool)
    }

    /// Opens (memory-maps) the GGUF file at `url` and builds its transformer.
    public static func load(url: URL, contextLength: Int? = nil, maxBatch: Int = 512,
                            cacheType: KVCacheType = .f16, valueCacheType: KVCacheType? = nil,
                            flashAttention: Bool = false) throws -> Transformer {
        try load(gguf: GGUFFile(url: url), contextLength: contextLength, maxBatch: maxBatch, cacheType: cacheType,
                 valueCacheType: valueCacheType, flashAttention: flashAttention)
    }
}
