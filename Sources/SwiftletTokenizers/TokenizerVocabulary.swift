import SwiftletTensor

/// How a vocabulary entry behaves (GGUF `tokenizer.ggml.token_type`, llama.cpp's values).
public enum TokenKind: Int32, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6

    init(raw: Int32) { self = TokenKind(rawValue: raw) ?? .undefined }
}

/// Everything a GGUF-style tokenizer is built from, as plain Swift values.
///
/// The names mirror the GGUF `tokenizer.ggml.*` metadata keys. Construct it directly (tests,
/// other formats) or from a GGUF file with `TokenizerVocabulary(gguf:)`.
public struct TokenizerVocabulary: Sendable {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE), `"llama"` (SentencePiece), `"bert"`
    /// (WordPiece) or `"gemma4"` (BPE over UTF-8 characters).
    public var model: String
    /// `tokenizer.ggml.pre`: the BPE pre-tokenizer name (ignored by SentencePiece).
    public var pre: String?
    /// `tokenizer.ggml.tokens`: token texts by id.
    public var tokens: [String]
    /// `tokenizer.ggml.scores`: SentencePiece merge scores by id (empty for BPE).
    public var scores: [Float]
    /// `tokenizer.ggml.token_type`: `TokenKind` raw values by id (empty: all normal).
    public var tokenTypes: [Int32]
    /// `tokenizer.ggml.merges`: BPE merges `"left right"` in rank order (empty for SentencePiece).
    public var merges: [String]
    public var bosID: Int32?
    public var eosID: Int32?
    public var unknownID: Int32?
    public var paddingID: Int32?
    /// `tokenizer.ggml.add_bos_token`; nil means the model type's default (SentencePiece: true, BPE: false).
    public var addBOS: Bool?
    /// `tokenizer.ggml.add_eos_token`; nil means false.
    public var addEOS: Bool?
    /// `tokenizer.ggml.add_space_prefix`; nil means the SentencePiece default (true).
    public var addSpacePrefix: Bool?
    /// `tokenizer.chat_template`, when the file has one.
    public var chatTemplate: String?
    /// `general.architecture`, used to pick a chat template when the file has none.
    public var architecture: String?
    /// `tokenizer.ggml.seperator_token_id` (WordPiece's `[SEP]`; llama.cpp spells the key so).
    public var separatorID: Int32?
    /// `tokenizer.ggml.cls_token_id` (WordPiece's `[CLS]`; older files put it in `bos_token_id`).
    public var classifierID: Int32?
    /// `tokenizer.ggml.normalizer.lowercase` (WordPiece); nil means true.
    public var lowercase: Bool?
    /// `tokenizer.ggml.normalizer.strip_accents` (WordPiece); nil follows `lowercase`.
    public var stripAccents: Bool?

    public init(model: String, pre: String? = nil, tokens: [String], scores: [Float] = [], tokenTypes: [Int32] = [],
                merges: [String] = [], bosID: Int32? = nil, eosID: Int32? = nil, unknownID: Int32? = nil,
                paddingID: Int32? = nil, addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil,
                chatTemplate: String? = nil, architecture: String? = nil) {
        self.model = model; self.pre = pre; self.tokens = tokens; self.scores = scores
        self.tokenTypes = tokenTypes; self.merges = merges; self.bosID = bosID; self.eosID = eosID
        self.unknownID = unknownID; self.paddingID = paddingID; self.addBOS = addBOS; self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix; self.chatTemplate = chatTemplate; self.architecture = architecture
    }
}

/// The parts shared by the GGUF tokenizers: token texts, kinds, special-token recognition,
/// end-of-generation ids. Immutable after construction.
final class VocabularyCore: Sendable {
    let table: ByteStringTable
    let kinds: [TokenKind]
    let vocabularySize: Int
    let bosID: Int32?
    let eosID: Int32?
    let unknownID: Int32?
    let endOfGenerationIDs: Set<Int32>
    let specials: SpecialTokenMatcher

    init(_ v: TokenizerVocabulary) throws {
        let n = v.tokens.count
        guard n > 0 else { throw SwiftletError.missingMetadata("tokenizer.ggml.tokens (empty)") }
        guard v.tokenTypes.isEmpty || v.tokenTypes.count == n else {
            throw SwiftletError.invalidArgument("tokenizer.ggml.token_type has \(v.tokenTypes.count) entries for \(n) tokens")
        }
        var table = ByteStringTable(expectedCount: n + n / 4, expectedBytes: n * 8)
        for var token in v.tokens {
            _ = token.withUTF8 { table.add(UnsafeRawBufferPointer($0)) }
        }
        self.table = table
        kinds = v.tokenTypes.isEmpty ? [TokenKind](repeating: .normal, count: n) : v.tokenTypes.map(TokenKind.init(raw:))
        vocabularySize = n
        func checked(_ id: Int32?, _ key: String) throws -> Int32? {
            guard let id else { return nil }
            guard id >= 0, Int(id) < n else { throw SwiftletError.invalidArgument("\(key) \(id) outside the vocabulary of \(n)") }
            return id
        }
        bosID = try checked(v.bosID, "tokenizer.ggml.bos_token_id")
        eosID = try checked(v.eosID, "tokenizer.ggml.eos_token_id")
        unknownID = try checked(v.unknownID, "tokenizer.ggml.unknown_token_id")

        // End of generation: EOS plus the end-of-turn markers llama.cpp recognizes by text.
        var eog = Set<Int32>()
        if let eosID { eog.insert(eosID) }
        for text in ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                     "<EOT>", "_<EOT>", "<|end_of_text|>", "<|return|>", "<|call|>"] {
            let id = table.find(Array(text.utf8))
            if id >= 0, kinds[Int(id)] == .control || kinds[Int(id)] == .userDefined { eog.insert(id) }
        }
        endOfGenerationIDs = eog
        specials = SpecialTokenMatcher(table: table, kinds: kinds)
    }

    @inline(__always)
    func text(_ id: Int) -> ArraySlice<UInt8> { table.key(id) }
}

