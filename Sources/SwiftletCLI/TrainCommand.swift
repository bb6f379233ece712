import ArgumentParser
import Foundation
import Swiftlet
import SwiftletTrain

/// `swiftlet train`: trains a Llama-architecture model from scratch on a text file and exports a GGUF.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a small Llama-architecture model from scratch on a text file and export it as GGUF.")

    @Option(help: "Training configuration (JSON; keys of TrainingConfiguration, optional \"preset\").")
    var config: String?
    @Option(help: "Model preset: tiny (4 layers, d=256) or small (8 layers, d=512).")
    var preset: String?
    @Option(help: "Training text (UTF-8).")
    var data: String
    @Option(help: "Output GGUF file.")
    var out: String
    @Option(help: "Take the tokenizer (and its vocabulary) from this GGUF model.")
    var tokenizer: String?
    @Flag(help: "Byte-level vocabulary (256 byte tokens + <|endoftext|>); the default without --tokenizer.")
    var byteLevel = false
    @Option(help: "Optimizer steps (0: export the initialized model without training).")
    var maxSteps: Int?
    @Option(help: "Sequences per micro-batch.")
    var batch: Int?
    @Option(help: "Tokens per sequence.")
    var seq: Int?
    @Option(help: "Peak learning rate.")
    var lr: Float?
    @Option(help: "Resume from a checkpoint written by an earlier run with the same configuration and data.")
    var resume: String?
    @Option(name: [.short, .customLong("threads")], help: "Threads. Default: physical cores.")
    var t: Int?
    @Option(help: "Weight type of the exported GGUF: f32 or f16.")
    var outtype: String = "f32"
    @Flag(help: "Time every op and print where the time went at the end.")
    var profile = false
    @Option(help: "Steps between checkpoints (written to OUT.ckpt.gguf; 0: only at the end).")
    var checkpointEvery: Int = 200

    func validate() throws {
        if config != nil && preset != nil { throw ValidationError("give --config or --preset, not both") }
        if tokenizer != nil && byteLevel { throw ValidationError("give --tokenizer or --byte-level, not both") }
        if let t, !(1...256).contains(t) { throw ValidationError("-t must be in 1...256") }
        if ExportPrecision(rawValue: outtype) == nil { throw ValidationError("--outtype must be f32 or f16") }
        if let maxSteps, maxSteps < 0 { throw ValidationError("--max-steps must not be negative") }
        if checkpointEvery < 0 { throw ValidationError("--checkpoint-every must not be negative") }
    }

    func run() throws {
        var configuration: TrainingConfiguration
        if let config {
            let bytes = try readFile(config, what: "configuration")
            do { configuration = try JSONDecoder().decode(TrainingConfiguration.self, from: bytes) } catch {
                throw SwiftletError.invalidArgument("\(config): not a valid training configuration (\(error))")
            }
        } else {
            configuration = try TrainingConfiguration.preset(preset ?? "tiny")
        }
        let exportInitialWeights = maxSteps == 0
        if let maxSteps, maxSteps > 0 { configuration.maxSteps = maxSteps }
        if let batch { configuration.batchSize = batch }
        if let seq { configuration.sequenceLength = seq }
        if let lr { configuration.learningRate = lr; configuration.minLearningRate = min(configuration.minLearningRate, lr) }
        if configuration.warmupSteps >= configuration.maxSteps { configuration.warmupSteps = configuration.maxSteps / 10 }

        let vocabulary = try tokenizer.map { try TrainingVocabulary(gguf: GGUFFile(url: URL(fileURLWithPath: $0))) }
            ?? TrainingVocabulary.byteLevel()
        try configuration.validate(vocabSize: vocabulary.size)
        let text = String(decoding: try readFile(data, what: "training text"), as: UTF8.self)
        guard !text.isEmpty else { throw SwiftletError.invalidArgument("\(data): the training text is empty") }

        // Every output is created before training starts, so a bad path fails now, not in an hour.
        let outURL = URL(fileURLWithPath: out)
        let base = outURL.deletingPathExtension().path
        let csvURL = URL(fileURLWithPath: base + ".csv"), svgURL = URL(fileURLWithPath: base + ".loss.svg")
        let checkpointURL = URL(fileURLWithPath: base + ".ckpt.gguf")
        for url in [outURL, csvURL, svgURL, checkpointURL] {
            // Opened without truncating: the checkpoint may be the one being resumed.
            let fd = open(url.path, O_WRONLY | O_CREAT, 0o644)
            guard fd >= 0 else {
                throw SwiftletError.io(path: url.path, reason: "cannot create the output file (\(String(cString: strerror(errno))))")
            }
            close(fd)
        }

        let pool = t.map { ComputePool(threadCount: $0) } ?? ComputePool.shared
        let trainer = try Trainer(configuration: configuration, vocabulary: vocabulary, text: text, pool: pool)
        if let resume { try trainer.restoreCheckpoint(from: URL(fileURLWithPath: resume)) }
        let shape = trainer.shape
        if exportInitialWeights {
            try trainer.exportGGUF(to: outURL, precision: ExportPrecision(rawValue: outtype)!)
            printError("train: wrote the initialized model to \(out)")
            return
        }
        let parameterCount = trainer.model.parameters.count
        printError("train: \(shape.layerCount) layers, d=\(shape.dim), \(shape.headCount) heads (\(shape.kvHeadCount) KV), ffn \(shape.ffnDim), vocab \(shape.vocabSize): \(parameterCount) parameters")
        printError(String(format: "train: %d tokens (%d training windows, %d validation), unigram entropy %.3f nats, %d threads",
                          trainer.dataset.tokens.count, trainer.dataset.trainingWindowCount,
                          trainer.dataset.validationWindowCount, trainer.dataset.unigramEntropy, pool.threadCount))

        if profile { trainer.model.tape.enableProfiling() }
        var curve = LossCurve()
        curve.reference = (trainer.dataset.unigramEntropy, String(format: "unigram entropy %.2f", trainer.dataset.unigramEntropy))
        let csv = try FileHandle(forWritingTo: csvURL)
        defer { try? csv.close() }
        csv.write(Data((LossCurve.csvHeader + "\n").utf8))
        let title = "\(URL(fileURLWithPath: data).lastPathComponent): \(shape.layerCount)×d\(shape.dim), batch \(configuration.batchSize)×\(configuration.sequenceLength)"
        let firstStep = trainer.step
        let start = Date()
        var smoothed: Double?
        while trainer.step < configuration.maxSteps {
            var report = trainer.trainStep()
            let interval = configuration.evaluationInterval
            if report.step == configuration.maxSteps || (interval > 0 && report.step % interval == 0) {
                report.validationLoss = trainer.validationLoss()
            }
            curve.append(report)
            csv.write(Data((LossCurve.csvLine(report) + "\n").utf8))
            smoothed = smoothed.map { 0.9 * $0 + 0.1 * Double(report.tokensPerSecond) } ?? report.tokensPerSecond
            let done = report.step - firstStep, remaining = configuration.maxSteps - report.step
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(done) * Double(remaining)
            let width = 30, filled = width * report.step / configuration.maxSteps
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let validation = report.validationLoss.map { String(format: "  val %.4f", $0) } ?? ""
            printError(String(format: "[%@] step %d/%d  loss %.4f%@  lr %.2e  %.0f tok/s  %.0fs elapsed, ETA %.0fs",
                              bar, report.step, configuration.maxSteps, report.loss, validation, report.learningRate,
                              smoothed ?? 0, elapsed, eta))
            if checkpointEvery > 0 && report.step % checkpointEvery == 0 {
                try trainer.saveCheckpoint(to: checkpointURL)
            }
        }
        if profile {
            let kinds = trainer.model.tape.profileByKind()
            let total = kinds.reduce(trainer.optimizerSeconds) { $0 + $1.forward + $1.backward }
            printError("train: time per op kind over \(trainer.step - firstStep) steps (forward + backward):")
            for k in kinds {
                printError("  " + k.kind.padding(toLength: 13, withPad: " ", startingAt: 0)
                    + String(format: "%8.2f s  (%5.1f %%)  forward %.2f s, backward %.2f s", k.forward + k.backward,
                             100 * (k.forward + k.backward) / total, k.forward, k.backward))
            }
            printError("  " + "AdamW+clip".padding(toLength: 13, withPad: " ", startingAt: 0)
                + String(format: "%8.2f s  (%5.1f %%)", trainer.optimizerSeconds, 100 * trainer.optimizerSeconds / total))
        }
        try trainer.saveCheckpoint(to: checkpointURL)
        try trainer.exportGGUF(to: outURL, precision: ExportPrecision(rawValue: outtype)!)
        try curve.svg(title: title).write(to: svgURL, atomically: true, encoding: .utf8)
        printError("train: wrote \(out), \(csvURL.path), \(svgURL.path), \(checkpointURL.path)")
        if let png = Self.convertToPNG(svgURL) { printError("train: wrote \(png)") }
    }

    private func readFile(_ path: String, what: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SwiftletError.io(path: path, reason: "\(what) file not found")
        }
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw SwiftletError.io(path: path, reason: "cannot read the \(what) file")
        }
        return bytes
    }

    /// Renders the SVG as PNG with rsvg-convert (Debian `librsvg2-bin`) or ImageMagick's convert,
    /// when one is installed; nil otherwise.
    static func convertToPNG(_ svg: URL) -> String? {
        let png = svg.deletingPathExtension().path + ".png"
        for (tool, arguments) in [("rsvg-convert", ["-o", png, svg.path]), ("convert", [svg.path, png])] {
            let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
            guard let dir = paths.first(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }) else { continue }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "\(dir)/\(tool)")
            p.arguments = arguments
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { continue }
            p.waitUntilExit()
            if p.terminationStatus == 0 { return png }
        }
        return nil
    }
}
