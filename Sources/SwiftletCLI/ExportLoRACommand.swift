import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet export-lora -m BASE --lora A.gguf -o MERGED.gguf`: llama-export-lora's merge.
struct ExportLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-lora",
        abstract: "Merge LoRA adapters into a model's weights and write a new GGUF (llama-export-lora's output; requantize with `quantize`).")

    @Option(name: [.short, .customLong("model")], help: "Base GGUF model.")
    var m: String
    @OptionGroup var lora: LoRAOptions
    @Option(name: [.short, .customLong("output")], help: "Output GGUF file.")
    var o: String

    func run() throws {
        let adapters = try lora.adapters()
        guard !adapters.isEmpty else { throw ValidationError("give at least one --lora or --lora-scaled adapter") }
        let writer = try LoRAAdapter.merge(adapters, into: GGUFFile(url: URL(fileURLWithPath: m)))
        try writer.write(to: URL(fileURLWithPath: o))
        printError("export-lora: merged \(adapters.count) adapter(s) into \(writer.tensors.count) tensors, wrote \(o)")
    }
}
