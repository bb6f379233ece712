import Foundation
import SwiftletTensor
import SwiftletFormats
import SwiftletModels

/// Optimizer and batching settings of a LoRA fine-tune.
public struct FineTuneConfiguration: Sendable, Equatable {
    /// Examples per step (each one sequence).
    public var batchSize = 4
    /// Tokens per sequence; longer examples are truncated.
    public var sequenceLength = 128
    public var maxSteps = 200
    public var learningRate: Float = 1e-3
    public var minLearningRate: Float = 1e-4
    public var warmupSteps = 10
    public var gradientClip: Float = 1
    /// Steps between held-out evaluations (0: only before and after training).
    public var evaluationInterval = 25
    /// Seed of the example order.
    public var seed: UInt64 = 1

    public init() {}
}

/// Trains LoRA factors on a frozen base: AdamW (no weight decay) at a warmed-up cosine schedule,
/// gradient clipping, examples reshuffled every epoch.
public final class FineTuner: @unchecked Sendable {  // mutable; used by one training task at a time
    public let configuration: FineTuneConfiguration
    public let dataset: FineTuneDataset
    public let model: LoRATrainingModel
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public private(set) var step = 0
    private var order: [Int] = []
    private var cursor = 0
    private var shuffler: SplitMix64
    private let pad: Int32
    private let clockStart = ContinuousClock.now

    /// - Throws: what ``LoRATrainingModel`` throws for the architecture, settings and geometry.
    public init(config: TransformerConfig, weights: TransformerWeights, settings: LoRASettings, dataset: FineTuneDataset,
                configuration: FineTuneConfiguration, pool: ComputePool = .shared) throws {
        guard configuration.maxSteps > 0 else { throw SwiftletError.invalidArgument("max steps \(configuration.maxSteps) must be positive") }
        let rates = [configuration.learningRate, configuration.minLearningRate]
        guard rates.allSatisfy({ $0.isFinite && $0 >= 0 }), configuration.learningRate > 0 else {
            throw SwiftletError.invalidArgument("learning rate \(configuration.learningRate) (minimum \(configuration.minLearningRate)) must be finite and positive")
        }
        self.configuration = configuration
        self.dataset = dataset
        model = try LoRATrainingModel(config: config, weights: weights, settings: settings, batch: configuration.batchSize,
                                      sequenceLength: configuration.sequenceLength, pool: pool)
        var adam = AdamW.Settings()
        adam.weightDecay = 0
        optimizer = AdamW(parameters: model.parameters, settings: adam, pool: pool)
        schedule = LearningRateSchedule(peak: configuration.learningRate, minimum: configuration.minLearningRate,
                                        warmupSteps: min(configuration.warmupSteps, configuration.maxSteps / 2),
                                        totalSteps: configuration.maxSteps)
        shuffler = SplitMix64(seed: configuration.seed)
        // Padding follows each example and is never scored; under causal attention any id gives
        // the same loss.
        pad = 0
    }

    /// Examples of one step, in a shuffled order that covers the training set each epoch.
    private func nextBatch() -> [FineTuneExample] {
        var batch: [FineTuneExample] = []
        while batch.count < configuration.batchSize {
            if cursor >= order.count {
                order = Array(dataset.training.indices)
                for i in stride(from: order.count - 1, to: 0, by: -1) {
                    order.swapAt(i, Int(shuffler.next() % UInt64(i + 1)))
                }
                cursor = 0
            }
            batch.append(dataset.training[order[cursor]])
            cursor += 1
        }
        return batch
    }

    /// One optimizer step over a batch.
    @discardableResult
    public func trainStep() -> StepReport {
        let start = ContinuousClock.now
        let batch = nextBatch()
        FineTuneDataset.fill(batch[...], batch: configuration.batchSize, sequenceLength: configuration.sequenceLength,
                             pad: pad, inputs: model.inputs, targets: model.targets)
        let loss = model.forward()
        model.backward()
        let norm = AdamW.clipGradients(model.parameters, maxNorm: configuration.gradientClip)
        let rate = schedule.rate(at: step)
        optimizer.update(learningRate: rate)
        model.parameters.zeroGrad()
        step += 1
        let seconds = Self.seconds(ContinuousClock.now - start)
        let tokens = batch.reduce(0) { $0 + min($1.tokens.count, configuration.sequenceLength) }
        return StepReport(step: step, loss: loss, validationLoss: nil, learningRate: rate, gradientNorm: norm,
                          tokensPerSecond: Double(tokens) / max(seconds, 1e-9),
                          elapsedSeconds: Self.seconds(ContinuousClock.now - clockStart))
    }

    /// Mean loss per scored token over every held-out example (forward only).
    public func heldOutLoss() -> Float {
        var total = 0.0, count = 0
        var first = 0
        let examples = dataset.heldOut
        while first < examples.count {
            let slice = examples[first ..< min(examples.count, first + configuration.batchSize)]
            FineTuneDataset.fill(slice, batch: configuration.batchSize, sequenceLength: configuration.sequenceLength,
                                 pad: pad, inputs: model.inputs, targets: model.targets)
            var scored = 0
            for i in 0..<model.targets.count where model.targets.ids[i] >= 0 { scored += 1 }
            if scored > 0 {
                total += Double(model.forward()) * Double(scored)
                count += scored
            }
            first += configuration.batchSize
        }
        return count > 0 ? Float(total / Double(count)) : .nan
    }

    /// Writes the adapter (llama.cpp's LoRA GGUF).
    public func writeAdapter(to url: URL, name: String = "swiftlet-lora") throws {
        try model.adapterWriter(name: name).write(to: url)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
