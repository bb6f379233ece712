import XCTest
import Foundation
import Swiftlet
import SwiftletTestSupport

/// The measuring toolchain against files and figures made by llama.cpp's own tools on the same
/// model and text (Tests/Fixtures/llamacpp-measure/SOURCE.md): the importance matrix file of
/// llama-imatrix, and llama-perplexity's KL-divergence base file and statistics.
final class MeasurementTests: XCTestCase {
    static let fixtures = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/llamacpp-measure")
    static let text = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/texts/GPL-3")

    /// FNV-1a (64 bit) of a file: the fixtures record llama.cpp's whole files this way.
    static func fnv1a(_ url: URL) throws -> String {
        let data = try Data(contentsOf: url)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        data.withUnsafeBytes { raw in
            for b in raw { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        }
        return "0x" + String(h, radix: 16)
    }

    static func json(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent(name))) as! [String: Any]
    }

    func load(_ model: RealModel, context: Int) throws -> (Transformer, any Tokenizer, TokenID?) {
        let file = try GGUFFile(url: model.url())
        let transformer = try Transformer.load(gguf: file, contextLength: context)
        let tokenizer = try Tokenizers.load(gguf: file)
        return (transformer, tokenizer, tokenizer.addsBOS ? tokenizer.bosID : nil)
    }

    func temporary(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-measure-\(UUID().uuidString)-\(name)")
    }

    /// llama-imatrix -c 128 --chunks 8 on SmolLM2 (8 chunks evaluated side by side, so the rows
    /// are summed in llama.cpp's interleaved micro-batch order): the same file byte for byte, in
    /// both formats, and the same printed perplexity.
    func testImportanceMatrixIsLlamaImatrixFile() throws {
        let expected = try Self.json("imatrix-smollm2.json")
        let (transformer, tokenizer, bos) = try load(.smollm2, context: 128)
        let tokens = tokenizer.encode(try String(contentsOf: Self.text, encoding: .utf8), addSpecial: true, parseSpecial: false)
        var line = ""
        let result = try ImportanceMatrixRun.measure(transformer, tokens: tokens, contextSize: 128, bos: bos, chunks: 8,
                                                     datasets: ["GPL-3"]) { p in
            line += String(format: "[%d]%.4f,", p.chunk, p.perplexity ?? .nan)
        }
        XCTAssertEqual(line, expected["perplexity_line"] as? String)
        XCTAssertEqual(result.matrix.entries.count, 210)
        XCTAssertEqual(result.matrix.chunkCount, 8)

        let gguf = temporary("imatrix.gguf"), dat = temporary("imatrix.dat")
        defer { try? FileManager.default.removeItem(at: gguf); try? FileManager.default.removeItem(at: dat) }
        try result.matrix.write(to: gguf)
        try result.matrix.write(to: dat, legacy: true)
        XCTAssertEqual(try Self.fnv1a(gguf), expected["gguf_fnv1a64"] as? String, "GGUF file differs from llama-imatrix's")
        XCTAssertEqual(try Self.fnv1a(dat), expected["dat_fnv1a64"] as? String, ".dat file differs from llama-imatrix's")

        // Reading either file back gives the statistics again; combining the legacy file as
        // llama-imatrix --in-file does scales its means back to sums of 128-token chunks.
        let reread = try ImportanceMatrix(contentsOf: gguf)
        XCTAssertEqual(reread, result.matrix)
        let legacy = try ImportanceMatrix(contentsOf: dat)
        XCTAssertTrue(legacy.isLegacy)
        let combined = try ImportanceMatrix().adding(legacy, chunkSize: 128)
        let name = "blk.7.ffn_down.weight"
        for (a, b) in zip(combined.entries[name]!.sums, result.matrix.entries[name]!.sums) {
            XCTAssertEqual(a, b, accuracy: abs(b) * 1e-5)
        }
        XCTAssertEqual(combined.entries[name]!.counts, [1024])
    }

    /// llama-perplexity --kl-divergence-base on SmolLM2 (-c 128 --chunks 2): the same base file
    /// byte for byte; then --kl-divergence of SmolLM2 requantized to Q4_0 against it: the same
    /// printed per-chunk lines and statistics, character for character (llama.cpp with -fa off).
    func testKLDivergenceMatchesLlamaPerplexity() throws {
        let expected = try Self.json("kld-smollm2.json")
        let (base, tokenizer, bos) = try load(.smollm2, context: 128)
        let tokens = tokenizer.encode(try String(contentsOf: Self.text, encoding: .utf8), addSpecial: true, parseSpecial: false)
        let baseURL = temporary("base.kld"), quantized = temporary("q4_0.gguf")
        defer { try? FileManager.default.removeItem(at: baseURL); try? FileManager.default.removeItem(at: quantized) }
        let ppl = try KLDivergence.writeBase(base, tokens: tokens, contextSize: 128, bos: bos, chunks: 2, to: baseURL)
        XCTAssertEqual(String(format: "%.4f", ppl.perplexity), expected["base_perplexity"] as? String)
        XCTAssertEqual(try Self.fnv1a(baseURL), expected["base_fnv1a64"] as? String, "base file differs from llama-perplexity's")

        var options = Quantizer.Options(mix: QuantizationMix(name: "Q4_0")!)
        options.allowRequantize = true
        _ = try Quantizer.quantize(input: RealModel.smollm2.url(), output: quantized, options: options)
        let model = try Transformer.load(url: quantized, contextLength: 128)
        var lines: [String] = []
        let acc = try KLDivergence.compare(model, base: baseURL, bos: bos) { chunk, _, acc in
            lines.append(KLDivergence.Statistics.chunkLine(chunk, acc))
        }
        XCTAssertEqual(acc.count, 126)
        let printed = try String(contentsOf: Self.fixtures.appendingPathComponent("kld-smollm2-q4_0.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let ours = (lines + KLDivergence.Statistics(acc).report.split(separator: "\n", omittingEmptySubsequences: true).map(String.init))
        XCTAssertEqual(ours.count, printed.count)
        for (a, b) in zip(ours, printed) { XCTAssertEqual(a, b) }
    }

    /// Hostile base files: a clear error, never a crash.
    func testKLDivergenceRejectsBadBaseFiles() throws {
        let path = "bad.kld"
        XCTAssertThrowsError(try KLDivergence.readHeader(Data("not a logits file".utf8), path: path))
        var header = Data("_logits_".utf8)
        for v: Int32 in [128, 49152, 2] { withUnsafeBytes(of: v) { header.append(contentsOf: $0) } }
        XCTAssertThrowsError(try KLDivergence.readHeader(header, path: path)) { error in
            guard case SwiftletError.truncatedFile = error else { return XCTFail("\(error)") }
        }
        var huge = Data("_logits_".utf8)
        for v: Int32 in [Int32.max, Int32.max, Int32.max] { withUnsafeBytes(of: v) { huge.append(contentsOf: $0) } }
        XCTAssertThrowsError(try KLDivergence.readHeader(huge, path: path))
    }

    /// The report's plot and table put every type where its figures say (no model needed).
    func testQuantReportPlotAndTable() throws {
        func entry(_ type: String, _ mib: Double, _ kld: Double) -> QuantReport.Entry {
            QuantReport.Entry(type: type, fileBytes: Int(mib * 1_048_576), bitsPerWeight: mib / 10, perplexity: 20 + kld,
                              meanKLD: kld, p99KLD: 5 * kld, top1Agreement: 1 - kld,
                              tensors: [QuantReport.TensorError(name: "blk.0.ffn_down.weight", type: "Q4_K", rmse: kld / 100, maxError: kld / 10)])
        }
        let report = QuantReport.Report(source: "model<f32>.gguf", sourceBytes: 500 << 20, sourceBitsPerWeight: 32, sourcePerplexity: 20,
                                        text: "GPL-3", contextSize: 512, chunks: 4, importanceMatrix: nil,
                                        entries: [entry("Q8_0", 140, 0.002), entry("Q4_K_M", 100, 0.05), entry("Q2_K", 60, 0.9)])
        let svg = QuantReport.svg(report)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        XCTAssertTrue(svg.contains("model&lt;f32&gt;.gguf"))
        // Larger files sit further right; larger KLD higher up (smaller y).
        func point(_ label: String) -> (Double, Double) {
            let lines = svg.split(separator: "\n").map(String.init)
            let i = lines.firstIndex { $0.hasSuffix(">\(label)</text>") }!
            let circle = lines[..<i].last { $0.hasPrefix("<circle") }!
            func attr(_ n: String) -> Double {
                Double(circle.components(separatedBy: "\(n)=\"")[1].components(separatedBy: "\"")[0])!
            }
            return (attr("cx"), attr("cy"))
        }
        let q8 = point("Q8_0"), q4 = point("Q4_K_M"), q2 = point("Q2_K")
        XCTAssertGreaterThan(q8.0, q4.0); XCTAssertGreaterThan(q4.0, q2.0)
        XCTAssertGreaterThan(q8.1, q4.1); XCTAssertGreaterThan(q4.1, q2.1)
        let table = QuantReport.markdown(report)
        XCTAssertTrue(table.contains("| Q4_K_M | 100.0 | 10.00 | 20.0500 | 0.050000 | 0.250000 | 95.00 % |"))
        let decoded = try JSONDecoder().decode(QuantReport.Report.self, from: QuantReport.json(report))
        XCTAssertEqual(decoded, report)
    }

    /// Cosine statistics and nearest-neighbour agreement on hand-checked vectors.
    func testEmbeddingAgreementFigures() {
        let source: [[Float]] = [[1, 0], [0, 1], [1, 1], [1, -1]]
        let quantized: [[Float]] = [[1, 0], [0, 2], [1, 0], [1, -1]]   // cosines 1, 1, 1/√2, 1
        let a = QuantReport.EmbeddingAgreement(source: source, quantized: quantized)
        XCTAssertEqual(a.meanCosine, (3 + 0.5.squareRoot()) / 4, accuracy: 1e-6)
        XCTAssertEqual(a.minCosine, 0.5.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(a.p1Cosine, a.minCosine)
        // Nearest others: source 0→2, 1→2, 2→0, 3→0; quantized 0→2, 1→0, 2→0, 3→0 (ties: first).
        XCTAssertEqual(a.top1Retrieval, 0.75)
    }

    /// The embedding-model report on the real all-MiniLM-L6-v2 (converted to F32 here) over the
    /// committed sentence set: Q8_0 keeps the embeddings (cosine > 0.999, the bar for a
    /// converted Q8_0 MiniLM), Q4_0 loses more, and the files and plot come out.
    func testEmbeddingQuantReportOnMiniLM() throws {
        let checkpoint = try RealModel.minilm.url()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quant-report-minilm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("minilm-f32.gguf")
        try HFConverter(directory: checkpoint).convert(to: source, outputType: .f32)
        XCTAssertTrue(try QuantReport.isEmbeddingModel(source))
        let texts = try String(contentsOf: Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/embedding-texts/sentences.txt"),
                               encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(texts.count, 124)
        let report = try QuantReport.runEmbedding(source: source, texts: texts, textName: "sentences.txt", types: [.q8_0, .q4_0],
                                                  directory: dir.appendingPathComponent("report"))
        XCTAssertEqual(report.embeddingTexts, texts.count)
        XCTAssertEqual(report.entries.map(\.type), ["Q8_0", "Q4_0"])
        let q8 = try XCTUnwrap(report.entries[0].embedding), q4 = try XCTUnwrap(report.entries[1].embedding)
        XCTAssertGreaterThan(q8.meanCosine, 0.999)
        XCTAssertGreaterThan(q8.meanCosine, q4.meanCosine)
        XCTAssertGreaterThan(q4.meanCosine, 0.95)
        for c in [q8, q4] {
            XCTAssertLessThanOrEqual(c.minCosine, c.p1Cosine)
            XCTAssertLessThanOrEqual(c.p1Cosine, c.meanCosine)
            XCTAssertLessThan(c.meanCosine, 1)
        }
        XCTAssertGreaterThan(q8.top1Retrieval, 0.9)
        XCTAssertGreaterThanOrEqual(q8.top1Retrieval, q4.top1Retrieval)
        XCTAssertGreaterThan(report.sourceBitsPerWeight, 31.9)
        XCTAssert((8.5..<9.5).contains(report.entries[0].bitsPerWeight), "\(report.entries[0].bitsPerWeight)")
        XCTAssert((4.5..<report.entries[0].bitsPerWeight - 1).contains(report.entries[1].bitsPerWeight), "\(report.entries[1].bitsPerWeight)")
        XCTAssertGreaterThan(report.entries[0].fileBytes, report.entries[1].fileBytes)
        for e in report.entries {
            XCTAssertFalse(e.tensors.isEmpty)
            for t in e.tensors where t.type != "F32" {
                XCTAssertGreaterThan(t.rmse, 0, t.name); XCTAssertGreaterThanOrEqual(t.maxError, t.rmse, t.name)
            }
        }
        XCTAssertLessThan(report.entries[0].tensors.map(\.rmse).max()!, report.entries[1].tensors.map(\.rmse).max()!)
        try QuantReport.write(report, to: dir)
        XCTAssertEqual(report.plotName, "size-vs-cosine.svg")
        let svg = try String(contentsOf: dir.appendingPathComponent("size-vs-cosine.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains(">Q8_0</text>") && svg.contains(">Q4_0</text>") && svg.contains("1 − mean cosine"))
        let table = QuantReport.markdown(report)
        XCTAssertTrue(table.contains("| type | size (MiB) | bits/weight | mean cosine |"))
        XCTAssertTrue(table.contains(String(format: "| Q8_0 | %.1f | %.2f | %.6f |", Double(report.entries[0].fileBytes) / 1_048_576,
                                            report.entries[0].bitsPerWeight, q8.meanCosine)))
        let decoded = try JSONDecoder().decode(QuantReport.Report.self, from: QuantReport.json(report))
        XCTAssertEqual(decoded, report)
    }
}
