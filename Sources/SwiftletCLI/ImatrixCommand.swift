import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet imatrix -m MODEL -f TEXT -o OUT`: llama-imatrix's importance matrix.
struct ImatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imatrix",
        abstract: "Compute an importance matrix (llama-imatrix's method and file format) for quantization.",
        discussion: """
            The text is cut into chunks of -c tokens, each evaluated from an empty cache with BOS \
            first; the input of every block weight product is accumulated as Σx² per column. The \
            file is llama-imatrix's GGUF layout (or its legacy .dat with --output-format dat) and \
            works with llama-quantize and swiftlet quantize. --in-file matrices are added first; \
            without -f they are only combined.
            """)

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String?
    @Option(name: [.short, .customLong("file")], help: "Text file.")
    var f: String?
    @Option(name: [.short, .customLong("output-file")], help: "Output file.")
    var o: String = "imatrix.gguf"
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.")
    var c: Int = 512
    @Option(name: .customLong("chunks"), help: "Most chunks to process (default: all).")
    var chunks: Int = -1
    @Option(name: [.customLong("chunk"), .customLong("from-chunk")], help: "Skip the first N chunks of the text.")
    var fromChunk: Int = 0
    @Option(name: [.short, .customLong("batch-size")], help: "Logical batch (llama.cpp's -b): batch-size / ctx-size chunks run together.")
    var b: Int = 2048
    @Option(name: [.customLong("ubatch-size"), .customShort("u")], help: "Micro-batch (llama.cpp's -ub).")
    var ub: Int = 512
    @OptionGroup var threads: ThreadOptions
    @Option(name: .customLong("output-format"), help: "gguf or dat.")
    var outputFormat: String = "gguf"
    @Option(name: .customLong("in-file"), help: "An importance matrix to add (repeatable).")
    var inFiles: [String] = []
    @Flag(name: .customLong("no-ppl"), help: "Do not compute perplexity.")
    var noPPL = false
    @Flag(name: .customLong("parse-special"), help: "Parse special tokens in the text.")
    var parseSpecial = false

    func run() throws {
        guard ["gguf", "dat"].contains(outputFormat) else {
            throw ValidationError("--output-format must be gguf or dat, not '\(outputFormat)'")
        }
        let legacy = outputFormat == "dat"
        guard c > 0 else { throw ValidationError("imatrix tool requires '--ctx-size' > 0") }
        var combined: ImportanceMatrix?
        for path in inFiles {
            printError("imatrix: loading imatrix from '\(path)'")
            let loaded = try ImportanceMatrix(contentsOf: URL(fileURLWithPath: path))
            combined = try (combined ?? ImportanceMatrix()).adding(loaded, chunkSize: c)
        }
        guard let f else {
            guard let combined else { throw ValidationError("no text (-f) and no matrices (--in-file) to combine") }
            printError("imatrix: saving \(inFiles.count > 1 ? "combined " : "")imatrix to '\(o)'")
            try combined.write(to: URL(fileURLWithPath: o), legacy: legacy)
            return
        }
        guard let m else { throw ValidationError("-m MODEL is required with -f") }
        let text: String
        do { text = try String(contentsOfFile: f, encoding: .utf8) } catch {
            throw SwiftletError.io(path: f, reason: "cannot read the text: \(error.localizedDescription)")
        }
        let loaded = try MeasuredModel(path: m, contextLength: c)
        let tokens = loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: parseSpecial)
        printError("imatrix: \(tokens.count) tokens, computing over chunks of \(c)")
        let start = Date()
        var line = ""
        let result = try ImportanceMatrixRun.measure(
            loaded.transformer, tokens: tokens, contextSize: c, bos: loaded.bos, chunks: chunks < 0 ? nil : chunks,
            skipChunks: fromChunk, batchSize: b, microBatchSize: ub, computePerplexity: !noPPL, datasets: [f]) { p in
                if let ppl = p.perplexity { line += String(format: "[%d]%.4f,", p.chunk, ppl) }
                progressBar("imatrix", done: p.chunk, total: p.chunkCount, since: start,
                            extra: p.perplexity.map { String(format: "PPL %.4f", $0) } ?? "")
            }
        if !line.isEmpty { print(line) }
        if let ppl = result.perplexity, let error = result.perplexityError {
            print(String(format: "Final estimate: PPL = %.4f +/- %.5f", ppl, error))
        }
        var matrix = result.matrix
        if let combined { matrix = try combined.adding(matrix, chunkSize: c) }
        try matrix.write(to: URL(fileURLWithPath: o), legacy: legacy)
        printError("imatrix: stored \(matrix.entries.count) tensors after \(matrix.chunkCount) chunks in \(o)")
    }
}

/// A model opened for a measurement command: transformer, tokenizer, BOS rule.
struct MeasuredModel {
    let file: GGUFFile
    let transformer: Transformer
    let tokenizer: any Tokenizer
    /// The token that replaces each chunk's first token, when the model adds BOS.
    let bos: TokenID?

    init(path: String, contextLength: Int, adapters: [ScaledAdapter] = [], attention: AttentionOptions? = nil) throws {
        file = try GGUFFile(url: URL(fileURLWithPath: path))
        let kv = try attention?.resolved() ?? (.f16, .f16, false)
        transformer = try Transformer.load(gguf: file, contextLength: contextLength, cacheType: kv.key, valueCacheType: kv.value,
                                           flashAttention: kv.flashAttention)
        try transformer.setAdapters(adapters)
        tokenizer = try Tokenizers.load(gguf: file)
        bos = tokenizer.addsBOS ? tokenizer.bosID : nil
    }
}

/// One progress line on stderr: `[#####.....] done/total  extra  elapsed, ETA`.
func progressBar(_ label: String, done: Int, total: Int, since start: Date, extra: String = "") {
    let width = 30, filled = total > 0 ? width * done / total : width
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    let elapsed = Date().timeIntervalSince(start)
    let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
    printError(String(format: "%@ [%@] %d/%d  %@  %.1fs elapsed, ETA %.1fs", label, bar, done, total, extra, elapsed, eta))
}
