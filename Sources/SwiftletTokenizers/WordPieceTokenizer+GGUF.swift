import SwiftletFormats
import SwiftletTensor

extension WordPieceTokenizer {
    /// The WordPiece tokenizer of a GGUF file with `tokenizer.ggml.model` = `bert`.
    public init(gguf: GGUFFile) throws {
        try self.init(ggufVocabulary: TokenizerVocabulary(gguf: gguf))
    }

    /// The WordPiece tokenizer of a `bert` vocabulary as GGUF stores it.
    ///
    /// llama.cpp stores a WordPiece vocabulary with word starts marked by U+2581 (`▁the`) and
    /// continuations bare (`ing`, Hugging Face's `##ing`); control tokens (`[CLS]`, `[SEP]` …)
    /// are kept as they are. This maps the vocabulary back to Hugging Face's form so the
    /// tokenizer gives the ids of the checkpoint's own tokenizer. `[CLS]` is `cls_token_id`
    /// (or the BOS token), `[SEP]` the separator (or EOS); the normalizer lower-cases unless
    /// `lowercase` is false, and strips accents as `stripAccents` says (else as it lower-cases).
    public init(ggufVocabulary v: TokenizerVocabulary) throws {
        guard v.model == "bert" else {
            throw SwiftletError.unsupportedTokenizer("tokenizer.ggml.model '\(v.model)' is not a WordPiece (bert) vocabulary")
        }
        guard !v.tokens.isEmpty else { throw SwiftletError.missingMetadata("tokenizer.ggml.tokens (empty)") }
        guard v.tokenTypes.isEmpty || v.tokenTypes.count == v.tokens.count else {
            throw SwiftletError.invalidArgument("tokenizer.ggml.token_type has \(v.tokenTypes.count) entries for \(v.tokens.count) tokens")
        }
        let wordStart = "\u{2581}".utf8
        var vocabulary: [String] = []
        vocabulary.reserveCapacity(v.tokens.count)
        var control: [String] = []
        for (i, token) in v.tokens.enumerated() {
            if !v.tokenTypes.isEmpty && v.tokenTypes[i] == TokenKind.control.rawValue {
                vocabulary.append(token); control.append(token)
            } else if token.utf8.starts(with: wordStart) {
                vocabulary.append(String(decoding: token.utf8.dropFirst(wordStart.count), as: UTF8.self))
            } else {
                vocabulary.append("##" + token)
            }
        }
        func token(_ id: Int32?, _ key: String) throws -> String? {
            guard let id else { return nil }
            guard id >= 0, Int(id) < vocabulary.count else {
                throw SwiftletError.invalidArgument("tokenizer.ggml.\(key) \(id) outside the vocabulary of \(vocabulary.count)")
            }
            return vocabulary[Int(id)]
        }
        guard let unknown = try token(v.unknownID, "unknown_token_id"),
              let cls = try token(v.classifierID, "cls_token_id") ?? token(v.bosID, "bos_token_id"),
              let sep = try token(v.separatorID, "seperator_token_id") ?? token(v.eosID, "eos_token_id") else {
            throw SwiftletError.missingMetadata(
                "tokenizer.ggml.unknown_token_id, cls_token_id (or bos_token_id) and seperator_token_id of a WordPiece vocabulary")
        }
        let lowercase = v.lowercase ?? true
        try self.init(vocabulary: vocabulary, normalization: Normalization(stripAccents: v.stripAccents, lowercase: lowercase),
                      unknownToken: unknown, clsToken: cls, sepToken: sep,
                      padToken: try token(v.paddingID, "padding_token_id") ?? "[PAD]", addedTokens: control)
    }
}

/// The ``Tokenizer`` of a GGUF `bert` vocabulary: ``WordPieceTokenizer`` with llama.cpp's
/// conventions — `addSpecial` wraps the ids in `[CLS]` … `[SEP]`, control tokens written in the
/// text are recognized only with `parseSpecial`, and a piece decodes as its word with a leading
/// space (`▁the` → ` the`) or as a bare continuation.
public struct WordPieceGGUFTokenizer: Tokenizer {
    /// The WordPiece tokenizer itself (Hugging Face's form of the vocabulary).
    public let wordPiece: WordPieceTokenizer
    let core: VocabularyCore

    public init(vocabulary v: TokenizerVocabulary) throws {
        wordPiece = try WordPieceTokenizer(ggufVocabulary: v)
        core = try VocabularyCore(v)
    }

    public var vocabularySize: Int { wordPiece.vocabularySize }
    public var bosID: Int32? { wordPiece.clsID }
    public var eosID: Int32? { wordPiece.sepID }
    public var endOfGenerationIDs: Set<Int32> { [wordPiece.sepID] }
    public var addsBOS: Bool { true }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        let ids = wordPiece.tokenize(text, limit: .max, matchingAddedTokens: parseSpecial)
        return addSpecial ? [wordPiece.clsID] + ids + [wordPiece.sepID] : ids
    }

    public func pieceBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8] {
        guard id >= 0, Int(id) < core.vocabularySize else { return [] }
        let text = core.text(Int(id))
        switch core.kinds[Int(id)] {
        case .control, .unknown: return renderSpecial ? Array(text) : []
        case .userDefined: return Array(text)
        default:
            let wordStart: [UInt8] = [0xE2, 0x96, 0x81]
            return text.starts(with: wordStart) ? [0x20] + text.dropFirst(3) : Array(text)
        }
    }
}
