import Foundation
import SwiftletTensor
import SwiftletFormats

/// What one optimizer step did.
public struct StepReport: Sendable, Equatable {
    /// 1-based index of the step just taken.
    public var step: Int
    /// Mean training loss over the step's micro-batches (nats per token).
    public var loss: Float
    /// Validation loss, on the steps where it was measured.
    public var validationLoss: Float?
    public var learningRate: Float
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
    /// Training tokens per second in this step.
    public var tokensPerSecond: Double
    /// Seconds since the trainer was created or restored.
    public var elapsedSeconds: Double
}

/// Trains a Llama-architecture model from scratch on a tokenized corpus.
///
/// ```swift
/// let trainer = try Trainer(configuration: .preset("tiny"), vocabulary: .byteLevel(), text: corpus)
/// for try await report in trainer.reports() { print(report.step, report.loss) }
/// try trainer.exportGGUF(to: url)
/// ```
/// A trainer is used from one task at a time. Everything it allocates is allocated in `init`.
public final class Trainer: @unchecked Sendable {  // mutable; used by one training task at a time
    public let configuration: TrainingConfiguration
    public let vocabulary: TrainingVocabulary
    public let shape: LlamaShape
    public let dataset: TokenDataset
    public let model: LlamaTrainingModel
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    /// Optimizer steps taken.
    public private(set) var step = 0
    /// Seconds spent in clipping and the AdamW update (for the time breakdown).
    public private(set) var optimizerSeconds: Double = 0
    private var clockStart = ContinuousClock.now

    /// Tokenizes `text` with `vocabulary` and prepares a run.
    /// - Throws: ``SwiftletError/invalidArgument(_:)`` for an empty corpus, one shorter than a training
    ///   plus a validation sequence, or an invalid configuration.
    public convenience init(configuration: TrainingConfiguration, vocabulary: TrainingVocabulary, text: String,
                            pool: ComputePool = .shared) throws {
        guard !text.isEmpty else { throw SwiftletError.invalidArgument("the training corpus is empty") }
        try configuration.validate(vocabSize: vocabulary.size)
        try self.init(configuration: configuration, vocabulary: vocabulary, tokens: vocabulary.encode(text), pool: pool)
    }

    /// Prepares a run over already tokenized `tokens`; parameters are initialized from the seed.
    public init(configuration: TrainingConfiguration, vocabulary: TrainingVocabulary, tokens: [Int32],
                pool: ComputePool = .shared) throws {
        try configuration.validate(vocabSize: vocabulary.size)
        guard !tokens.isEmpty else { throw SwiftletError.invalidArgument("the training corpus is empty") }
        self.configuration = configuration
        self.vocabulary = vocabulary
        shape = configuration.shape(vocabSize: vocabulary.size)
        dataset = try TokenDataset(tokens: tokens, vocabSize: vocabulary.size, sequenceLength: configuration.sequenceLength,
                                   validationFraction: configuration.validationFraction, seed: configuration.seed)
        model = try LlamaTrainingModel(shape: shape, batch: configuration.batchSize,
                                       sequenceLength: configuration.sequenceLength, pool: pool)
        model.initializeParameters(seed: configuration.seed)
        optimizer = AdamW(parameters: model.parameters, settings: configuration.optimizer, pool: pool)
        schedule = LearningRateSchedule(peak: configuration.learningRate, minimum: configuration.minLearningRate,
                                        warmupSteps: configuration.warmupSteps, totalSteps: configuration.maxSteps)
    }

    /// Tokens consumed by one optimizer step.
    public var tokensPerStep: Int { configuration.batchSize * configuration.sequenceLength * configuration.gradientAccumulation }

    /// One optimizer step: forward and backward over the accumulated micro-batches, clipping,
    /// AdamW at the scheduled rate.
    @discardableResult
    public func trainStep() -> StepReport {
        let start = ContinuousClock.now
        let micro = configuration.gradientAccumulation
        var lossSum: Double = 0
        for _ in 0..<micro {
            dataset.nextTrainingBatch(inputs: model.inputs, targets: model.targets)
            lossSum += Double(model.forward())
            model.backward(seed: 1 / Float(micro))
        }
        let optimizerStart = ContinuousClock.now
        let norm = AdamW.clipGradients(model.parameters, maxNorm: configuration.gradientClip)
        let rate = schedule.rate(at: step)
        optimizer.update(learningRate: rate)
        model.parameters.zeroGrad()
        optimizerSeconds += Self.seconds(ContinuousClock.now - optimizerStart)
        step += 1
        let seconds = Self.seconds(ContinuousClock.now - start)
        return StepReport(step: step, loss: Float(lossSum / Double(micro)), validationLoss: nil, learningRate: rate,
                          gradientNorm: norm, tokensPerSecond: Double(tokensPerStep) / max(seconds, 1e-9),
                          elapsedSeconds: Self.seconds(ContinuousClock.now - clockStart))
    }

    /// Mean loss over the first `evaluationBatches` batches of the validation split (forward only).
    public func validationLoss() -> Float {
        var sum: Double = 0
        let batches = configuration.evaluationBatches
        for b in 0..<batches {
            dataset.validationBatch(first: b * configuration.batchSize, inputs: model.inputs, targets: model.targets)
            sum += Double(model.forward())
        }
        return Float(sum / Double(batches))
    }

