import Foundation
import SwiftletTensor

/// The hyper-parameters of a Llama-architecture model (what a GGUF's `llama.*` keys hold).
public struct LlamaShape: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var dim: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var ffnDim: Int
    /// Longest sequence the model is trained on (GGUF `context_length`).
    public var contextLength: Int
    public var normEpsilon: Float
    public var ropeBase: Float

    public init(vocabSize: Int, dim: Int, layerCount: Int, headCount: Int, kvHeadCount: Int, ffnDim: Int,
                contextLength: Int, normEpsilon: Float = 1e-5, ropeBase: Float = 10_000) {
        self.vocabSize = vocabSize; self.dim = dim; self.layerCount = layerCount; self.headCount = headCount
        self.kvHeadCount = kvHeadCount; self.ffnDim = ffnDim; self.contextLength = contextLength
        self.normEpsilon = normEpsilon; self.ropeBase = ropeBase
    }

    /// Width of one attention head.
    public var headDim: Int { dim / headCount }
    /// Width of the key and value projections.
    public var kvDim: Int { kvHeadCount * headDim }

    /// - Throws: ``SwiftletError/invalidArgument(_:)`` naming the first inconsistent value.
    public func validate() throws {
        func need(_ ok: Bool, _ what: String) throws {
            if !ok { throw SwiftletError.invalidArgument("model shape: \(what)") }
        }
        try need(vocabSize > 0 && vocabSize <= 1 << 20, "vocabulary size \(vocabSize) must be in 1...\(1 << 20)")
        try need(dim > 0 && dim <= 1 << 14, "width \(dim) must be in 1...\(1 << 14)")
        try need(layerCount > 0 && layerCount <= 256, "layer count \(layerCount) must be in 1...256")
        try need(headCount > 0 && dim % headCount == 0, "\(headCount) heads do not divide the width \(dim)")
        try need(headDim % 2 == 0, "head width \(headDim) must be even (RoPE pairs)")
        try need(kvHeadCount > 0 && headCount % kvHeadCount == 0,
                 "\(kvHeadCount) key/value heads do not divide the \(headCount) heads")
        try need(ffnDim > 0 && ffnDim <= 1 << 16, "feed-forward width \(ffnDim) must be in 1...\(1 << 16)")
        try need(contextLength > 0 && contextLength <= 1 << 16, "context length \(contextLength) must be in 1...\(1 << 16)")
        try need(normEpsilon > 0 && normEpsilon.isFinite, "norm epsilon must be positive")
        try need(ropeBase > 0 && ropeBase.isFinite, "RoPE base must be positive")
    }

    /// The `tiny` preset: 4 layers, width 256, 4 heads, 2 key/value heads, feed-forward 768, 256 tokens.
    public static func tiny(vocabSize: Int) -> LlamaShape {
        LlamaShape(vocabSize: vocabSize, dim: 256, layerCount: 4, headCount: 4, kvHeadCount: 2, ffnDim: 768,
                   contextLength: 256)
    }

    /// The `small` preset: 8 layers, width 512, 8 heads, 4 key/value heads, feed-forward 1536, 512 tokens.
    public static func small(vocabSize: Int) -> LlamaShape {
        LlamaShape(vocabSize: vocabSize, dim: 512, layerCount: 8, headCount: 8, kvHeadCount: 4, ffnDim: 1536,
                   contextLength: 512)
    }
}
