import SwiftletTensor

/// A text ⇄ token-id mapping of a language model.
public protocol Tokenizer: Sendable {
    /// Number of entries in the vocabulary.
    var vocabularySize: Int { get }
    /// Beginning-of-sequence id, if the vocabulary has one.
    var bosID: Int32? { get }
    /// End-of-sequence id, if the vocabulary has one.
    var eosID: Int32? { get }
    /// Ids that end generation: EOS and end-of-turn markers (`<|im_end|>`, `<end_of_turn>`, …).
    var endOfGenerationIDs: Set<Int32> { get }
    /// Whether `encode(_:addSpecial:parseSpecial:)` with `addSpecial` prepends BOS.
    var addsBOS: Bool { get }

    /// Token ids of `text`.
    /// - Parameters:
    ///   - addSpecial: add the model's default BOS/EOS (from the file's metadata).
    ///   - parseSpecial: recognize control tokens written in the text (e.g. `<|im_start|>`);
    ///     when false they are tokenized as plain text. User-defined tokens are always recognized.
    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32]

    /// The bytes token `id` stands for. Control tokens give their text only when `renderSpecial`;
    /// ids outside the vocabulary give no bytes.
    func pieceBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8]

    /// Whether decoding drops one leading space of the text: the space a SentencePiece
    /// vocabulary with `add_space_prefix` put in front when encoding.
    var decodeDropsLeadingSpace: Bool { get }
}

extension Tokenizer {
    /// Token ids of `text` with the model's default BOS/EOS and special tokens as plain text.
    public func encode(_ text: String) -> [Int32] { encode(text, addSpecial: true, parseSpecial: false) }

    /// The text of `ids`. Bytes that are not valid UTF-8 become U+FFFD.
    /// - Parameter renderSpecial: write control tokens (BOS, `<|im_start|>` …) as their text.
    public func decode(_ ids: [Int32], renderSpecial: Bool = true) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            let piece = pieceBytes(id, renderSpecial: renderSpecial)
            if bytes.isEmpty && decodeDropsLeadingSpace && piece.first == 0x20 {
                bytes.append(contentsOf: piece.dropFirst())
            } else {
                bytes.append(contentsOf: piece)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var decodeDropsLeadingSpace: Bool { false }

    /// The text of one token (lossy if the token is part of a multi-byte character).
    public func piece(_ id: Int32, renderSpecial: Bool = true) -> String {
        String(decoding: pieceBytes(id, renderSpecial: renderSpecial), as: UTF8.self)
    }

    /// Whether `id` ends generation.
    public func isEndOfGeneration(_ id: Int32) -> Bool { endOfGenerationIDs.contains(id) }
}

/// Builds the right tokenizer for a vocabulary.
public enum Tokenizers {
    /// The tokenizer of `tokenizer.ggml.model`: byte-level BPE (`gpt2`), SentencePiece (`llama`),
    /// WordPiece (`bert`) or Gemma 4's BPE over UTF-8 characters (`gemma4`).
    /// Other models throw `SwiftletError.unsupportedTokenizer`.
    public static func load(vocabulary: TokenizerVocabulary) throws -> any Tokenizer {
        switch vocabulary.model {
        case "gpt2", "gemma4": return try BPETokenizer(vocabulary: vocabulary)
        case "llama": return try SentencePieceTokenizer(vocabulary: vocabulary)
        case "bert": return try WordPieceGGUFTokenizer(vocabulary: vocabulary)
        default:
            throw SwiftletError.unsupportedTokenizer("tokenizer.ggml.model '\(vocabulary.model)' (supported: gpt2, llama, bert, gemma4)")
        }
    }
}

/// Decodes UTF-8 `bytes[range]` into scalars and the byte offset where each scalar starts
/// (`offsets` gets one extra entry: the end). Input from a Swift `String` is valid UTF-8.
func decodeScalars(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                   scalars: inout [UInt32], offsets: inout [Int]) {
    scalars.removeAll(keepingCapacity: true)
    offsets.removeAll(keepingCapacity: true)
    var i = range.lowerBound
    let end = range.upperBound
    while i < end {
        offsets.append(i)
        let b0 = UInt32(bytes[i])
        if b0 < 0x80 {
            scalars.append(b0); i += 1
        } else if b0 < 0xE0, i + 1 < end {
            scalars.append((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)); i += 2
        } else if b0 < 0xF0, i + 2 < end {
            scalars.append((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)); i += 3
        } else if i + 3 < end {
            scalars.append((b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
                | UInt32(bytes[i + 3] & 0x3F)); i += 4
        } else {
            scalars.append(0xFFFD); i = end
        }
    }
    offsets.append(end)
}

/// Length of the UTF-8 sequence starting with `lead` (1 for continuation/invalid bytes).
@inline(__always)
func utf8SequenceLength(_ lead: UInt8) -> Int {
    if lead < 0x80 { return 1 }
    if lead >= 0xF0 { return 4 }
    if lead >= 0xE0 { return 3 }
    if lead >= 0xC0 { return 2 }
    return 1
}
