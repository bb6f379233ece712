import ArgumentParser
import Foundation
import Synchronization
import Swiftlet

/// `swiftlet perplexity -m FILE -f TEXT -c N`: llama-perplexity's measurement (non-overlapping
/// chunks of N tokens, BOS first where the model adds it, second half of each chunk scored).
struct PerplexityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity", abstract: "Measure a model's perplexity on a text file (llama-perplexity's method).")

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: [.short, .customLong("file")], help: "Text file.")
    var f: String
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.")
    var c: Int = 512
    @OptionGroup var threads: ThreadOptions

    func run() async throws {
        let text = try String(contentsOfFile: f, encoding: .utf8)
        let model = try await LanguageModel.load(URL(fileURLWithPath: m), contextLength: c)
        let start = Date()
        let line = Mutex("")
        let c = c
        let result = try await model.perplexity(text: text, contextSize: c) { e in
            if e.chunk == 1 {
                printError("perplexity: calculating perplexity over \(e.chunkCount) chunks, n_ctx=\(c)")
            }
            line.withLock { $0 += String(format: "[%d]%.4f,", e.chunk, e.perplexity) }
            let width = 30, filled = width * e.chunk / e.chunkCount
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(e.chunk) * Double(e.chunkCount - e.chunk)
            printError(String(format: "[%@] %d/%d  PPL %.4f  %.1fs elapsed, ETA %.1fs", bar, e.chunk, e.chunkCount,
                              e.perplexity, elapsed, eta))
        }
        print(line.withLock { $0 })
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.perplexity, result.standardError))
    }
}
