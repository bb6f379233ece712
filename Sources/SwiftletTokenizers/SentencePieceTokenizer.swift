import SwiftletCore

/// SentencePiece-style tokenization as in Llama / Gemma GGUFs (`tokenizer.ggml.model` = `llama`).
///
/// Spaces become "▁" (U+2581), optionally with a leading one (`add_space_prefix`); the UTF-8
/// characters are then merged greedily by the score of the merged token (highest first, leftmost
/// on ties), and characters that are no token fall back to `<0xNN>` byte tokens — llama.cpp's
/// `llm_tokenizer_spm`.
public struct SentencePieceTokenizer: Tokenizer {
    let core: VocabularyCore
    let scores: [Float]
    /// Id of the `<0xNN>` token of each byte (or the unknown id when absent).
    let byteTokens: [Int32]
    public let addsBOS: Bool
    let addsEOS: Bool
    public let addsSpacePrefix: Bool

    public var vocabularySize: Int { core.vocabularySize }
    public var bosID: Int32? { core.bosID }
    public var eosID: Int32? { core.eosID }
    public var endOfGenerationIDs: Set<Int32> { core.endOfGenerationIDs }
    public var decodeDropsLeadingSpace: Bool { addsSpacePrefix }

    public init(vocabulary v: TokenizerVocabulary) throws {
        guard v.model == "llama" else {
            throw SwiftletError.unsupportedTokenizer("SentencePieceTokenizer needs tokenizer.ggml.model 'llama', got '\(v.model)'")
        }
        core = try VocabularyCore(v)
        guard v.scores.isEmpty || v.scores.count == v.tokens.count else {
            throw SwiftletError.invalidArgument("tokenizer.ggml.scores has \(v.scores.count) entries for \(v.tokens.count) tokens")
        }
        scores = v.scores.isEmpty ? [Float](repeating: 0, count: v.tokens.count) : v.scores
        addsBOS = v.addBOS ?? true
        addsEOS = v.addEOS ?? false
        addsSpacePrefix = v.addSpacePrefix ?? true
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes = [Int32](repeating: v.unknownID ?? 0, count: 256)
        for b in 0 ..< 256 {
            let name: [UInt8] = Array("<0x".utf8) + [hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]
            var id = core.table.find(name)
            if id < 0 { id = core.table.find(CollectionOfOne(UInt8(b))) }
            if id >= 0 { bytes[b] = id }
        }
        byteTokens = bytes
    }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var output: [Int32] = []
        if addSpecial && addsBOS, let bos = core.bosID { output.append(bos) }
        var text = text
        text.withUTF8 { bytes in
            var state = EncodeState()
            var previousIsSpecial = true
            for fragment in core.specials.partition(bytes, parseSpecial: parseSpecial) {
                switch fragment {
                case .token(let id):
                    output.append(id)
                    previousIsSpecial = true
                case .text(let range):
                    // Escape spaces as ▁, with a leading one at the start and after special tokens.
                    state.text.removeAll(keepingCapacity: true)
                    if addsSpacePrefix && previousIsSpecial { state.text.append(contentsOf: [0xE2, 0x96, 0x81]) }
                    for i in range {
                        if bytes[i] == 0x20 { state.text.append(contentsOf: [0xE2, 0x96, 0x81]) } else { state.text.append(bytes[i]) }
                    }
                    encodeEscaped(&state, &output)
                    previousIsSpecial = false
                }
            }
        }
        if addSpecial && addsEOS, let eos = core.eosID { output.append(eos) }
        return output
    }

    struct EncodeState {
        var text: [UInt8] = []
        var start: [Int32] = []
        var length: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var heap = BinaryHeap<Bigram>()
    }

    struct Bigram: HeapElement {
        var score: Float, left: Int32, right: Int32, size: Int32
        @inline(__always)
        static func precedes(_ a: Self, _ b: Self) -> Bool { a.score != b.score ? a.score > b.score : a.left < b.left }
    }

    func encodeEscaped(_ st: inout EncodeState, _ output: inout [Int32]) {
        st.start.removeAll(keepingCapacity: true)
        st.length.removeAll(keepingCapacity: true)
        st.prev.removeAll(keepingCapacity: true)
        st.next.removeAll(keepingCapacity: true)
        let count = st.text.count
        var offset = 0
        while offset < count {
            let len = min(utf8SequenceLength(st.text[offset]), count - offset)
            let k = Int32(st.start.count)
            st.start.append(Int32(offset)); st.length.append(Int32(len))
            st.prev.append(k - 1)
            offset += len
            st.next.append(offset == count ? -1 : k + 1)
        }
        let n = st.start.count
        if n == 0 { return }
        st.heap.removeAll()
        st.text.withUnsafeBytes { text in
            for k in 1 ..< max(n, 1) { tryAddBigram(Int32(k - 1), Int32(k), text, &st) }
            while let b = st.heap.pop() {
                let l = Int(b.left), r = Int(b.right)
                // Outdated when a side was merged away or grew since the bigram was made.
                if st.length[l] == 0 || st.length[r] == 0 || st.length[l] + st.length[r] != b.size { continue }
                st.length[l] += st.length[r]
                st.length[r] = 0
                let after = st.next[r]
                st.next[l] = after
                if after >= 0 { st.prev[Int(after)] = b.left }
                if st.prev[l] >= 0 { tryAddBigram(st.prev[l], b.left, text, &st) }
                if after >= 0 { tryAddBigram(b.left, after, text, &st) }
            }
            var k: Int32 = 0
            while k >= 0 {
                let s = Int(st.start[Int(k)]), len = Int(st.length[Int(k)])
                let id = core.table.find(UnsafeRawBufferPointer(rebasing: text[s ..< s + len]))
                if id >= 0 {
                    output.append(id)
                } else {
                    for i in s ..< s + len { output.append(byteTokens[Int(text[i])]) }
                }
                k = st.next[Int(k)]
            }
        }
    }

    @inline(__always)
    private func tryAddBigram(_ left: Int32, _ right: Int32, _ text: UnsafeRawBufferPointer, _ st: inout EncodeState) {
        let s = Int(st.start[Int(left)])
        let size = Int(st.length[Int(left)] + st.length[Int(right)])
        let id = core.table.find(UnsafeRawBufferPointer(rebasing: text[s ..< s + size]))
        if id < 0 { return }
        st.heap.push(Bigram(score: scores[Int(id)], left: left, right: right, size: Int32(size)))
    }

    public func pieceBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8] {
        guard id >= 0, Int(id) < core.vocabularySize else { return [] }
        let text = core.text(Int(id))
        switch core.kinds[Int(id)] {
        case .normal:
            // ▁ → space.
            var out: [UInt8] = []
            out.reserveCapacity(text.count)
            var i = text.startIndex
            while i < text.endIndex {
                if text[i] == 0xE2, i + 2 < text.endIndex, text[i + 1] == 0x96, text[i + 2] == 0x81 {
                    out.append(0x20); i += 3
                } else {
                    out.append(text[i]); i += 1
                }
            }
            return out
        case .byte:
            // "<0xNN>"
            guard text.count == 6, let v = UInt8(String(decoding: text.dropFirst(3).prefix(2), as: UTF8.self), radix: 16) else {
                return Array(text)
            }
            return [v]
        case .userDefined: return Array(text)
        case .control, .unknown: return renderSpecial ? Array(text) : []
        default: return []
        }
    }
}
