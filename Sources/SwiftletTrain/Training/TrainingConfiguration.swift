import Foundation
import SwiftletTensor

/// Everything that determines a training run besides the corpus and the tokenizer. Encoded as JSON
/// for `swiftlet train --config FILE` (missing keys take the defaults, which are the `tiny` preset).
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    // Model (the vocabulary size comes from the tokenizer).
    public var dim = 256
    public var layerCount = 4
    public var headCount = 4
    public var kvHeadCount = 2
    public var ffnDim = 768
    public var normEpsilon: Float = 1e-5
    public var ropeBase: Float = 10_000
    // Batches.
    public var sequenceLength = 256
    public var batchSize = 8
    /// Micro-batches whose gradients are averaged into one optimizer step.
    public var gradientAccumulation = 1
    // Optimization.
    public var maxSteps = 1000
    public var learningRate: Float = 1e-3
    public var minLearningRate: Float = 1e-4
    public var warmupSteps = 50
    public var optimizer = AdamW.Settings()
    /// Global gradient-norm ceiling (0: no clipping).
    public var gradientClip: Float = 1
    // Data and evaluation.
    public var seed: UInt64 = 1
    public var validationFraction = 0.1
    /// Steps between validation losses (0: only at the end).
    public var evaluationInterval = 50
    /// Batches averaged for one validation loss.
    public var evaluationBatches = 4

    public init() {}

    /// `tiny` (4 layers, d=256, 4 heads, 2 KV heads, ffn 768, seq 256) or `small` (8 layers, d=512,
    /// 8 heads, 4 KV heads, ffn 1536, seq 512).
    public static func preset(_ name: String) throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        switch name {
        case "tiny": break
        case "small":
            c.dim = 512; c.layerCount = 8; c.headCount = 8; c.kvHeadCount = 4; c.ffnDim = 1536
            c.sequenceLength = 512; c.batchSize = 4; c.learningRate = 6e-4; c.minLearningRate = 6e-5
        default: throw SwiftletError.invalidArgument("unknown preset '\(name)' (tiny, small)")
        }
        return c
    }

    /// The model shape for a vocabulary of `vocabSize` tokens.
    public func shape(vocabSize: Int) -> LlamaShape {
        LlamaShape(vocabSize: vocabSize, dim: dim, layerCount: layerCount, headCount: headCount,
                   kvHeadCount: kvHeadCount, ffnDim: ffnDim, contextLength: sequenceLength,
                   normEpsilon: normEpsilon, ropeBase: ropeBase)
    }

    /// - Throws: ``SwiftletError/invalidArgument(_:)`` naming the first bad value.
    public func validate(vocabSize: Int) throws {
        try shape(vocabSize: vocabSize).validate()
        func need(_ ok: Bool, _ what: String) throws {
            if !ok { throw SwiftletError.invalidArgument("training configuration: \(what)") }
        }
        try need(batchSize > 0 && batchSize <= 4096, "batch size \(batchSize) must be in 1...4096")
        try need(gradientAccumulation > 0 && gradientAccumulation <= 4096, "gradient accumulation must be in 1...4096")
        try need(maxSteps > 0, "max steps must be positive")
        try need(learningRate > 0 && learningRate.isFinite && minLearningRate >= 0 && minLearningRate <= learningRate,
                 "learning rates (peak \(learningRate), minimum \(minLearningRate))")
        try need(warmupSteps >= 0, "warm-up steps must not be negative")
        try need(gradientClip >= 0, "gradient clip must not be negative")
        try need(validationFraction > 0 && validationFraction < 1, "validation fraction must be in (0, 1)")
        try need(evaluationInterval >= 0 && evaluationBatches > 0, "evaluation interval and batches")
        let s = optimizer
        try need(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1 && s.epsilon > 0 && s.weightDecay >= 0,
                 "AdamW settings")
    }

    enum CodingKeys: String, CodingKey {
        case dim, layerCount, headCount, kvHeadCount, ffnDim, normEpsilon, ropeBase, sequenceLength, batchSize
        case gradientAccumulation, maxSteps, learningRate, minLearningRate, warmupSteps, optimizer, gradientClip
        case seed, validationFraction, evaluationInterval, evaluationBatches, preset
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self = try c.decodeIfPresent(String.self, forKey: .preset).map(TrainingConfiguration.preset) ?? TrainingConfiguration()
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        try read(.dim, &dim); try read(.layerCount, &layerCount); try read(.headCount, &headCount)
        try read(.kvHeadCount, &kvHeadCount); try read(.ffnDim, &ffnDim); try read(.normEpsilon, &normEpsilon)
        try read(.ropeBase, &ropeBase); try read(.sequenceLength, &sequenceLength); try read(.batchSize, &batchSize)
        try read(.gradientAccumulation, &gradientAccumulation); try read(.maxSteps, &maxSteps)
        try read(.learningRate, &learningRate); try read(.minLearningRate, &minLearningRate)
        try read(.warmupSteps, &warmupSteps); try read(.optimizer, &optimizer); try read(.gradientClip, &gradientClip)
        try read(.seed, &seed); try read(.validationFraction, &validationFraction)
        try read(.evaluationInterval, &evaluationInterval); try read(.evaluationBatches, &evaluationBatches)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dim, forKey: .dim); try c.encode(layerCount, forKey: .layerCount)
        try c.encode(headCount, forKey: .headCount); try c.encode(kvHeadCount, forKey: .kvHeadCount)
        try c.encode(ffnDim, forKey: .ffnDim); try c.encode(normEpsilon, forKey: .normEpsilon)
        try c.encode(ropeBase, forKey: .ropeBase); try c.encode(sequenceLength, forKey: .sequenceLength)
        try c.encode(batchSize, forKey: .batchSize); try c.encode(gradientAccumulation, forKey: .gradientAccumulation)
        try c.encode(maxSteps, forKey: .maxSteps); try c.encode(learningRate, forKey: .learningRate)
        try c.encode(minLearningRate, forKey: .minLearningRate); try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(optimizer, forKey: .optimizer); try c.encode(gradientClip, forKey: .gradientClip)
        try c.encode(seed, forKey: .seed); try c.encode(validationFraction, forKey: .validationFraction)
        try c.encode(evaluationInterval, forKey: .evaluationInterval); try c.encode(evaluationBatches, forKey: .evaluationBatches)
    }
}
