import SwiftletFormats
import SwiftletTensor

extension TokenizerVocabulary {
    /// Reads the `tokenizer.*` metadata of a GGUF file.
    public init(gguf: GGUFFile) throws {
        func id(_ key: String) throws -> Int32? {
            guard let v = try gguf.intIfPresent(key) else { return nil }
            guard let i = Int32(exactly: v) else { throw SwiftletError.invalidArgument("\(key) = \(v) is not a token id") }
            return i
        }
        self.init(
            model: try gguf.string("tokenizer.ggml.model"),
            pre: try gguf.stringIfPresent("tokenizer.ggml.pre"),
            tokens: try gguf.stringArray("tokenizer.ggml.tokens"),
            scores: try gguf.floatArrayIfPresent("tokenizer.ggml.scores") ?? [],
            tokenTypes: try gguf.int32ArrayIfPresent("tokenizer.ggml.token_type") ?? [],
            merges: try gguf.stringArrayIfPresent("tokenizer.ggml.merges") ?? [],
            bosID: try id("tokenizer.ggml.bos_token_id"),
            eosID: try id("tokenizer.ggml.eos_token_id"),
            unknownID: try id("tokenizer.ggml.unknown_token_id"),
            paddingID: try id("tokenizer.ggml.padding_token_id"),
            addBOS: try gguf.boolIfPresent("tokenizer.ggml.add_bos_token"),
            addEOS: try gguf.boolIfPresent("tokenizer.ggml.add_eos_token"),
            addSpacePrefix: try gguf.boolIfPresent("tokenizer.ggml.add_space_prefix"),
            chatTemplate: try gguf.stringIfPresent("tokenizer.chat_template"),
            architecture: gguf.architecture)
        separatorID = try id("tokenizer.ggml.seperator_token_id")
        classifierID = try id("tokenizer.ggml.cls_token_id")
        lowercase = try gguf.boolIfPresent("tokenizer.ggml.normalizer.lowercase")
        stripAccents = try gguf.boolIfPresent("tokenizer.ggml.normalizer.strip_accents")
    }
}

extension Tokenizers {
    /// The tokenizer of a GGUF file by `tokenizer.ggml.model`: byte-level BPE, SentencePiece,
    /// WordPiece or Gemma 4's BPE.
    public static func load(gguf: GGUFFile) throws -> any Tokenizer {
        try load(vocabulary: TokenizerVocabulary(gguf: gguf))
    }
}

extension BPETokenizer {
    /// The byte-level BPE tokenizer of a GGUF file.
    public init(gguf: GGUFFile) throws { try self.init(vocabulary: TokenizerVocabulary(gguf: gguf)) }
}

extension SentencePieceTokenizer {
    /// The SentencePiece tokenizer of a GGUF file.
    public init(gguf: GGUFFile) throws { try self.init(vocabulary: TokenizerVocabulary(gguf: gguf)) }
}
