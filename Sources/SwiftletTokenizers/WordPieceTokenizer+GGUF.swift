import SwiftletFormats
import SwiftletCore

extension WordPieceTokenizer {
    /// The WordPiece tokenizer of a GGUF file with `tokenizer.ggml.model` = `bert`.
    ///
    /// llama.cpp stores a WordPiece vocabulary with word starts marked by U+2581 (`▁the`) and
    /// continuations bare (`ing`, Hugging Face's `##ing`); control tokens (`[CLS]`, `[SEP]` …)
    /// are kept as they are. This maps the vocabulary back to Hugging Face's form so the
    /// tokenizer gives the ids of the checkpoint's own tokenizer. `[CLS]` is the BOS token,
    /// `[SEP]` the separator (or EOS); `tokenizer.ggml.normalizer.lowercase` and
    /// `.strip_accents` set the normalizer (lower-casing when absent, as BERT-uncased).
    public init(gguf: GGUFFile) throws {
        let model = try gguf.string("tokenizer.ggml.model")
        guard model == "bert" else {
            throw SwiftletError.unsupportedTokenizer("tokenizer.ggml.model '\(model)' is not a WordPiece (bert) vocabulary")
        }
        let stored = try gguf.stringArray("tokenizer.ggml.tokens")
        guard !stored.isEmpty else { throw SwiftletError.missingMetadata("tokenizer.ggml.tokens (empty)") }
        let types = try gguf.int32ArrayIfPresent("tokenizer.ggml.token_type") ?? []
        guard types.isEmpty || types.count == stored.count else {
            throw SwiftletError.invalidArgument("tokenizer.ggml.token_type has \(types.count) entries for \(stored.count) tokens")
        }
        let wordStart = "\u{2581}".utf8
        var vocabulary: [String] = []
        vocabulary.reserveCapacity(stored.count)
        var control: [String] = []
        for (i, token) in stored.enumerated() {
            if !types.isEmpty && types[i] == TokenKind.control.rawValue {
                vocabulary.append(token); control.append(token)
            } else if token.utf8.starts(with: wordStart) {
                vocabulary.append(String(decoding: token.utf8.dropFirst(wordStart.count), as: UTF8.self))
            } else {
                vocabulary.append("##" + token)
            }
        }
        func token(_ key: String) throws -> String? {
            guard let id = try gguf.intIfPresent(key) else { return nil }
            guard id >= 0, id < vocabulary.count else {
                throw SwiftletError.invalidArgument("\(key) \(id) outside the vocabulary of \(vocabulary.count)")
            }
            return vocabulary[id]
        }
        guard let unknown = try token("tokenizer.ggml.unknown_token_id"), let cls = try token("tokenizer.ggml.bos_token_id"),
              let sep = try token("tokenizer.ggml.seperator_token_id") ?? token("tokenizer.ggml.eos_token_id") else {
            throw SwiftletError.missingMetadata("tokenizer.ggml.unknown_token_id, bos_token_id and seperator_token_id of a WordPiece vocabulary")
        }
        let lowercase = try gguf.boolIfPresent("tokenizer.ggml.normalizer.lowercase") ?? true
        let normalization = Normalization(stripAccents: try gguf.boolIfPresent("tokenizer.ggml.normalizer.strip_accents"),
                                          lowercase: lowercase)
        try self.init(vocabulary: vocabulary, normalization: normalization, unknownToken: unknown, clsToken: cls,
                      sepToken: sep, padToken: try token("tokenizer.ggml.padding_token_id") ?? "[PAD]", addedTokens: control)
    }
}
