import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet tokenize`: the token ids of a text, like llama.cpp's `llama-tokenize`.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text.",
        discussion: """
            MODEL is a GGUF file (byte-level BPE or SentencePiece tokenizer), a WordPiece \
            tokenizer.json, or a directory with one (or with vocab.txt). Put `--` before a TEXT that starts with `-`.
            """)

    @Option(name: .shortAndLong, help: "GGUF file, tokenizer.json, or tokenizer directory.")
    var model: String

    @Option(name: [.customShort("f"), .long], help: "Read the text from this file instead of TEXT.")
    var file: String?

    @Flag(name: .long, help: "Do not add the model's BOS (or [CLS]/[SEP] for WordPiece).")
    var noBos = false

    @Flag(name: .long, help: "Recognize control tokens written in the text (e.g. <|im_start|>).")
    var parseSpecial = false

    @Flag(name: .long, help: "Print only the ids, as one JSON array.")
    var ids = false

    @Flag(name: .long, help: "Also time construction and encoding (throughput over the text).")
    var benchmark = false

    @Argument(help: "The text to tokenize.")
    var text: String?

    func run() throws {
        let input: String
        if let file {
            // Lossy on purpose: invalid UTF-8 is tokenized as U+FFFD, as the tokenizers see it.
            input = String(decoding: try MappedFile.readRegularFile(URL(fileURLWithPath: file), limit: maxTextFileBytes), as: UTF8.self)
        } else if let text {
            input = text
        } else {
            throw ValidationError("give a TEXT or --file")
        }

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw SwiftletError.io(path: model, reason: "no such file or directory")
        }
        let url = URL(fileURLWithPath: model)
        let start = Date()
        let tokens: [TokenID]
        let piece: (Int32) -> String
        let encodeOnce: () -> Int
        if isDirectory.boolValue || url.pathExtension == "json" {
            let tokenizer = try isDirectory.boolValue ? WordPieceTokenizer(directory: url) : WordPieceTokenizer(tokenizerJSON: url)
            let addSpecial = !noBos
            let encode = { addSpecial ? tokenizer.encode(input, maxLength: Int.max) : tokenizer.tokenize(input) }
            report(start, "construction")
            tokens = encode()
            piece = { tokenizer.token($0) ?? "" }
            encodeOnce = { encode().count }
        } else {
            let tokenizer = try Tokenizers.load(gguf: GGUFFile(url: url))
            let (addSpecial, parseSpecial) = (!noBos, self.parseSpecial)
            report(start, "construction (GGUF metadata read + tokenizer build)")
            tokens = tokenizer.encode(input, addSpecial: addSpecial, parseSpecial: parseSpecial)
            piece = { tokenizer.piece($0) }
            encodeOnce = { tokenizer.encode(input, addSpecial: addSpecial, parseSpecial: parseSpecial).count }
        }

        if benchmark { runBenchmark(bytes: input.utf8.count, encodeOnce) }
        if ids {
            print("[" + tokens.map(String.init).joined(separator: ", ") + "]")
        } else {
            for id in tokens { print(String(format: "%6d", id) + " -> " + piece(id).debugDescription) }
        }
    }

    private func report(_ start: Date, _ what: String) {
        if benchmark {
            FileHandle.standardError.write(String(format: "%@: %.1f ms\n", what, Date().timeIntervalSince(start) * 1e3).data(using: .utf8)!)
        }
    }

    private func runBenchmark(bytes: Int, _ encodeOnce: () -> Int) {
        _ = encodeOnce()  // warm-up (character-class tables)
        var runs = 0
        var tokenCount = 0
        let start = Date()
        repeat {
            tokenCount = encodeOnce()
            runs += 1
        } while Date().timeIntervalSince(start) < 1.0
        let seconds = Date().timeIntervalSince(start)
        let mbPerSecond = Double(bytes * runs) / seconds / 1e6
        FileHandle.standardError.write(String(
            format: "encode: %d bytes -> %d tokens, %d runs in %.2f s: %.2f MB/s, %.0f tokens/s\n",
            bytes, tokenCount, runs, seconds, mbPerSecond, Double(tokenCount * runs) / seconds).data(using: .utf8)!)
    }
}
