import ArgumentParser
import Foundation
import Swiftlet
import SwiftletTrain

/// `swiftlet finetune`: trains a LoRA adapter on a frozen, quantized base and writes it in
/// llama.cpp's adapter format.
struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Train a LoRA adapter on a quantized GGUF model (kept quantized) and write it as a llama.cpp adapter GGUF.")

    @Option(name: [.short, .customLong("model")], help: "Base GGUF model.")
    var m: String
    @Option(help: "Training data: UTF-8 text, or with --chat a JSONL file of {\"messages\": [...]} conversations.")
    var data: String
    @Option(name: .customLong("lora-out"), help: "Output adapter GGUF.")
    var loraOut: String
    @Flag(help: "The data is JSONL conversations; only the assistant turns are trained, through the model's chat template.")
    var chat = false
    @Option(help: "LoRA rank.")
    var rank: Int = 8
    @Option(help: "LoRA alpha (the update is scaled by alpha / rank).")
    var alpha: Float = 16
    @Option(help: "Adapted matrices: q,k,v,o,gate,up,down.")
    var targets: String = "q,k,v,o,gate,up,down"
    @Option(name: .customLong("max-steps"), help: "Optimizer steps.")
    var maxSteps: Int = 200
    @Option(help: "Sequences per step.")
    var batch: Int = 4
    @Option(name: .customLong("seq"), help: "Tokens per sequence (longer examples are truncated).")
    var seq: Int = 128
    @Option(help: "Peak learning rate.")
    var lr: Float = 1e-3
    @Option(name: .customLong("held-out"), help: "Fraction of the examples held out for evaluation.")
    var heldOut: Double = 0.1
    @Option(name: .customLong("eval-every"), help: "Steps between held-out evaluations.")
    var evalEvery: Int = 25
    @Option(help: "Seed of the initialization and the example order.")
    var seed: UInt64 = 1
    @Option(name: [.short, .customLong("threads")], help: "Threads. Default: physical cores.")
    var t: Int?

    func validate() throws {
        if maxSteps <= 0 { throw ValidationError("--max-steps must be positive") }
        if batch <= 0 || !(2...FineTuneDataset.maxSequenceLength).contains(seq) {
            throw ValidationError("--batch must be positive and --seq in 2...\(FineTuneDataset.maxSequenceLength)")
        }
        if !lr.isFinite || lr <= 0 { throw ValidationError("--lr must be finite and positive") }
        if let t, !(1...256).contains(t) { throw ValidationError("-t must be in 1...256") }
    }

    func run() throws {
        let modelURL = URL(fileURLWithPath: m)
        let file = try GGUFFile(url: modelURL)
        let transformer = try Transformer.load(gguf: file, contextLength: min(seq, 512), maxBatch: 8)
        let tokenizer = try Tokenizers.load(gguf: file)
        guard let contents = FileManager.default.contents(atPath: data) else {
            throw SwiftletError.io(path: data, reason: "cannot read the training data")
        }
        let text = String(decoding: contents, as: UTF8.self)
        let dataset = chat
            ? try FineTuneDataset.chat(jsonl: text, path: data, tokenizer: tokenizer, template: ChatTemplate(gguf: file),
                                       sequenceLength: seq, heldOutFraction: heldOut)
            : try FineTuneDataset.text(text, path: data, tokenizer: tokenizer, sequenceLength: seq, heldOutFraction: heldOut)
        let settings = LoRASettings(rank: rank, alpha: alpha, targets: try LoRASettings.targets(targets), seed: seed)
        var configuration = FineTuneConfiguration()
        configuration.batchSize = batch; configuration.sequenceLength = seq; configuration.maxSteps = maxSteps
        configuration.learningRate = lr; configuration.minLearningRate = min(lr, lr / 10)
        configuration.evaluationInterval = evalEvery; configuration.seed = seed

        // Every output is created before training starts, so a bad path fails now.
        let outURL = URL(fileURLWithPath: loraOut)
        let base = outURL.deletingPathExtension().path
        let csvURL = URL(fileURLWithPath: base + ".csv"), svgURL = URL(fileURLWithPath: base + ".loss.svg")
        for url in [outURL, csvURL, svgURL] {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw SwiftletError.io(path: url.path, reason: "cannot create the output file")
            }
        }
        let pool = t.map { ComputePool(threadCount: $0) } ?? ComputePool.shared
        let tuner = try FineTuner(config: transformer.config, weights: transformer.weights, settings: settings,
                                  dataset: dataset, configuration: configuration, pool: pool)
        let model = tuner.model
        let scoredTokens = dataset.training.reduce(0) { $0 + $1.scoredCount }
        printError("finetune: \(transformer.config.architecture.rawValue), \(transformer.config.layerCount) layers; LoRA rank \(rank), alpha \(alpha) on \(targets): \(model.parameters.count) trainable values")
        printError("finetune: \(dataset.training.count) training examples (\(scoredTokens) scored tokens), \(dataset.heldOut.count) held out\(dataset.dropped > 0 ? ", \(dataset.dropped) dropped (nothing scored after truncation)" : ""), batch \(batch)×\(seq), \(pool.threadCount) threads")

        var curve = LossCurve()
        let csv = try FileHandle(forWritingTo: csvURL)
        defer { try? csv.close() }
        csv.write(Data((LossCurve.csvHeader + "\n").utf8))
        let initial = tuner.heldOutLoss()
        curve.reference = (Double(initial), String(format: "base model %.3f", initial))
        printError(String(format: "finetune: held-out loss of the base model %.4f", initial))
        let start = Date()
        var smoothed: Double?
        var last = initial
        while tuner.step < maxSteps {
            var report = tuner.trainStep()
            if report.step == maxSteps || (evalEvery > 0 && report.step % evalEvery == 0) {
                report.validationLoss = tuner.heldOutLoss()
                last = report.validationLoss!
            }
            curve.append(report)
            csv.write(Data((LossCurve.csvLine(report) + "\n").utf8))
            smoothed = smoothed.map { 0.9 * $0 + 0.1 * report.tokensPerSecond } ?? report.tokensPerSecond
            let validation = report.validationLoss.map { String(format: "  held-out %.4f", $0) } ?? ""
            progressBar("finetune", done: report.step, total: maxSteps, since: start,
                        extra: String(format: "loss %.4f%@  lr %.2e  %.0f tok/s", report.loss, validation, report.learningRate, smoothed ?? 0))
        }
        try tuner.writeAdapter(to: outURL, name: "LoRA of " + modelURL.lastPathComponent)
        let title = "\(URL(fileURLWithPath: data).lastPathComponent): LoRA r\(rank) on \(modelURL.lastPathComponent), batch \(batch)×\(seq)"
        try curve.svg(title: title).write(to: svgURL, atomically: true, encoding: .utf8)
        printError(String(format: "finetune: held-out loss %.4f → %.4f (%.1f %% lower) in %.0f s", initial, last,
                          100 * (1 - Double(last) / Double(initial)), Date().timeIntervalSince(start)))
        let activations = model.tape.activations.reduce(0) { $0 + 8 * $1.count }
        printError(String(format: "finetune: memory: base file %.1f MiB, adapter %.2f MiB (+ optimizer %.2f MiB), activations and gradients %.1f MiB, frozen-product scratch %.1f MiB; peak RSS %.1f MiB",
                          Double(file.fileSize) / 1048576, Double(model.adapterBytes) / 1048576, Double(3 * model.adapterBytes) / 1048576,
                          Double(activations) / 1048576, Double(model.scratch.byteCount) / 1048576, Double(peakResidentBytes()) / 1048576))
        printError("finetune: wrote \(loraOut), \(csvURL.path), \(svgURL.path)")
        if let png = TrainCommand.convertToPNG(svgURL) { printError("finetune: wrote \(png)") }
    }
}

/// The process's peak resident set (VmHWM on Linux; 0 where unavailable).
func peakResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}
