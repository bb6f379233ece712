import Foundation
import SwiftletTensor
import SwiftletFormats

/// BERT's WordPiece tokenizer as in Hugging Face `tokenizers`: BertNormalizer, BertPreTokenizer,
/// greedy longest-match-first WordPiece with a continuation prefix, `[CLS] … [SEP]`.
///
/// Built from a model directory's `tokenizer.json` (normalizer options, vocabulary, special
/// tokens) or, without one, from `vocab.txt` with BERT-uncased defaults.
public struct WordPieceTokenizer: Sendable {
    /// BertNormalizer options.
    public struct Normalization: Sendable, Equatable {
        /// Remove control characters and map every whitespace character to a space.
        public var cleanText = true
        /// Put spaces around CJK ideographs so each becomes a word.
        public var handleChineseCharacters = true
        /// Strip accents (NFD, drop nonspacing marks); nil follows `lowercase`.
        public var stripAccents: Bool? = nil
        public var lowercase = true
        public init(cleanText: Bool = true, handleChineseCharacters: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true) {
            self.cleanText = cleanText; self.handleChineseCharacters = handleChineseCharacters
            self.stripAccents = stripAccents; self.lowercase = lowercase
        }
    }

    let table: ByteStringTable
    public let normalization: Normalization
    public let continuingSubwordPrefix: String
    private let subwordPrefixBytes: [UInt8]
    public let maxInputCharactersPerWord: Int
    public let unknownID: Int32
    public let clsID: Int32
    public let sepID: Int32
    public let padID: Int32?
    /// Special tokens recognized verbatim in the input before normalization (`[CLS]`, `[MASK]` …),
    /// longest first.
    let addedTokens: [(text: [UInt8], id: Int32)]
    /// Whether some added token starts with the byte (most bytes start none: one lookup each).
    let startsAddedToken: [Bool]

    /// Number of vocabulary entries.
    public var vocabularySize: Int { table.count }

    /// Builds the tokenizer from token texts by id and the file's options.
    public init(vocabulary: [String], normalization: Normalization = Normalization(),
                unknownToken: String = "[UNK]", clsToken: String = "[CLS]", sepToken: String = "[SEP]",
                padToken: String = "[PAD]", continuingSubwordPrefix: String = "##",
                maxInputCharactersPerWord: Int = 100, addedTokens: [String] = []) throws {
        var t = ByteStringTable(expectedCount: vocabulary.count)
        for var token in vocabulary { _ = token.withUTF8 { t.add(UnsafeRawBufferPointer($0)) } }
        table = t
        func id(_ s: String) throws -> Int32 {
            let i = t.find(Array(s.utf8))
            guard i >= 0 else { throw SwiftletError.unsupportedTokenizer("WordPiece vocabulary lacks \(s)") }
            return i
        }
        unknownID = try id(unknownToken)
        clsID = try id(clsToken)
        sepID = try id(sepToken)
        padID = try? id(padToken)
        self.normalization = normalization
        self.continuingSubwordPrefix = continuingSubwordPrefix
        subwordPrefixBytes = Array(continuingSubwordPrefix.utf8)
        self.maxInputCharactersPerWord = maxInputCharactersPerWord
        let added = try addedTokens.filter { !$0.isEmpty }.map { (text: Array($0.utf8), id: try id($0)) }
        self.addedTokens = added.sorted { $0.text.count > $1.text.count }
        var starts = [Bool](repeating: false, count: 256)
        for token in added { starts[Int(token.text[0])] = true }
        startsAddedToken = starts
    }

