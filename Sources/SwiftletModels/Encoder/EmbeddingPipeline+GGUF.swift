import Foundation
import SwiftletTensor
import SwiftletFormats

extension EmbeddingPipelineConfig {
    /// The pipeline llama.cpp runs on a `bert` GGUF file: pooling from `bert.pooling_type`
    /// (1 mean, 2 CLS; mean when absent), L2 normalization (as `llama-embedding` normalizes by
    /// default), truncation at `bert.context_length`.
    public init(gguf: GGUFFile) throws {
        let pooling: PoolingMode
        switch try gguf.intIfPresent("bert.pooling_type") ?? 1 {
        case 1: pooling = .mean
        case 2: pooling = .cls
        case let other:
            throw SwiftletError.unsupportedArchitecture("bert.pooling_type \(other)", supported: ["1 (mean)", "2 (cls)"])
        }
        self.init(pooling: PoolingConfig(modes: [pooling]), normalize: true, maxSequenceLength: nil)
    }
}

extension EmbeddingPipeline {
    /// Loads the encoder and pipeline of a `bert` GGUF file (as `swiftlet convert` or llama.cpp's
    /// converter writes it).
    public convenience init(gguf: GGUFFile) throws {
        let config = try BERTConfig(gguf: gguf)
        let encoder = try BERTEncoder(config: config, weights: BERTWeights(config: config, gguf: gguf))
        try self.init(encoder: encoder, config: EmbeddingPipelineConfig(gguf: gguf))
    }
}
