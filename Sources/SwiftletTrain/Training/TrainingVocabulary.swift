import Foundation
import SwiftletFormats
import SwiftletTokenizers

/// The tokenizer a model is trained with, and the `tokenizer.*` metadata its GGUF will carry.
public struct TrainingVocabulary: Sendable {
    /// `tokenizer.*` keys in file order, copied verbatim into the exported GGUF.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Encodes the corpus (no special tokens added).
    public let tokenizer: any Tokenizer
    /// Number of tokens (rows of the embedding).
    public let size: Int

    /// Every `tokenizer.*` key of an existing GGUF (e.g. SmolLM2's byte-level BPE), vocabulary kept.
    public init(gguf: GGUFFile) throws {
        metadata = gguf.metadataKeys.filter { $0.hasPrefix("tokenizer.") }.map { ($0, gguf.metadata[$0]!) }
        let vocabulary = try TokenizerVocabulary(gguf: gguf)
        tokenizer = try Tokenizers.load(vocabulary: vocabulary)
        size = vocabulary.tokens.count
    }

    /// A byte-level vocabulary: token i is byte i (in GPT-2's byte-to-character spelling), with no
    /// merges, plus `<|endoftext|>` (id 256) as BOS/EOS. llama.cpp and Swiftlet both load it as a
    /// `gpt2` BPE tokenizer that maps every byte of the text to its own token.
    public static func byteLevel() throws -> TrainingVocabulary {
        var tokens = (0..<256).map { byteCharacter(UInt8($0)) }
        tokens.append("<|endoftext|>")
        var types = [Int32](repeating: 1, count: 256)
        types.append(3) // control
        let entries: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("gpt-2")),
            ("tokenizer.ggml.tokens", .array(.string(tokens))),
            ("tokenizer.ggml.token_type", .array(.int32(types))),
            ("tokenizer.ggml.merges", .array(.string([]))),
            ("tokenizer.ggml.bos_token_id", .uint32(256)),
            ("tokenizer.ggml.eos_token_id", .uint32(256)),
            ("tokenizer.ggml.add_bos_token", .bool(false)),
            ("tokenizer.ggml.add_eos_token", .bool(false)),
        ]
        let vocabulary = TokenizerVocabulary(model: "gpt2", pre: "gpt-2", tokens: tokens, tokenTypes: types,
                                             merges: [], bosID: 256, eosID: 256, addBOS: false, addEOS: false)
        return TrainingVocabulary(metadata: entries, tokenizer: try Tokenizers.load(vocabulary: vocabulary), size: 257)
    }

    private init(metadata: [(key: String, value: GGUFValue)], tokenizer: any Tokenizer, size: Int) {
        self.metadata = metadata; self.tokenizer = tokenizer; self.size = size
    }

    /// GPT-2's reversible byte → printable character map.
    static func byteCharacter(_ b: UInt8) -> String {
        let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
        if printable { return String(UnicodeScalar(b)) }
        // The others, in byte order, take the code points from 256 up.
        var n = 0
        for x in 0..<Int(b) {
            let p = (33...126).contains(x) || (161...172).contains(x) || (174...255).contains(x)
            if !p { n += 1 }
        }
        return String(UnicodeScalar(UInt32(256 + n))!)
    }

    /// The corpus as token ids, without special tokens.
    public func encode(_ text: String) -> [Int32] {
        tokenizer.encode(text, addSpecial: false, parseSpecial: false)
    }
}
