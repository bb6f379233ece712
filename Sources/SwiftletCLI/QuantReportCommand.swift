import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet quant-report -m SOURCE.gguf -f TEXT --types … -o DIR`: what each quantization costs.
struct QuantReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quant-report",
        abstract: "Quantize a model to several types and report size, perplexity and KL divergence against the source.",
        discussion: """
            Writes DIR/report.md, DIR/report.json (per type: file size, bits per weight, PPL, mean and \
            99th-percentile KLD vs the source, top-1 agreement, per-tensor RMSE and largest error) and \
            DIR/size-vs-kld.svg, plus DIR/size-vs-kld.png when rsvg-convert is installed. For an embedding \
            model (a bert GGUF) TEXT holds one text per line, and the report gives the cosine of the \
            quantized vs the source embeddings (mean, minimum, 1st percentile) and top-1 retrieval \
            agreement instead, plotted in DIR/size-vs-cosine.svg.
            """)

    @Option(name: [.short, .customLong("model")], help: "Source GGUF model (F32/F16 or a quantized file, requantized).")
    var m: String = ""
    @Option(name: [.short, .customLong("file")], help: "Text file.")
    var f: String = ""
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.")
    var c: Int = 512
    @Option(name: .customLong("chunks"), help: "Most chunks to score (default: all).")
    var chunks: Int = -1
    @Option(name: .customLong("types"), help: "Comma-separated llama-quantize types (default: Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K; for an embedding model F16,Q8_0,Q6_K,Q5_K_M,Q5_0,Q4_K_M,Q4_0,IQ4_NL,Q3_K_M,Q2_K).")
    var types: String?
    @Option(name: .customLong("imatrix"), help: "Importance matrix for the quantizer.")
    var imatrix: String?
    @Option(name: [.short, .customLong("output")], help: "Report directory.")
    var o: String
    @Flag(name: .customLong("keep-models"), help: "Keep the quantized files in the report directory.")
    var keepModels = false
    @Flag(name: .customLong("replot"), help: "Only rewrite report.md and the plot from DIR/report.json.")
    var replot = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        let directory = URL(fileURLWithPath: o)
        if replot {
            let data: Data
            do { data = try Data(contentsOf: directory.appendingPathComponent("report.json")) } catch {
                throw SwiftletError.io(path: o, reason: "no report.json to replot: \(error.localizedDescription)")
            }
            let report: QuantReport.Report
            do { report = try JSONDecoder().decode(QuantReport.Report.self, from: data) } catch {
                throw SwiftletError.malformedFile(path: directory.appendingPathComponent("report.json").path, reason: "\(error)")
            }
            try finish(report, directory)
            return
        }
        guard !m.isEmpty, !f.isEmpty else { throw ValidationError("-m SOURCE and -f TEXT are required") }
        let embedding = try QuantReport.isEmbeddingModel(URL(fileURLWithPath: m))
        let typeList = types ?? (embedding ? "F16,Q8_0,Q6_K,Q5_K_M,Q5_0,Q4_K_M,Q4_0,IQ4_NL,Q3_K_M,Q2_K" : "Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K")
        let mixes = try typeList.split(separator: ",").map { name -> QuantizationMix in
            guard let mix = QuantizationMix(name: String(name).trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown quantization type '\(name)'")
            }
            return mix
        }
        let text: String
        do { text = try String(contentsOfFile: f, encoding: .utf8) } catch {
            throw SwiftletError.io(path: f, reason: "cannot read the text: \(error.localizedDescription)")
        }
        let matrix = try imatrix.map { try ImportanceMatrix(contentsOf: URL(fileURLWithPath: $0)) }
        let start = Date()
        var done = 0
        let progress: QuantReport.Progress = { type, stage in
            if stage == "quantizing" { done += 1 }
            progressBar("quant-report", done: max(done - 1, 0), total: mixes.count, since: start, extra: "\(type): \(stage)")
        }
        let textName = (f as NSString).lastPathComponent
        let report = try embedding
            ? QuantReport.runEmbedding(source: URL(fileURLWithPath: m), texts: text.split(whereSeparator: \.isNewline).map(String.init)
                                                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty },
                                           textName: textName, types: mixes, importanceMatrix: matrix, importanceMatrixPath: imatrix,
                                           directory: directory, keepModels: keepModels, progress: progress)
            : QuantReport.run(source: URL(fileURLWithPath: m), text: text, textName: textName,
                                  contextSize: c, chunks: chunks < 0 ? nil : chunks, types: mixes,
                                  importanceMatrix: matrix, importanceMatrixPath: imatrix, directory: directory,
                                  keepModels: keepModels, progress: progress)
        try finish(report, directory)
    }

    /// Writes the report files and the PNG rendering of the plot.
    private func finish(_ report: QuantReport.Report, _ directory: URL) throws {
        try QuantReport.write(report, to: directory)
        let svg = directory.appendingPathComponent(report.plotName).path
        if let converter = ["/usr/bin/rsvg-convert", "/usr/local/bin/rsvg-convert"].first(where: FileManager.default.isExecutableFile) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: converter)
            process.arguments = ["-w", "1280", "-o", (svg as NSString).deletingPathExtension + ".png", svg]
            try? process.run()
            process.waitUntilExit()
        } else {
            printError("quant-report: rsvg-convert not found, no PNG (apt-get install librsvg2-bin)")
        }
        print(QuantReport.markdown(report))
    }
}