    /// Reads `tokenizer.json` in `directory`, or `vocab.txt` when there is none.
    public init(directory: URL) throws {
        let json = directory.appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: json.path) {
            try self.init(tokenizerJSON: json)
            return
        }
        let vocabURL = directory.appendingPathComponent("vocab.txt")
        guard FileManager.default.fileExists(atPath: vocabURL.path) else {
            throw SwiftletError.io(path: directory.path, reason: "no tokenizer.json or vocab.txt")
        }
        let data = try MappedFile.readRegularFile(vocabURL, limit: Self.maxTokenizerJSONBytes)
        var lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        try self.init(vocabulary: lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 },
                      addedTokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].filter { lines.contains($0) })
    }

    /// Largest `tokenizer.json` read (BERT's is 0.5 MB; the largest vocabularies ~30 MB).
    public static let maxTokenizerJSONBytes = 256 << 20

    /// Reads a Hugging Face `tokenizer.json` with a WordPiece model.
    public init(tokenizerJSON url: URL) throws {
        try self.init(tokenizerJSON: MappedFile.readRegularFile(url, limit: Self.maxTokenizerJSONBytes), path: url.path)
    }

    /// Parses the bytes of a WordPiece `tokenizer.json`; `path` names it in errors.
    public init(tokenizerJSON data: Data, path: String) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SwiftletError.malformedFile(path: path, reason: "not a JSON object")
        }
        guard let model = root["model"] as? [String: Any], model["type"] as? String == "WordPiece",
              let vocab = model["vocab"] as? [String: Any] else {
            throw SwiftletError.unsupportedTokenizer("\(path): model is not WordPiece")
        }
        // Ids are 0 ..< vocab.count; one beyond would make every id up to it a placeholder.
        var byID = [String?](repeating: nil, count: vocab.count)
        for (token, value) in vocab {
            guard let number = value as? NSNumber, let id = Int(exactly: number.doubleValue), id >= 0, id < vocab.count else {
                throw SwiftletError.malformedFile(
                    path: path, reason: "id \(value) of token \(token.debugDescription) is outside the vocabulary of \(vocab.count) tokens")
            }
            byID[id] = token
        }
        // Holes (ids never named) get a text no input can produce.
        let tokens = byID.enumerated().map { $0.element ?? "\u{0}<hole \($0.offset)>" }
        var norm = Normalization()
        if let n = root["normalizer"] as? [String: Any] {
            guard n["type"] as? String == "BertNormalizer" else {
                throw SwiftletError.unsupportedTokenizer("\(path): normalizer \(n["type"] ?? "?") (supported: BertNormalizer)")
            }
            norm.cleanText = n["clean_text"] as? Bool ?? true
            norm.handleChineseCharacters = n["handle_chinese_chars"] as? Bool ?? true
            norm.stripAccents = n["strip_accents"] as? Bool
            norm.lowercase = n["lowercase"] as? Bool ?? true
        }
        if let p = root["pre_tokenizer"] as? [String: Any], p["type"] as? String != "BertPreTokenizer" {
            throw SwiftletError.unsupportedTokenizer("\(path): pre_tokenizer \(p["type"] ?? "?") (supported: BertPreTokenizer)")
        }
        let added = (root["added_tokens"] as? [[String: Any]] ?? []).compactMap { $0["content"] as? String }
        try self.init(vocabulary: tokens, normalization: norm,
                      unknownToken: model["unk_token"] as? String ?? "[UNK]",
                      continuingSubwordPrefix: model["continuing_subword_prefix"] as? String ?? "##",
                      maxInputCharactersPerWord: (model["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100,
                      addedTokens: added)
    }

    /// Id of a vocabulary entry, or nil.
    public func id(of token: String) -> Int32? {
        let i = table.find(Array(token.utf8))
        return i >= 0 ? i : nil
    }

    /// Text of a vocabulary entry.
    public func token(_ id: Int32) -> String? {
        guard id >= 0, Int(id) < table.count else { return nil }
        return String(decoding: table.key(Int(id)), as: UTF8.self)
    }

    /// `[CLS] tokens… [SEP]`, the tokens truncated so the whole fits `maxLength` (≥ 2).
    /// Tokenization stops at that length: the rest of a long text is never looked at.
    public func encode(_ text: String, maxLength: Int = 512) -> [Int32] {
        var ids = [clsID]
        ids.append(contentsOf: tokenize(text, limit: max(0, maxLength - 2)))
        ids.append(sepID)
        return ids
    }

    /// WordPiece ids of `text` without `[CLS]`/`[SEP]` or truncation.
    public func tokenize(_ text: String) -> [Int32] { tokenize(text, limit: .max) }

    /// The first `limit` WordPiece ids of `text`. Text is tokenized in pieces that end at word
    /// boundaries, so the work stops soon after `limit` ids (later words cannot change earlier
    /// ids), and the cost is linear in the text.
    public func tokenize(_ text: String, limit: Int) -> [Int32] { tokenize(text, limit: limit, matchingAddedTokens: true) }

    /// As `tokenize(_:limit:)`; without `matchingAddedTokens` the text of `[CLS]` … is plain text.
    func tokenize(_ text: String, limit: Int, matchingAddedTokens: Bool) -> [Int32] {
        var output: [Int32] = []
        var text = text
        text.withUTF8 { bytes in
            // Added (special) tokens are matched verbatim before normalization, longest first.
            var segmentStart = 0, i = matchingAddedTokens ? 0 : bytes.count
            while i < bytes.count, output.count < limit {
                guard startsAddedToken[Int(bytes[i])], let match = addedToken(at: i, in: bytes) else { i += 1; continue }
                tokenizeSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart ..< i]), limit: limit, into: &output)
                output.append(match.id)
                i += match.length
                segmentStart = i
            }
            if output.count < limit {
                tokenizeSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart...]), limit: limit, into: &output)
            }
        }
        if output.count > limit { output.removeSubrange(limit...) }
        return output
    }

    private func addedToken(at i: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (id: Int32, length: Int)? {
        for added in addedTokens where bytes.count - i >= added.text.count {
            var equal = true
            for (k, b) in added.text.enumerated() where bytes[i + k] != b { equal = false; break }
            if equal { return (added.id, added.text.count) }
        }
        return nil
    }

    /// Text between added tokens (valid UTF-8), normalized and tokenized a piece at a time.
    /// Pieces are cut before an ASCII space or punctuation character: a word boundary for the
    /// pre-tokenizer that normalization leaves as it is, so no token spans the cut and NFD
    /// (which reorders marks after a character with combining class 0) is the same per piece.
    private func tokenizeSegment(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int, into output: inout [Int32]) {
        let pieceBytes = 512
        var start = 0
        while start < bytes.count, output.count < limit {
            var end = min(start + pieceBytes, bytes.count)
            while end < bytes.count, !Self.isASCIIBoundary(bytes[end]) { end += 1 }
            let piece = String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< end]), as: UTF8.self)
            tokenizeNormalized(normalizedScalars(piece), into: &output)
            start = end
        }
    }

    @inline(__always)
    private static func isASCIIBoundary(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D
            || (0x21 ... 0x2F).contains(b) || (0x3A ... 0x40).contains(b) || (0x5B ... 0x60).contains(b) || (0x7B ... 0x7E).contains(b)
    }

    /// BertNormalizer: clean text, pad CJK ideographs, strip accents, lower-case.
    public func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: normalizedScalars(text))
        return String(out)
    }

    func normalizedScalars(_ text: String) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.utf8.count)
        var ascii = true
        for s in text.unicodeScalars {
            if normalization.cleanText {
                if s.value == 0 || s.value == 0xFFFD || WordPieceTokenizer.isControl(s) { continue }
                if WordPieceTokenizer.isWhitespace(s) { scalars.append(" "); continue }
            }
            if s.value >= 0x80 { ascii = false }
            if normalization.handleChineseCharacters && WordPieceTokenizer.isChineseCharacter(s.value) {
                scalars.append(" "); scalars.append(s); scalars.append(" ")
                continue
            }
            scalars.append(s)
        }
        if normalization.stripAccents ?? normalization.lowercase, !ascii {
            // NFD (ASCII text is already NFD), then drop nonspacing marks.
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars)
            scalars.removeAll(keepingCapacity: true)
            for s in String(view).decomposedStringWithCanonicalMapping.unicodeScalars
            where !ScalarClass.of(s.value).contains(.nonspacingMark) {
                scalars.append(s)
            }
        }
        if normalization.lowercase {
            // Per character, without context (no final-sigma rule), as Rust's char::to_lowercase.
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(scalars.count)
            for s in scalars {
                if s.value < 0x80 {
                    lowered.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 32)! : s)
                } else if ScalarClass.of(s.value).contains(.changesWhenLowercased) {
                    lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                } else {
                    lowered.append(s)
                }
            }
            scalars = lowered
        }
        return scalars
    }

    /// BertPreTokenizer + WordPiece over normalized text.
    func tokenizeNormalized(_ scalars: [Unicode.Scalar], into output: inout [Int32]) {
        var word: [UInt8] = []
        var wordStarts: [Int] = []  // byte offset of each scalar in `word`
        var candidate: [UInt8] = []
        func flush() {
            if !wordStarts.isEmpty { wordPiece(word, wordStarts, &candidate, into: &output) }
            word.removeAll(keepingCapacity: true); wordStarts.removeAll(keepingCapacity: true)
        }
        for s in scalars {
            if WordPieceTokenizer.isWhitespace(s) { flush(); continue }
            let punctuation = WordPieceTokenizer.isPunctuation(s)
            if punctuation { flush() }
            wordStarts.append(word.count)
            appendUTF8(s, to: &word)
            if punctuation { flush() }
        }
        flush()
    }

    @inline(__always)
    private func appendUTF8(_ s: Unicode.Scalar, to out: inout [UInt8]) {
        let v = s.value
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        } else {
            out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | v >> 12 & 0x3F))
            out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        }
    }

    /// Greedy longest-match-first pieces of one word; the whole word is `[UNK]` when some part
    /// of it matches nothing.
    private func wordPiece(_ word: [UInt8], _ starts: [Int], _ candidate: inout [UInt8], into output: inout [Int32]) {
        if starts.count > maxInputCharactersPerWord { output.append(unknownID); return }
        let firstPiece = output.count
        var startIndex = 0
        while startIndex < starts.count {
            let from = starts[startIndex]
            candidate.removeAll(keepingCapacity: true)
            if startIndex > 0 { candidate.append(contentsOf: subwordPrefixBytes) }
            let head = candidate.count - from
            candidate.append(contentsOf: word[from...])
            // Shorten the candidate one character at a time until the vocabulary has it.
            var endIndex = starts.count
            var found: Int32 = -1
            while endIndex > startIndex {
                let to = endIndex == starts.count ? word.count : starts[endIndex]
                candidate.removeLast(candidate.count - (head + to))
                found = candidate.withUnsafeBytes { table.find($0) }
                if found >= 0 { break }
                endIndex -= 1
            }
            if found < 0 {
                output.removeSubrange(firstPiece...)
                output.append(unknownID)
                return
            }
            output.append(found)
            startIndex = endIndex
        }
    }

    /// Text of `ids` as the WordPiece decoder writes it: pieces joined by spaces, `##`
    /// continuations glued on, special tokens left out when `skipSpecial`.
    public func decode(_ ids: [Int32], skipSpecial: Bool = true) -> String {
        var out = ""
        let specials = Set(addedTokens.map(\.id))
        for id in ids {
            if skipSpecial && specials.contains(id) { continue }
            guard let t = token(id) else { continue }
            if t.hasPrefix(continuingSubwordPrefix) {
                out += t.dropFirst(continuingSubwordPrefix.count)
            } else {
                if !out.isEmpty { out += " " }
                out += t
            }
        }
        return out
    }

    // Character classes as in Hugging Face tokenizers (normalizers/bert.rs, pre_tokenizers/bert.rs).

    @inline(__always)
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        ScalarClass.of(s.value).contains(.whitespace)  // includes \t \n \r
    }

    @inline(__always)
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        return ScalarClass.of(s.value).contains(.other)
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (0x21 ... 0x2F).contains(v) || (0x3A ... 0x40).contains(v) || (0x5B ... 0x60).contains(v) || (0x7B ... 0x7E).contains(v)
        }
        return ScalarClass.of(s.value).contains(.punctuation)
    }

    static func isChineseCharacter(_ v: UInt32) -> Bool {
        (0x4E00 ... 0x9FFF).contains(v) || (0x3400 ... 0x4DBF).contains(v) || (0x20000 ... 0x2A6DF).contains(v)
            || (0x2A700 ... 0x2B73F).contains(v) || (0x2B740 ... 0x2B81F).contains(v) || (0x2B920 ... 0x2CEAF).contains(v)
            || (0xF900 ... 0xFAFF).contains(v) || (0x2F800 ... 0x2FA1F).contains(v)
    }
}
