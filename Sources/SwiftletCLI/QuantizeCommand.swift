import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet quantize [options] IN.gguf [OUT.gguf] TYPE [THREADS]`: llama-quantize's arguments,
/// type names and output (byte-identical files).
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a GGUF model as llama-quantize does (same types, mixes and bytes).",
        discussion: "Types: " + QuantizationMix.allCases.map(\.description).joined(separator: " ")
            + " (Q3_K, Q4_K, Q5_K: the _M mixes). Without OUT the output is ggml-model-TYPE.gguf beside IN.")

    @Flag(help: "Allow requantizing tensors that are already quantized (quality suffers).")
    var allowRequantize = false
    @Flag(help: "Leave output.weight un(re)quantized.")
    var leaveOutputTensor = false
    @Flag(help: "Disable the k-quant mixtures: every tensor gets the type's default.")
    var pure = false
    @Option(help: "Importance matrix file (llama-imatrix's GGUF or legacy .dat).")
    var imatrix: String?
    @Option(help: "ggml type for output.weight.")
    var outputTensorType: String?
    @Option(help: "ggml type for the token embeddings.")
    var tokenEmbeddingType: String?
    @Argument(help: "IN.gguf [OUT.gguf] TYPE [THREADS]")
    var arguments: [String] = []

    func run() throws {
        guard arguments.count >= 2 else { throw ValidationError("expected IN.gguf [OUT.gguf] TYPE [THREADS]") }
        let input = arguments[0]
        var rest = Array(arguments.dropFirst())
        let output: String
        let mix: QuantizationMix
        if let m = QuantizationMix(name: rest[0]) {
            mix = m
            output = (input as NSString).deletingLastPathComponent.isEmpty ? "ggml-model-\(m).gguf"
                : ((input as NSString).deletingLastPathComponent as NSString).appendingPathComponent("ggml-model-\(m).gguf")
            rest.removeFirst()
        } else {
            output = rest.removeFirst()
            guard let name = rest.first else { throw ValidationError("missing type") }
            guard let m = QuantizationMix(name: name) else {
                throw ValidationError("invalid type '\(name)' (one of: \(QuantizationMix.allCases.map(\.description).joined(separator: " ")))")
            }
            mix = m
            rest.removeFirst()
        }
        var options = Quantizer.Options(mix: mix)
        if let t = rest.first {
            guard let n = Int(t), n >= 0 else { throw ValidationError("invalid thread count '\(t)'") }
            options.threads = n
            rest.removeFirst()
        }
        guard rest.isEmpty else { throw ValidationError("unexpected arguments: \(rest.joined(separator: " "))") }
        options.allowRequantize = allowRequantize
        options.leaveOutputTensor = leaveOutputTensor
        options.pure = pure
        options.outputTensorType = try outputTensorType.map(parseType)
        options.tokenEmbeddingType = try tokenEmbeddingType.map(parseType)
        if let imatrix {
            let m = try ImportanceMatrix(contentsOf: URL(fileURLWithPath: imatrix))
            options.importanceMatrix = m
            options.importanceMatrixPath = imatrix
            printError("loaded \(m.entries.count) importance matrix entries from \(imatrix) computed on \(m.chunkCount) chunks")
        }
        printError("quantizing '\(input)' to '\(output)' as \(mix)" + (options.threads > 0 ? " using \(options.threads) threads" : ""))
        let bar = ProgressBar()
        let report = try Quantizer.quantize(input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: output),
                                            options: options) { bar.update($0) }
        bar.finish()
        let fallbacks = report.plan.entries.filter(\.fellBack).count
        if fallbacks > 0 { printError("\(fallbacks) of \(report.plan.entries.count) tensor(s) required fallback quantization") }
        print(String(format: "model size = %.2f MiB, quant size = %.2f MiB, time = %.2f s",
                     Double(report.inputBytes) / 1048576, Double(report.outputBytes) / 1048576, report.seconds))
    }
}

/// A ggml type name as llama-quantize's `parse_ggml_type` accepts it (case-insensitive).
func parseType(_ name: String) throws -> GGMLType {
    guard let t = GGMLType(name: name) else { throw ValidationError("invalid ggml_type '\(name)'") }
    return t
}

/// One stderr line redrawn per tensor: tensor i/N, MB/s, ETA.
final class ProgressBar {
    private var drawn = false
    private let interactive = isatty(2) != 0

    func update(_ p: Quantizer.Progress) {
        let width = 30, filled = p.bytesTotal == 0 ? width : width * p.bytesDone / p.bytesTotal
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let rate = p.elapsed > 0 ? Double(p.bytesDone) / 1e6 / p.elapsed : 0
        let eta = p.bytesDone > 0 ? p.elapsed * Double(p.bytesTotal - p.bytesDone) / Double(p.bytesDone) : 0
        let line = String(format: "[%@] tensor %d/%d %.0f MB/s ETA %.1fs %@", bar, p.tensorIndex + 1, p.tensorCount, rate, eta, p.tensorName)
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            drawn = true
        } else if p.tensorIndex + 1 == p.tensorCount || (p.tensorIndex + 1) % 25 == 0 {
            printError(line)
        }
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
