import SwiftletCore

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
    /// Byte length of each token's text, by rank.
    private let lengths: [Int]
    private let alwaysParsed: [Bool]
    /// A byte trie of the special texts: node 0 is the root, `children` maps (node, byte) to a
    /// node, `terminal[node]` is the priority rank of the token ending there, or -1.
    private let children: PairTable
    private let terminal: [Int32]
    private let firstByte: [Bool]
    /// The trie nodes along b, bb, bbb, … for each byte b: runPathNodes[runPathStart[b] ..< runPathStart[b + 1]].
    private let runPathNodes: [Int32]
    private let runPathStart: [Int32]

    init(table vocab: ByteStringTable, kinds: [TokenKind]) {
        var list: [(id: Int32, length: Int)] = []
        for (i, kind) in kinds.enumerated() where kind == .control || kind == .userDefined || kind == .unknown {
            let length = vocab.key(i).count
            if length > 0 { list.append((Int32(i), length)) }
        }
        list.sort { $0.length != $1.length ? $0.length > $1.length : $0.id < $1.id }
        ids = list.map(\.id)
        lengths = list.map(\.length)
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
        var pathNodes: [Int32] = [], pathStart: [Int32] = [0]
        for byte in 0 ..< 256 {
            var node: Int32 = 0
            while let child = trie.find(left: node, right: Int32(byte))?.result { pathNodes.append(child); node = child }
            pathStart.append(Int32(pathNodes.count))
        }
        children = trie
        self.terminal = terminal
        firstByte = first
        runPathNodes = pathNodes
        runPathStart = pathStart
    }

    var isEmpty: Bool { ids.isEmpty }

    /// Splits `bytes` into raw-text fragments and special tokens.
    ///
    /// Linear in the matches: a usual text has few, sorted by (priority rank, start) directly;
    /// past `ids.count` of them (a run of spaces matches each of Gemma's 31 whitespace tokens at
    /// every byte) a counting sort by rank takes over. A bitmap of taken bytes then decides each
    /// match in that order.
    func partition(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        let n = bytes.count
        if n == 0 { return [] }
        if ids.isEmpty { return [.text(0 ..< n)] }
        return n <= Int(UInt32.max) ? partition(bytes, parseSpecial: parseSpecial, offset: UInt32.self)
            : partition(bytes, parseSpecial: parseSpecial, offset: Int.self)
    }

    private func partition<Offset: FixedWidthInteger>(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool,
                                                     offset: Offset.Type) -> [Fragment] {
        let n = bytes.count
        var taken = TakenBytes(count: n)
        var accepted: [(start: Int, length: Int, id: Int32)] = []
        func consider(_ rank: Int, _ start: Int) {
            if taken.take(start, lengths[rank]) { accepted.append((start, lengths[rank], ids[rank])) }
        }
        let fewLimit = max(ids.count, 1024)
        var few: [(rank: Int32, start: Offset)] = []
        forEachMatch(bytes, parseSpecial: parseSpecial) { rank, start in
            if few.count <= fewLimit { few.append((Int32(rank), Offset(truncatingIfNeeded: start))) }
        }
        if few.isEmpty { return [.text(0 ..< n)] }
        if few.count <= fewLimit {
            few.sort { $0.rank != $1.rank ? $0.rank < $1.rank : $0.start < $1.start }
            for match in few { consider(Int(match.rank), Int(match.start)) }
        } else {
            few = []
            var bucket = [Int](repeating: 0, count: ids.count + 1)
            forEachMatch(bytes, parseSpecial: parseSpecial) { rank, _ in bucket[rank + 1] += 1 }
            for rank in 0 ..< ids.count { bucket[rank + 1] += bucket[rank] }
            var filled = bucket
            var starts = [Offset](repeating: 0, count: bucket[ids.count])
            forEachMatch(bytes, parseSpecial: parseSpecial) { rank, start in
                starts[filled[rank]] = Offset(truncatingIfNeeded: start)
                filled[rank] += 1
            }
            for rank in 0 ..< ids.count {
                for i in bucket[rank] ..< bucket[rank + 1] { consider(rank, Int(starts[i])) }
            }
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

    /// Calls `body(rank, start)` for every occurrence of a special token that is recognized
    /// (user-defined always, control and unknown with `parseSpecial`), by start, then length.
    ///
    /// Inside a run of one repeated byte every start walks the same trie path, so the path is
    /// walked once per byte value and replayed; only its continuation past the run's end is walked
    /// per start. A long run of spaces then costs its matches, not a trie lookup per byte of each.
    @inline(__always)
    private func forEachMatch(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool, _ body: (Int, Int) -> Void) {
        let n = bytes.count
        var runEnd = 0
        for pos in 0 ..< n where firstByte[Int(bytes[pos])] {
            let byte = Int(bytes[pos])
            if pos >= runEnd {
                runEnd = pos + 1
                while runEnd < n && bytes[runEnd] == bytes[pos] { runEnd += 1 }
            }
            let run = runEnd - pos, first = Int(runPathStart[byte]), count = Int(runPathStart[byte + 1]) - first
            for k in first ..< first + min(run, count) {
                let rank = Int(terminal[Int(runPathNodes[k])])
                if rank >= 0 && (parseSpecial || alwaysParsed[rank]) { body(rank, pos) }
            }
            guard run <= count else { continue }
            var node = runPathNodes[first + run - 1]
            var p = runEnd
            while p < n, let child = children.find(left: node, right: Int32(bytes[p]))?.result {
                node = child
                p += 1
                let rank = Int(terminal[Int(node)])
                if rank >= 0 && (parseSpecial || alwaysParsed[rank]) { body(rank, pos) }
            }
        }
    }
}

/// Which bytes of the text a special token has taken, one bit each.
private struct TakenBytes {
    private var words: [UInt64]

    init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }

    /// Takes `start ..< start + length` when none of it is taken yet; returns whether it did.
    @inline(__always)
    mutating func take(_ start: Int, _ length: Int) -> Bool {
        let end = start + length
        var p = start
        while p < end {
            let span = min(64 - (p & 63), end - p)
            if words[p >> 6] & Self.mask(p & 63, span) != 0 { return false }
            p += span
        }
        p = start
        while p < end {
            let span = min(64 - (p & 63), end - p)
            words[p >> 6] |= Self.mask(p & 63, span)
            p += span
        }
        return true
    }

    @inline(__always)
    private static func mask(_ bit: Int, _ span: Int) -> UInt64 {
        (span == 64 ? ~0 : (UInt64(1) << UInt64(span)) - 1) << UInt64(bit)
    }
}
