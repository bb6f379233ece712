import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet dump-activations`: writes every intermediate tensor of one forward pass, for
/// comparing Swiftlet with another implementation (e.g. llama.cpp's graph eval callback) op by op.
struct DumpActivationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-activations",
        abstract: "Write the intermediate tensors of one forward pass (debugging).",
        discussion: """
            Evaluates the token ids as one batch from position 0 and writes each tensor as raw \
            little-endian f32 to OUTPUT/<name>.f32 (names as in llama.cpp's graph, e.g. \
            attn_norm-0, Qcur-0, kqv_out-0, ffn_out-0, l_out-0; result_output-<i> for the logits).
            """,
        shouldDisplay: false)

    @Option(name: .shortAndLong, help: "GGUF model file.")
    var model: String

    @Option(name: .long, help: "Comma-separated token ids.")
    var ids: String

    @Option(name: .shortAndLong, help: "Output directory (created if missing).")
    var output: String

    @OptionGroup var attention: AttentionOptions

    func run() throws {
        let tokens = try ids.split(separator: ",").map { part -> TokenID in
            guard let id = TokenID(part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--ids: '\(part)' is not a token id")
            }
            return id
        }
        let kv = try attention.resolved()
        let transformer = try Transformer.load(url: URL(fileURLWithPath: model), contextLength: max(tokens.count, 1),
                                               cacheType: kv.key, valueCacheType: kv.value, flashAttention: kv.flashAttention)
        let directory = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var failure: Error?
        func write(_ name: String, _ values: UnsafeBufferPointer<Float>) {
            do { try Data(buffer: values).write(to: directory.appendingPathComponent("\(name).f32")) } catch { failure = failure ?? error }
        }
        transformer.activationTap = { name, values in write(name, values) }
        try tokens.withUnsafeBufferPointer { p in
            try transformer.evaluate(p, at: 0, logits: .all) { i, logits in write("result_output-\(i)", logits) }
        }
        if let failure { throw failure }
        print("wrote \(try FileManager.default.contentsOfDirectory(atPath: output).count) tensors to \(output)")
    }
}