/// One stretch of the input after special tokens are recognized.
enum Fragment {
    case text(Range<Int>)
    case token(Int32)
}

/// Finds special tokens (control, user-defined, unknown) in raw text the way llama.cpp's
/// `tokenizer_st_partition` does: longest tokens first, each taking its leftmost
/// non-overlapping occurrences in the text not yet claimed. User-defined tokens are always
/// recognized; control and unknown tokens only when special parsing is on.
struct SpecialTokenMatcher: Sendable {
    /// Special token ids in priority order (longer text first, then lower id).
    private let ids: [Int32]
    private let alwaysParsed: [Bool]
    /// A byte trie of the special texts: node 0 is the root, `children` maps (node, byte) to a
    /// node, `terminal[node]` is the priority rank of the token ending there, or -1.
    private let children: PairTable
    private let terminal: [Int32]
    private let firstByte: [Bool]

    init(table vocab: ByteStringTable, kinds: [TokenKind]) {
        var list: [(id: Int32, length: Int)] = []
        for (i, kind) in kinds.enumerated() where kind == .control || kind == .userDefined || kind == .unknown {
            let length = vocab.key(i).count
            if length > 0 { list.append((Int32(i), length)) }
        }
        list.sort { $0.length != $1.length ? $0.length > $1.length : $0.id < $1.id }
        ids = list.map(\.id)
        alwaysParsed = list.map { kinds[Int($0.id)] == .userDefined }
        var trie = PairTable(expectedCount: list.reduce(0) { $0 + $1.length })
        var terminal: [Int32] = [-1]
        var first = [Bool](repeating: false, count: 256)
        for (rank, item) in list.enumerated() {
            let key = vocab.key(Int(item.id))
            first[Int(key.first!)] = true
            var node: Int32 = 0
            for b in key {
                if let child = trie.find(left: node, right: Int32(b))?.result {
                    node = child
                } else {
                    let child = Int32(terminal.count)
                    terminal.append(-1)
                    trie.insertIfAbsent(left: node, right: Int32(b), rank: 0, result: child)
                    node = child
                }
            }
            // The same text twice: the higher-priority (earlier) token keeps it.
            if terminal[Int(node)] < 0 { terminal[Int(node)] = Int32(rank) }
        }
        children = trie
        self.terminal = terminal
        firstByte = first
    }

    var isEmpty: Bool { ids.isEmpty }

    /// Splits `bytes` into raw-text fragments and special tokens.
    func partition(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        let n = bytes.count
        if n == 0 { return [] }
        // Candidates (priority rank, start, length).
        var candidates: [(rank: Int32, start: Int, length: Int)] = []
        if !ids.isEmpty {
            for pos in 0 ..< n where firstByte[Int(bytes[pos])] {
                var node: Int32 = 0
                var p = pos
                while p < n, let child = children.find(left: node, right: Int32(bytes[p]))?.result {
                    node = child
                    p += 1
                    let rank = terminal[Int(node)]
                    if rank >= 0 && (parseSpecial || alwaysParsed[Int(rank)]) {
                        candidates.append((rank, pos, p - pos))
                    }
                }
            }
        }
        if candidates.isEmpty { return [.text(0 ..< n)] }
        candidates.sort { $0.rank != $1.rank ? $0.rank < $1.rank : $0.start < $1.start }
        var claimed = [Bool](repeating: false, count: n)
        var accepted: [(start: Int, length: Int, id: Int32)] = []
        for c in candidates {
            var free = true
            for p in c.start ..< c.start + c.length where claimed[p] { free = false; break }
            if !free { continue }
            for p in c.start ..< c.start + c.length { claimed[p] = true }
            accepted.append((c.start, c.length, ids[Int(c.rank)]))
        }
        accepted.sort { $0.start < $1.start }
        var fragments: [Fragment] = []
        var cursor = 0
        for a in accepted {
            if a.start > cursor { fragments.append(.text(cursor ..< a.start)) }
            fragments.append(.token(a.id))
            cursor = a.start + a.length
        }
        if cursor < n { fragments.append(.text(cursor ..< n)) }
        return fragments
    }
}
