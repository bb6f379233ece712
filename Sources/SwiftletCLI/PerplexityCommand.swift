import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet perplexity -m FILE -f TEXT -c N`: llama-perplexity's measurement (non-overlapping
/// chunks of N tokens, BOS first where the model adds it, second half of each chunk scored).
struct PerplexityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity", abstract: "Measure a model's perplexity on a text file (llama-perplexity's method).")

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: [.short, .customLong("file")], help: "Text file.")
    var f: String?
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.")
    var c: Int = 512
    @Option(name: .customLong("chunks"), help: "Most chunks to process (default: all).")
    var chunks: Int = -1
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var lora: LoRAOptions
    @OptionGroup var attention: AttentionOptions
    @Option(name: .customLong("kl-divergence-base"),
            help: "Log-probability file: written by a normal run, read by --kl-divergence (llama-perplexity's format).")
    var klDivergenceBase: String?
    @Flag(name: .customLong("kl-divergence"), help: "Compare the model with the log-probabilities of --kl-divergence-base.")
    var klDivergence = false

    func run() async throws {
        if klDivergence {
            guard let base = klDivergenceBase else {
                throw ValidationError("--kl-divergence needs --kl-divergence-base FILE (the base model's log-probabilities)")
            }
            try runKLDivergence(base: base)
            return
        }
        guard let f else { throw ValidationError("-f TEXT is required") }
        if let base = klDivergenceBase {
            try writeBase(text: f, to: base)
            return
        }
        let text = try readTextFile(f)
        // A text shorter than one chunk is refused before the context's buffers are allocated.
        let tokenizer = try Tokenizers.load(gguf: GGUFFile(url: URL(fileURLWithPath: m)))
        var tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        if chunks >= 0 { tokens = Array(tokens.prefix(chunks * c)) }
        guard tokens.count >= c else { throw SwiftletError.invalidArgument("\(f) has \(tokens.count) tokens, fewer than one chunk of \(c)") }
        let model = try MeasuredModel(path: m, contextLength: c, adapters: lora.adapters(), attention: attention)
        let start = Date()
        var line = ""
        let result = try Perplexity.measure(model.transformer, tokens: tokens, contextSize: c, bos: model.bos) { e in
            if e.chunk == 1 {
                printError("perplexity: calculating perplexity over \(e.chunkCount) chunks, n_ctx=\(c)")
            }
            line += String(format: "[%d]%.4f,", e.chunk, e.perplexity)
            progressBar("perplexity", done: e.chunk, total: e.chunkCount, since: start, extra: String(format: "PPL %.4f", e.perplexity))
        }
        print(line)
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.perplexity, result.standardError))
    }

    /// A normal perplexity run that also stores the log-probabilities for --kl-divergence.
    private func writeBase(text path: String, to base: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SwiftletError.io(path: path, reason: "cannot read the text: \(error.localizedDescription)")
        }
        let model = try MeasuredModel(path: m, contextLength: c, adapters: lora.adapters(), attention: attention)
        let tokens = model.tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        printError("perplexity: saving all logits to \(base)")
        let start = Date()
        var line = ""
        let result = try KLDivergence.writeBase(model.transformer, tokens: tokens, contextSize: c, bos: model.bos,
                                                chunks: chunks < 0 ? nil : chunks, to: URL(fileURLWithPath: base)) { e in
            line += String(format: "[%d]%.4f,", e.chunk, e.perplexity)
            progressBar("perplexity", done: e.chunk, total: e.chunkCount, since: start, extra: String(format: "PPL %.4f", e.perplexity))
        }
        print(line)
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.perplexity, result.standardError))
    }

    /// llama-perplexity --kl-divergence: per-chunk lines, then the closing statistics.
    private func runKLDivergence(base: String) throws {
        let url = URL(fileURLWithPath: base)
        let contextSize: Int
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            let head = try handle.read(upToCount: 12) ?? Data()
            guard head.count == 12 else { throw SwiftletError.truncatedFile(path: base, what: "header") }
            contextSize = Int(head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) })
        } catch let error as SwiftletError { throw error } catch {
            throw SwiftletError.io(path: base, reason: "cannot read: \(error.localizedDescription)")
        }
        guard contextSize >= 2, contextSize <= 1 << 20 else {
            throw SwiftletError.malformedFile(path: base, reason: "context size \(contextSize) in the header")
        }
        let model = try MeasuredModel(path: m, contextLength: contextSize, attention: attention)
        let start = Date()
        print("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p")
        let result = try KLDivergence.compare(model.transformer, base: url, bos: model.bos) { chunk, chunkCount, acc in
            print(KLDivergence.Statistics.chunkLine(chunk, acc))
            progressBar("kl-divergence", done: chunk, total: chunkCount, since: start)
        }
        print("")
        guard result.count >= 100 else {
            printError("kl-divergence: only \(result.count) tokens scored; statistics need at least 100")
            return
        }
        print(KLDivergence.Statistics(result).report)
    }
}
