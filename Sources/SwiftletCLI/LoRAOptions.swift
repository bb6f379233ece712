import ArgumentParser
import Foundation
import Swiftlet

/// llama.cpp's `--lora FNAME[,FNAME…]` and `--lora-scaled FNAME:SCALE[,…]`, shared by the
/// commands that run a model.
struct LoRAOptions: ParsableArguments {
    @Option(name: .customLong("lora"), help: "LoRA adapter GGUF applied at scale 1 (comma-separated or repeated for several).")
    var lora: [String] = []
    @Option(name: .customLong("lora-scaled"), help: "LoRA adapter with its scale, FNAME:SCALE (comma-separated or repeated).")
    var loraScaled: [String] = []

    /// The adapters in the order given (all `--lora` first, then `--lora-scaled`, as llama.cpp).
    func adapters() throws -> [ScaledAdapter] {
        var list: [ScaledAdapter] = []
        for item in lora.flatMap({ $0.split(separator: ",").map(String.init) }) {
            list.append(ScaledAdapter(try LoRAAdapter(url: URL(fileURLWithPath: item))))
        }
        for item in loraScaled.flatMap({ $0.split(separator: ",").map(String.init) }) {
            guard let colon = item.lastIndex(of: ":"), let scale = Float(item[item.index(after: colon)...]) else {
                throw ValidationError("--lora-scaled takes FNAME:SCALE, got '\(item)'")
            }
            list.append(ScaledAdapter(try LoRAAdapter(url: URL(fileURLWithPath: String(item[..<colon]))), scale: scale))
        }
        return list
    }
}