    /// Runs the remaining steps up to `maxSteps`, yielding a report per step (with the validation
    /// loss every `evaluationInterval` steps and at the last). Cancelling the consuming task, or
    /// dropping the sequence, stops training after the current step.
    public func reports() -> AsyncThrowingStream<StepReport, Error> {
        AsyncThrowingStream { continuation in
            let task = Task.detached { [self] in
                while step < configuration.maxSteps {
                    if Task.isCancelled {
                        continuation.finish(throwing: CancellationError())
                        return
                    }
                    var report = trainStep()
                    let interval = configuration.evaluationInterval
                    if step == configuration.maxSteps || (interval > 0 && step % interval == 0) {
                        report.validationLoss = validationLoss()
                    }
                    continuation.yield(report)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Writes the trained model as a `llama` GGUF.
    public func exportGGUF(to url: URL, precision: ExportPrecision = .f32) throws {
        let w = try LlamaGGUF.writer(shape: shape, parameters: model.parameters, vocabulary: vocabulary,
                                     precision: precision)
        try w.write(to: url)
    }

    // MARK: - checkpoints

    /// Saves the weights, the AdamW moments, the step and the data position as a GGUF
    /// (the model's tensors plus `adamw.m.*` / `adamw.v.*` and `swiftlet.train.*` keys).
    public func saveCheckpoint(to url: URL) throws {
        var w = try LlamaGGUF.writer(shape: shape, parameters: model.parameters, vocabulary: vocabulary)
        let config = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
        w.set("swiftlet.train.configuration", .string(config))
        w.set("swiftlet.train.step", .uint64(UInt64(step)))
        w.set("swiftlet.train.optimizer_step", .uint64(UInt64(optimizer.step)))
        w.set("swiftlet.train.data_epoch", .uint64(UInt64(dataset.position.epoch)))
        w.set("swiftlet.train.data_index", .uint64(UInt64(dataset.position.index)))
        w.set("swiftlet.train.corpus_tokens", .uint64(UInt64(dataset.tokens.count)))
        w.set("swiftlet.train.corpus_hash", .uint64(Self.hash(dataset.tokens)))
        for (i, p) in optimizer.parameters.enumerated() {
            try w.addTensor(name: "adamw.m." + p.name, type: .f32, shape: [p.count],
                            data: Data(bytes: optimizer.firstMoments[i], count: p.count * 4))
            try w.addTensor(name: "adamw.v." + p.name, type: .f32, shape: [p.count],
                            data: Data(bytes: optimizer.secondMoments[i], count: p.count * 4))
        }
        try w.write(to: url)
    }

    /// Restores a checkpoint written by ``saveCheckpoint(to:)`` for the same configuration and corpus;
    /// training then continues exactly as if it had not stopped.
    public func restoreCheckpoint(from url: URL) throws {
        let file = try GGUFFile(url: url)
        let path = url.path
        guard let json = try file.stringIfPresent("swiftlet.train.configuration") else {
            throw SwiftletError.malformedFile(path: path, reason: "not a Swiftlet training checkpoint")
        }
        let saved = try JSONDecoder().decode(TrainingConfiguration.self, from: Data(json.utf8))
        guard saved == configuration else {
            throw SwiftletError.invalidArgument("\(path): the checkpoint was written with another training configuration")
        }
        guard try file.int("swiftlet.train.corpus_tokens") == dataset.tokens.count,
              file.value("swiftlet.train.corpus_hash") == .uint64(Self.hash(dataset.tokens)) else {
            throw SwiftletError.invalidArgument("\(path): the checkpoint was written for another corpus or tokenizer")
        }
        try LlamaGGUF.loadParameters(model.parameters, from: file)
        for (i, p) in optimizer.parameters.enumerated() {
            for (name, target) in [("adamw.m.", optimizer.firstMoments[i]), ("adamw.v.", optimizer.secondMoments[i])] {
                guard let info = file.tensor(named: name + p.name), info.type == .f32 else {
                    throw SwiftletError.missingTensor(name + p.name)
                }
                let bytes = file.data(for: info)
                guard bytes.count == p.count * 4 else {
                    throw SwiftletError.malformedFile(path: path, reason: "\(name + p.name) has \(bytes.count) bytes")
                }
                memcpy(target, bytes.baseAddress!, bytes.count)
            }
        }
        step = try file.int("swiftlet.train.step")
        optimizer.step = try file.int("swiftlet.train.optimizer_step")
        try dataset.seek(to: TokenDataset.Position(epoch: try file.int("swiftlet.train.data_epoch"),
                                                   index: try file.int("swiftlet.train.data_index")))
        model.parameters.zeroGrad()
        clockStart = ContinuousClock.now
    }

    /// FNV-1a over the token ids: detects resuming on another corpus.
    static func hash(_ tokens: [Int32]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for t in tokens {
            h = (h ^ UInt64(UInt32(bitPattern: t))) &* 0x100_0000_01B3
        }
        return h
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
