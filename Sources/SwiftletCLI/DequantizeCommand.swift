import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet dequantize IN.gguf OUT.gguf [--type F32|F16]`: every quantized weight back to F32 (or
/// F16), written as llama-quantize writes that type with `--allow-requantize`.
struct DequantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dequantize", abstract: "Dequantize a GGUF model to F32 or F16.")

    @Argument(help: "Quantized GGUF file.")
    var input: String
    @Argument(help: "Output GGUF file.")
    var output: String
    @Option(help: "F32 or F16.")
    var type: String = "F32"
    @Option(name: [.short, .customLong("threads")], help: "Threads (default: physical cores).")
    var t: Int = 0

    func run() throws {
        guard let mix = QuantizationMix(name: type), mix == .f32 || mix == .f16 else {
            throw ValidationError("--type must be F32 or F16, not '\(type)'")
        }
        var options = Quantizer.Options(mix: mix)
        options.allowRequantize = true
        options.threads = t
        let bar = ProgressBar()
        let report = try Quantizer.quantize(input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: output),
                                            options: options) { bar.update($0) }
        bar.finish()
        print(String(format: "wrote %@ (%.2f MiB) in %.2f s", output, Double(report.outputBytes) / 1048576, report.seconds))
    }
}
