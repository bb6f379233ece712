import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet embed`: sentence embeddings, one JSON object per text; or, with `--bench`, the
/// sentence-transformers peer protocol (batch throughput and single-sentence latency).
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed texts with a sentence-embedding model (BERT encoders such as all-MiniLM-L6-v2).",
        discussion: """
            Prints one JSON object per line: {"text", "ids", "embedding"}. Texts come from the \
            arguments, or one per line from standard input when none are given.
            With --bench the texts are the benchmark set: 1 warm-up then 5 timed embeddings of all \
            of them at --batch-size (median → sentences/s), and 1 warm-up then 20 timed embeddings of \
            the first text alone (median → latency), printed as one JSON object.
            """)

    @Option(name: .shortAndLong, help: "Model directory (config.json, model.safetensors, tokenizer) or a bert GGUF file.")
    var model: String
    @OptionGroup var threads: ThreadOptions

    @Option(name: .long, help: "Texts run through the encoder at once.")
    var batchSize = 32

    @Flag(name: .long, help: "Time the texts (see below) instead of printing embeddings.")
    var bench = false

    @Option(name: .long, help: "Arithmetic of the encoder's Linear layers: f32, or bf16 (AVX-512 BF16; with --bench, the cosines to the f32 embeddings are reported).")
    var precision: EncoderPrecision = .float32

    @Argument(help: "Texts to embed (default: lines of standard input).")
    var texts: [String] = []

    func run() throws {
        let f32 = try EmbeddingModel(url: URL(fileURLWithPath: model))
        let embedder = try f32.with(precision: precision)
        var inputs = texts
        if inputs.isEmpty {
            while let line = readLine(strippingNewline: true) { inputs.append(line) }
        }
        if bench {
            try runBenchmark(embedder, inputs, reference: f32)
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let ids = try inputs.map(embedder.tokenize)
        let vectors = try embedder.embeddings(forTokenIDs: ids, batchSize: batchSize)
        for i in inputs.indices {
            let line = try encoder.encode(Line(text: inputs[i], ids: ids[i], embedding: vectors[i]))
            FileHandle.standardOutput.write(line + Data("\n".utf8))
        }
    }

    private struct Line: Encodable {
        var text: String
        var ids: [TokenID]
        var embedding: [Float]
    }

    private func runBenchmark(_ embedder: EmbeddingModel, _ inputs: [String], reference: EmbeddingModel) throws {
        guard let single = inputs.first else { throw ValidationError("--bench needs at least one text") }
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        func median(_ xs: [Double]) -> Double {
            let s = xs.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        _ = try embedder.embeddings(for: inputs, batchSize: batchSize)
        var batchTimes: [Double] = []
        for _ in 0..<5 { batchTimes.append(try seconds { _ = try embedder.embeddings(for: inputs, batchSize: batchSize) }) }
        _ = try embedder.embeddings(for: [single], batchSize: 1)
        var singleTimes: [Double] = []
        for _ in 0..<20 { singleTimes.append(try seconds { _ = try embedder.embeddings(for: [single], batchSize: 1) }) }

        // Where the time goes: tokenization alone, and the useful matmul work of the forward pass.
        var ids: [[TokenID]] = []
        let tokenizeTime = try seconds { ids = try inputs.map(embedder.tokenize) }
        let flops = ids.reduce(0.0) { $0 + embedder.pipeline.encoder.config.forwardFLOPs(tokens: $1.count) }
        var forwardTimes: [Double] = []
        for _ in 0..<5 { forwardTimes.append(try seconds { _ = try embedder.embeddings(forTokenIDs: ids, batchSize: batchSize) }) }
        var report: [String: Any] = [
            "precision": precision.rawValue,
            "texts": inputs.count,
            "batch_size": batchSize,
            "threads": ComputePool.shared.threadCount,
            "backend": ComputeBackend.effective.rawValue,
            "batch_sentences_per_second": Double(inputs.count) / median(batchTimes),
            "batch_seconds_median": median(batchTimes),
            "single_latency_ms": 1000 * median(singleTimes),
            "tokens": ids.reduce(0) { $0 + $1.count },
            "tokenize_ms": 1000 * tokenizeTime,
            "forward_ms_median": 1000 * median(forwardTimes),
            "forward_gflops_per_second": flops / median(forwardTimes) / 1e9,
        ]
        if precision != .float32 {
            // What the precision costs: each text's cosine to its f32 embedding.
            let cosines = zip(try embedder.embeddings(forTokenIDs: ids, batchSize: batchSize),
                              try reference.embeddings(forTokenIDs: ids, batchSize: batchSize))
                .map { Double(EmbeddingModel.cosineSimilarity($0, $1)) }
            report["cosine_to_f32_min"] = cosines.min() ?? 1
            report["cosine_to_f32_mean"] = cosines.reduce(0, +) / Double(max(1, cosines.count))
        }
        let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}

extension EncoderPrecision: ExpressibleByArgument {}
