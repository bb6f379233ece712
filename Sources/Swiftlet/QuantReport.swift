import Foundation
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import SwiftletTokenizers
import SwiftletModels

/// What quantization costs, type by type: quantizes a source model to each requested type with
/// ``Quantizer`` and measures each result against the source on a text — file size, bits per
/// weight, perplexity, KL divergence (mean and 99th percentile, llama-perplexity's method via
/// ``KLDivergence``), how often both pick the same top token, and per tensor the RMS and largest
/// weight error. Written as `report.md`, `report.json` and a size-versus-KLD plot (`size-vs-kld.svg`).
///
/// For an embedding model (a `bert` GGUF), ``runEmbedding(source:texts:textName:types:importanceMatrix:importanceMatrixPath:directory:keepModels:progress:)``
/// measures instead how close each quantized model's embeddings of a text set stay to the
/// source's (cosine: mean, minimum, 1st percentile; nearest-neighbour agreement), plotted as
/// size against 1 − mean cosine (`size-vs-cosine.svg`).
public enum QuantReport {
    /// One tensor's weight error after quantization (against the source's values).
    public struct TensorError: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        public var rmse: Double
        public var maxError: Double

        public init(name: String, type: String, rmse: Double, maxError: Double) {
            self.name = name; self.type = type; self.rmse = rmse; self.maxError = maxError
        }
    }

    /// One quantization type's figures.
    public struct Entry: Codable, Sendable, Equatable {
        public var type: String
        public var fileBytes: Int
        public var bitsPerWeight: Double
        public var perplexity: Double
        public var meanKLD: Double
        public var p99KLD: Double
        /// Fraction of scored tokens where the quantized model's top token is the source's.
        public var top1Agreement: Double
        public var tensors: [TensorError]
        /// An embedding model's figures (then the language-model fields above are 0).
        public var embedding: EmbeddingAgreement?

        public init(type: String, fileBytes: Int, bitsPerWeight: Double, perplexity: Double, meanKLD: Double, p99KLD: Double,
                    top1Agreement: Double, tensors: [TensorError], embedding: EmbeddingAgreement? = nil) {
            self.type = type; self.fileBytes = fileBytes; self.bitsPerWeight = bitsPerWeight; self.perplexity = perplexity
            self.meanKLD = meanKLD; self.p99KLD = p99KLD; self.top1Agreement = top1Agreement; self.tensors = tensors
            self.embedding = embedding
        }
    }

    /// How close a quantized embedding model stays to its source over a text set.
    public struct EmbeddingAgreement: Codable, Sendable, Equatable {
        /// Mean over the texts of the cosine between the quantized and the source embedding.
        public var meanCosine: Double
        /// The smallest of those cosines.
        public var minCosine: Double
        /// Their 1st percentile (nearest rank).
        public var p1Cosine: Double
        /// Fraction of texts whose nearest other text (largest cosine) is the same under both models.
        public var top1Retrieval: Double

        public init(meanCosine: Double, minCosine: Double, p1Cosine: Double, top1Retrieval: Double) {
            self.meanCosine = meanCosine; self.minCosine = minCosine; self.p1Cosine = p1Cosine; self.top1Retrieval = top1Retrieval
        }

        /// The figures of `quantized` against `source` (one embedding per text, in the same order).
        public init(source: [[Float]], quantized: [[Float]]) {
            let cosines = zip(source, quantized).map { Double(EmbeddingModel.cosineSimilarity($0, $1)) }.sorted()
            meanCosine = cosines.isEmpty ? 0 : cosines.reduce(0, +) / Double(cosines.count)
            minCosine = cosines.first ?? 0
            p1Cosine = cosines.isEmpty ? 0 : cosines[max(0, Int((0.01 * Double(cosines.count)).rounded(.up)) - 1)]
            let a = Self.nearest(source), b = Self.nearest(quantized)
            top1Retrieval = a.isEmpty ? 0 : Double(zip(a, b).filter { $0 == $1 }.count) / Double(a.count)
        }

        /// For each embedding, the index of the most similar other one (the first on ties).
        static func nearest(_ e: [[Float]]) -> [Int] {
            guard e.count > 1 else { return [] }
            return e.indices.map { i in
                var best = -1, bestCosine = -Float.infinity
                for j in e.indices where j != i {
                    let c = EmbeddingModel.cosineSimilarity(e[i], e[j])
                    if c > bestCosine { best = j; bestCosine = c }
                }
                return best
            }
        }
    }

    /// The whole report.
    public struct Report: Codable, Sendable, Equatable {
        public var source: String
        public var sourceBytes: Int
        public var sourceBitsPerWeight: Double
        public var sourcePerplexity: Double
        public var text: String
        public var contextSize: Int
        public var chunks: Int
        public var importanceMatrix: String?
        public var entries: [Entry]
        /// For an embedding model's report, the number of texts embedded (nil for a language model).
        public var embeddingTexts: Int?

        public init(source: String, sourceBytes: Int, sourceBitsPerWeight: Double, sourcePerplexity: Double, text: String,
                    contextSize: Int, chunks: Int, importanceMatrix: String?, entries: [Entry], embeddingTexts: Int? = nil) {
            self.source = source; self.sourceBytes = sourceBytes; self.sourceBitsPerWeight = sourceBitsPerWeight
            self.sourcePerplexity = sourcePerplexity; self.text = text; self.contextSize = contextSize; self.chunks = chunks
            self.importanceMatrix = importanceMatrix; self.entries = entries; self.embeddingTexts = embeddingTexts
        }

        /// Whether this is an embedding model's report.
        public var isEmbedding: Bool { embeddingTexts != nil }

        /// The plot's file name: `size-vs-kld.svg`, or `size-vs-cosine.svg` for an embedding model.
        public var plotName: String { isEmbedding ? "size-vs-cosine.svg" : "size-vs-kld.svg" }
    }

    /// Progress: which type, and what is being done.
    public typealias Progress = (_ type: String, _ stage: String) -> Void

    /// Runs the report. Quantized files are written in `directory` and removed after their
    /// measurement unless `keepModels`.
    ///
    /// - Throws: what ``Quantizer/quantize(input:output:options:progress:)`` and
    ///   ``KLDivergence`` throw; `invalidArgument` for an empty type list.
    public static func run(source: URL, text: String, textName: String, contextSize: Int = 512, chunks: Int? = nil,
                           types: [QuantizationMix], importanceMatrix: ImportanceMatrix? = nil, importanceMatrixPath: String? = nil,
                           directory: URL, keepModels: Bool = false, progress: Progress = { _, _ in }) throws -> Report {
        guard !types.isEmpty else { throw SwiftletError.invalidArgument("no quantization types") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let sourceFile = try GGUFFile(url: source)
        let tokenizer = try Tokenizers.load(gguf: sourceFile)
        let bos = tokenizer.addsBOS ? tokenizer.bosID : nil
        let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let baseURL = directory.appendingPathComponent("base.kld")
        progress("source", "perplexity and base log-probabilities")
        let basePPL: Perplexity.Estimate
        do {
            let transformer = try Transformer.load(gguf: sourceFile, contextLength: contextSize)
            basePPL = try KLDivergence.writeBase(transformer, tokens: tokens, contextSize: contextSize, bos: bos, chunks: chunks, to: baseURL)
        }
        defer { try? FileManager.default.removeItem(at: baseURL) }

        var entries: [Entry] = []
        for mix in types {
            let name = mix.description
            progress(name, "quantizing")
            let output = try quantize(source, mix, importanceMatrix, importanceMatrixPath, directory)
            defer { if !keepModels { try? FileManager.default.removeItem(at: output) } }
            let quantized = try GGUFFile(url: output)
            progress(name, "tensor errors")
            let tensors = try tensorErrors(source: sourceFile, quantized: quantized)
            progress(name, "KL divergence")
            let transformer = try Transformer.load(gguf: quantized, contextLength: contextSize)
            let acc = try KLDivergence.compare(transformer, base: baseURL, bos: bos)
            let stats = KLDivergence.Statistics(acc)
            entries.append(Entry(type: name, fileBytes: quantized.fileSize, bitsPerWeight: bitsPerWeight(quantized),
                                 perplexity: stats.perplexity.value, meanKLD: stats.meanKLD.value,
                                 p99KLD: stats.kldPercentiles["99.0"] ?? 0, top1Agreement: stats.sameTop.value, tensors: tensors))
        }
        return Report(source: source.lastPathComponent, sourceBytes: sourceFile.fileSize, sourceBitsPerWeight: bitsPerWeight(sourceFile),
                      sourcePerplexity: basePPL.perplexity, text: textName, contextSize: contextSize,
                      chunks: basePPL.chunkCount, importanceMatrix: importanceMatrixPath, entries: entries)
    }

    /// Runs the report for an embedding model (a `bert` GGUF such as all-MiniLM-L6-v2): per type,
    /// file size, bits per weight, per-tensor errors and ``EmbeddingAgreement`` of the quantized
    /// model's embeddings of `texts` with the source's (pooling and normalization as the file says,
    /// as ``EmbeddingModel`` runs it). Quantized files are written in `directory` and removed
    /// after their measurement unless `keepModels`.
    ///
    /// - Throws: `invalidArgument` for an empty type or text list; `unsupportedArchitecture` for a
    ///   source that is not a `bert` GGUF; what ``Quantizer/quantize(input:output:options:progress:)`` throws.
    public static func runEmbedding(source: URL, texts: [String], textName: String, types: [QuantizationMix],
                                    importanceMatrix: ImportanceMatrix? = nil, importanceMatrixPath: String? = nil,
                                    directory: URL, keepModels: Bool = false, progress: Progress = { _, _ in }) throws -> Report {
        guard !types.isEmpty else { throw SwiftletError.invalidArgument("no quantization types") }
        guard !texts.isEmpty else { throw SwiftletError.invalidArgument("no texts to embed") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let sourceFile = try GGUFFile(url: source)
        progress("source", "embeddings")
        let base = try EmbeddingModel(gguf: source).embeddings(for: texts)
        var entries: [Entry] = []
        for mix in types {
            let name = mix.description
            progress(name, "quantizing")
            let output = try quantize(source, mix, importanceMatrix, importanceMatrixPath, directory)
            defer { if !keepModels { try? FileManager.default.removeItem(at: output) } }
            let quantized = try GGUFFile(url: output)
            progress(name, "tensor errors")
            let tensors = try tensorErrors(source: sourceFile, quantized: quantized)
            progress(name, "embeddings")
            let embeddings = try EmbeddingModel(gguf: output).embeddings(for: texts)
            entries.append(Entry(type: name, fileBytes: quantized.fileSize, bitsPerWeight: bitsPerWeight(quantized), perplexity: 0,
                                 meanKLD: 0, p99KLD: 0, top1Agreement: 0, tensors: tensors,
                                 embedding: EmbeddingAgreement(source: base, quantized: embeddings)))
        }
        return Report(source: source.lastPathComponent, sourceBytes: sourceFile.fileSize, sourceBitsPerWeight: bitsPerWeight(sourceFile),
                      sourcePerplexity: 0, text: textName, contextSize: 0, chunks: 0, importanceMatrix: importanceMatrixPath,
                      entries: entries, embeddingTexts: texts.count)
    }

    /// Whether `source` is an embedding model (llama.cpp's `bert` architecture), whose report is
    /// ``runEmbedding(source:texts:textName:types:importanceMatrix:importanceMatrixPath:directory:keepModels:progress:)``.
    public static func isEmbeddingModel(_ source: URL) throws -> Bool {
        try GGUFFile(url: source).architecture == "bert"
    }

    /// Quantizes `source` to `mix` as `DIR/model-TYPE.gguf` (requantizing allowed).
    static func quantize(_ source: URL, _ mix: QuantizationMix, _ importanceMatrix: ImportanceMatrix?, _ importanceMatrixPath: String?,
                         _ directory: URL) throws -> URL {
        let output = directory.appendingPathComponent("model-\(mix.description).gguf")
        var options = Quantizer.Options(mix: mix)
        options.allowRequantize = true
        options.importanceMatrix = importanceMatrix
        options.importanceMatrixPath = importanceMatrixPath ?? ""
        _ = try Quantizer.quantize(input: source, output: output, options: options)
        return output
    }

    /// Bits per weight over the file's tensors.
    static func bitsPerWeight(_ file: GGUFFile) -> Double {
        let bytes = file.tensors.reduce(0) { $0 + $1.byteCount }, elements = file.tensors.reduce(0) { $0 + $1.elementCount }
        return elements == 0 ? 0 : Double(bytes) * 8 / Double(elements)
    }

    /// RMS and largest absolute difference between each tensor's dequantized values in the two files.
    static func tensorErrors(source: GGUFFile, quantized: GGUFFile) throws -> [TensorError] {
        var out: [TensorError] = []
        var a: [Float] = [], b: [Float] = []
        for info in quantized.tensors {
            guard let s = source.tensor(named: info.name), s.elementCount == info.elementCount,
                  s.type.isQuantSupported, info.type.isQuantSupported else { continue }
            let n = info.elementCount
            if a.count < n { a = [Float](repeating: 0, count: n); b = a }
            try a.withUnsafeMutableBufferPointer { try dequantize(s.type, src: source.data(for: s), count: n, into: $0.baseAddress!) }
            try b.withUnsafeMutableBufferPointer { try dequantize(info.type, src: quantized.data(for: info), count: n, into: $0.baseAddress!) }
            var sum = 0.0, worst = 0.0
            for i in 0..<n {
                let d = Double(a[i]) - Double(b[i])
                sum += d * d; worst = max(worst, abs(d))
            }
            out.append(TensorError(name: info.name, type: info.type.description, rmse: (sum / Double(max(n, 1))).squareRoot(), maxError: worst))
        }
        return out
    }

    // MARK: - Output

    /// `report.md`: one row per type, then the worst tensors of each.
    public static func markdown(_ r: Report) -> String {
        var l: [String] = []
        l.append("# Quantization report: \(r.source)")
        l.append("")
        if let count = r.embeddingTexts {
            l.append("Source: \(r.source), \(String(format: "%.1f", Double(r.sourceBytes) / 1_048_576)) MiB, \(String(format: "%.2f", r.sourceBitsPerWeight)) bits/weight. Texts: \(r.text), \(count) texts embedded by the source and by each quantized model; cosine of each text's two embeddings, and top-1 retrieval: how often a text's nearest other text is the same under both.\(r.importanceMatrix.map { " Importance matrix: \($0)." } ?? "")")
            l.append("")
            l.append("| type | size (MiB) | bits/weight | mean cosine | min cosine | p1 cosine | top-1 retrieval | worst tensor RMSE |")
            l.append("|---|---:|---:|---:|---:|---:|---:|---|")
            for e in r.entries {
                let worst = e.tensors.max { $0.rmse < $1.rmse }, c = e.embedding
                l.append(String(format: "| %@ | %.1f | %.2f | %.6f | %.6f | %.6f | %.2f %% | %@ |", e.type, Double(e.fileBytes) / 1_048_576,
                                e.bitsPerWeight, c?.meanCosine ?? 0, c?.minCosine ?? 0, c?.p1Cosine ?? 0, 100 * (c?.top1Retrieval ?? 0),
                                worst.map { String(format: "%@ %.3g", $0.name, $0.rmse) } ?? "–"))
            }
            l.append("")
            l.append("![file size vs 1 − mean cosine](\(r.plotName))")
            l.append("")
            l.append("Per-tensor RMSE and largest error (against the source's dequantized values) are in report.json.")
            return l.joined(separator: "\n") + "\n"
        }
        l.append("Source: \(r.source), \(String(format: "%.1f", Double(r.sourceBytes) / 1_048_576)) MiB, \(String(format: "%.2f", r.sourceBitsPerWeight)) bits/weight, PPL \(String(format: "%.4f", r.sourcePerplexity)). Text: \(r.text), \(r.chunks) chunks of \(r.contextSize) tokens (second halves scored, llama-perplexity's method).\(r.importanceMatrix.map { " Importance matrix: \($0)." } ?? "")")
        l.append("")
        l.append("| type | size (MiB) | bits/weight | PPL | mean KLD | p99 KLD | top-1 agreement | worst tensor RMSE |")
        l.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for e in r.entries {
            let worst = e.tensors.max { $0.rmse < $1.rmse }
            l.append(String(format: "| %@ | %.1f | %.2f | %.4f | %.6f | %.6f | %.2f %% | %@ |", e.type, Double(e.fileBytes) / 1_048_576,
                            e.bitsPerWeight, e.perplexity, e.meanKLD, e.p99KLD, 100 * e.top1Agreement,
                            worst.map { String(format: "%@ %.3g", $0.name, $0.rmse) } ?? "–"))
        }
        l.append("")
        l.append("![file size vs mean KLD](size-vs-kld.svg)")
        l.append("")
        l.append("Per-tensor RMSE and largest error (against the source's dequantized values) are in report.json.")
        return l.joined(separator: "\n") + "\n"
    }

    /// `report.json`.
    public static func json(_ r: Report) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(r)
    }

    /// The plot: file size (MiB, x) against mean KLD (log scale, y), one labelled point per type;
    /// for an embedding model against 1 − mean cosine.
    public static func svg(_ r: Report) -> String {
        let width = 680.0, height = 420.0, left = 80.0, right = 90.0, top = 40.0, bottom = 60.0
        func value(_ e: Entry) -> Double { r.isEmbedding ? 1 - (e.embedding?.meanCosine ?? 1) : e.meanKLD }
        let points = r.entries.filter { value($0) > 0 }
        let sizes = points.map { Double($0.fileBytes) / 1_048_576 }
        let klds = points.map(value)
        let xStep = niceStep(((sizes.max() ?? 1) - (sizes.min() ?? 0)) / 5)
        let xMin = max(0, ((sizes.min() ?? 0) * 0.95 / xStep).rounded(.down) * xStep)
        let xMax = max(xMin + xStep, ((sizes.max() ?? 1) * 1.05 / xStep).rounded(.up) * xStep)
        let yLo = floor(log10(klds.min() ?? 1e-3)), yHi = max(ceil(log10(klds.max() ?? 1)), yLo + 1)
        func x(_ v: Double) -> Double { left + (v - xMin) / (xMax - xMin) * (width - left - right) }
        func y(_ v: Double) -> Double { top + (yHi - log10(v)) / (yHi - yLo) * (height - top - bottom) }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(escape(r.source)): file size vs \(r.isEmbedding ? "1 − mean cosine" : "mean KL divergence")</text>

        """
        // Grid and axes.
        var decade = yLo
        while decade <= yHi {
            let yy = y(pow(10, decade))
            s += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(width - right)\" y2=\"\(yy)\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(left - 8)\" y=\"\(yy + 4)\" text-anchor=\"end\">1e\(Int(decade))</text>\n"
            decade += 1
        }
        let step = xStep
        var tick = xMin
        while tick <= xMax + 1e-9 {
            let xx = x(tick)
            s += "<line x1=\"\(xx)\" y1=\"\(top)\" x2=\"\(xx)\" y2=\"\(height - bottom)\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(xx)\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(String(format: step < 1 ? "%.1f" : "%.0f", tick))</text>\n"
            tick += step
        }
        s += "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - right)\" y2=\"\(height - bottom)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"black\"/>\n"
        s += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 18)\" text-anchor=\"middle\">file size (MiB)</text>\n"
        s += "<text x=\"20\" y=\"\((top + height - bottom) / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 20 \((top + height - bottom) / 2))\">\(r.isEmbedding ? "1 − mean cosine vs source (log scale)" : "mean KLD vs source (nats, log scale)")</text>\n"
        // Points, joined in size order, labelled.
        let order = points.indices.sorted { sizes[$0] < sizes[$1] }
        let path = order.map { String(format: "%.1f,%.1f", x(sizes[$0]), y(klds[$0])) }.joined(separator: " ")
        s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"#8fb3d9\" stroke-width=\"1.5\"/>\n"
        // Labels beside their points, right or left, moved up or down a line where they would cover
        // another label or point (then joined to the point by a thin line).
        let circles = order.map { (x: x(sizes[$0]), y: y(klds[$0])) }
        var placed: [(x: Double, y: Double, width: Double)] = []
        for i in order {
            let xx = x(sizes[i]), yy = y(klds[i])
            s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"#1f5fa8\"/>\n", xx, yy)
            let width = 7.5 * Double(points[i].type.count)
            func free(_ lx: Double, _ ly: Double) -> Bool {
                !placed.contains { abs($0.y - ly) < 12 && lx < $0.x + $0.width && $0.x < lx + width }
                    && !circles.contains { ($0.x != xx || $0.y != yy) && $0.x + 5 > lx && $0.x - 5 < lx + width && abs($0.y - (ly - 4)) < 10 }
            }
            var label = (x: xx + 8, y: yy + 4)
            search: for shift in [0.0, -13, 13, -26, 26, -39, 39, -52, 52] {
                for lx in [xx + 8, xx - 8 - width] where free(lx, yy + 4 + shift) {
                    label = (lx, yy + 4 + shift)
                    break search
                }
            }
            placed.append((label.x, label.y, width))
            if abs(label.y - yy - 4) > 1 {
                let ex = label.x > xx ? label.x - 2 : label.x + width + 2
                s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-width=\"0.8\"/>\n", xx, yy, ex, label.y - 4)
            }
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"start\">%@</text>\n", label.x, label.y, escape(points[i].type))
        }
        s += "</svg>\n"
        return s
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2, 5, 10] where m * p >= raw { return m * p }
        return 10 * p
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Writes report.md, report.json and the plot (``Report/plotName``) into `directory`.
    public static func write(_ r: Report, to directory: URL) throws {
        do {
            try markdown(r).write(to: directory.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
            try json(r).write(to: directory.appendingPathComponent("report.json"), options: .atomic)
            try svg(r).write(to: directory.appendingPathComponent(r.plotName), atomically: true, encoding: .utf8)
        } catch {
            throw SwiftletError.io(path: directory.path, reason: "cannot write the report: \(error.localizedDescription)")
        }
    }
}
