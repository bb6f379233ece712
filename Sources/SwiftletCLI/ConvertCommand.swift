import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet convert DIR OUT.gguf [--outtype f32|f16|bf16|q8_0]`: a Hugging Face safetensors
/// checkpoint to GGUF, with the metadata and tensors llama.cpp's `convert_hf_to_gguf.py` writes.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Hugging Face safetensors checkpoint (BERT, Llama family) to GGUF.",
        discussion: """
            DIR holds config.json, model.safetensors (or model.safetensors.index.json and its shards) \
            and tokenizer.json. The file gets llama.cpp's architecture keys, tensor names and layout, \
            tokenizer metadata and authorship keys, as convert_hf_to_gguf.py writes them. Matrices take \
            --outtype; vectors, norms and position embeddings stay F32.
            """)

    @Argument(help: "Checkpoint folder.")
    var directory: String

    @Argument(help: "Output GGUF file.")
    var output: String

    @Option(name: .long, help: "Tensor type of the matrices: f32, f16, bf16, q8_0, or auto (the checkpoint's 16-bit type, else f16).")
    var outtype: String = "auto"

    func run() throws {
        let converter = try HFConverter(directory: URL(fileURLWithPath: directory))
        let type: HFConverter.OutputType
        if outtype.lowercased() == "auto" {
            type = try converter.automaticOutputType()
        } else if let named = HFConverter.OutputType(rawValue: outtype.lowercased()) {
            type = named
        } else {
            throw ValidationError("unknown --outtype '\(outtype)' (expected f32, f16, bf16, q8_0 or auto)")
        }
        let start = Date()
        try converter.convert(to: URL(fileURLWithPath: output), outputType: type) { done, total in
            let width = 30, filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let elapsed = Date().timeIntervalSince(start)
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            FileHandle.standardError.write(Data(String(format: "\r[%@] tensor %d/%d  %.1fs elapsed, ETA %.1fs", bar, done, total, elapsed, eta).utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        }
        FileHandle.standardError.write(Data("convert: \(converter.huggingFaceArchitecture) -> \(converter.architecture.rawValue) \(type.rawValue): \(output)\n".utf8))
    }
}
