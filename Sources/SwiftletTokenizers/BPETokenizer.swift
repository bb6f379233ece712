import SwiftletTensor

/// Byte-level BPE as in GPT-2, SmolLM2, Llama 3, Qwen 2 (`tokenizer.ggml.model` = `gpt2`), and the
/// SentencePiece-style BPE of Gemma 4 (`gemma4`: merges over UTF-8 characters, spaces as U+2581,
/// `<0xXX>` byte fallback).
///
/// Text is split by special tokens, then by the pre-tokenizer named in `tokenizer.ggml.pre`;
/// each piece's bytes become GPT-2 "byte characters" and are merged by merge rank (lowest rank
/// first, leftmost on ties) — the behaviour of llama.cpp's `llm_tokenizer_bpe`. Merging works on
/// integer symbol ids: texts named by merges but absent from the vocabulary get ids past the
/// vocabulary so the merge sequence stays exactly llama.cpp's.
public struct BPETokenizer: Tokenizer {
    let core: VocabularyCore
    /// Vocabulary plus synthetic symbols (ids ≥ vocabularySize).
    let symbols: ByteStringTable
    let merges: PairTable
    /// Symbol id of each byte's GPT-2 character.
    let byteSymbol: [Int32]
    /// The GPT-2 character of each byte.
    let byteCharacter: [UInt32]
    /// The byte each GPT-2 character (scalar < 324) stands for, or -1.
    let characterByte: [Int16]
    public let preTokenizer: BPEPreTokenizer
    /// `<0xXX>` token of each byte, or -1 (the fallback of a vocabulary that does not encode bytes).
    let byteToken: [Int32]
    public let addsBOS: Bool
    let addsEOS: Bool

    public var vocabularySize: Int { core.vocabularySize }
    public var bosID: Int32? { core.bosID }
    public var eosID: Int32? { core.eosID }
    public var endOfGenerationIDs: Set<Int32> { core.endOfGenerationIDs }

    public init(vocabulary v: TokenizerVocabulary) throws {
        switch v.model {
        case "gpt2": preTokenizer = try BPEPreTokenizer(ggmlName: v.pre ?? "default")
        case "gemma4": preTokenizer = .gemma4  // llama.cpp ignores tokenizer.ggml.pre here
        default:
            throw SwiftletError.unsupportedTokenizer("BPETokenizer needs tokenizer.ggml.model 'gpt2' or 'gemma4', got '\(v.model)'")
        }
        core = try VocabularyCore(v)
        // llama.cpp's default when the file does not say: BOS for the Llama 3 family only; Gemma 4
        // always starts with BOS (llama.cpp overrides the file's false).
        addsBOS = preTokenizer == .gemma4 ? true : v.addBOS ?? (preTokenizer == .llama3)
        addsEOS = v.addEOS ?? false

        // GPT-2's reversible byte → character map: printable Latin-1 bytes map to themselves,
        // the other 68 bytes to U+0100 onwards in byte order.
        var byteToScalar = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0 ..< 256 {
            if (33 ... 126).contains(b) || (161 ... 172).contains(b) || (174 ... 255).contains(b) {
                byteToScalar[b] = UInt32(b)
            } else {
                byteToScalar[b] = next; next += 1
            }
        }
        var charByte = [Int16](repeating: -1, count: 324)
        for b in 0 ..< 256 { charByte[Int(byteToScalar[b])] = Int16(b) }
        characterByte = charByte
        byteCharacter = byteToScalar

        var table = core.table
        var bytesOfByte = [Int32](repeating: 0, count: 256)
        for b in 0 ..< 256 {
            var s = String(Character(Unicode.Scalar(byteToScalar[b])!))
            bytesOfByte[b] = s.withUTF8 { BPETokenizer.symbolID(UnsafeRawBufferPointer($0), &table) }
        }
        byteSymbol = bytesOfByte
        var fallback = [Int32](repeating: -1, count: 256)
        if !preTokenizer.encodesBytes {
            let hex = Array("0123456789ABCDEF".utf8)
            for b in 0 ..< 256 {
                let id = table.find([0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E])  // <0xXX>
                if id >= 0 && Int(id) < core.vocabularySize { fallback[b] = id }
            }
        }
        byteToken = fallback
        let pairs = try BPETokenizer.parseMerges(v.merges, &table)
        merges = pairs
        symbols = table
    }

    @inline(__always)
    static func symbolID(_ key: UnsafeRawBufferPointer, _ table: inout ByteStringTable) -> Int32 {
        let id = table.find(key)
        return id >= 0 ? id : table.add(key)
    }

    /// The merge table: (left symbol, right symbol) → (rank, merged symbol).
    static func parseMerges(_ merges: [String], _ table: inout ByteStringTable) throws -> PairTable {
        var pairs = PairTable(expectedCount: merges.count)
        var joined = [UInt8](repeating: 0, count: 256)
        for rank in merges.indices {
            var merge = merges[rank]
            let ok: Bool = merge.withUTF8 { u in
                // Split at the first space after the first byte (a left part cannot be empty).
                var p = 1
                while p < u.count && u[p] != 0x20 { p += 1 }
                guard p < u.count else { return false }
                let raw = UnsafeRawBufferPointer(u)
                let left = symbolID(UnsafeRawBufferPointer(rebasing: raw[0 ..< p]), &table)
                let right = symbolID(UnsafeRawBufferPointer(rebasing: raw[(p + 1)...]), &table)
                if joined.count < u.count { joined = [UInt8](repeating: 0, count: u.count) }
                let result: Int32 = joined.withUnsafeMutableBytes { j in
                    j.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0 ..< p]))
                    UnsafeMutableRawBufferPointer(rebasing: j[p...]).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(p + 1)...]))
                    return symbolID(UnsafeRawBufferPointer(rebasing: j[0 ..< u.count - 1]), &table)
                }
                pairs.insertIfAbsent(left: left, right: right, rank: Int32(rank), result: result)
                return true
            }
            if !ok { throw SwiftletError.invalidArgument("tokenizer.ggml.merges[\(rank)] has no space: '\(merges[rank])'") }
        }
        return pairs
    }

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var output: [Int32] = []
        if addSpecial && addsBOS, let bos = core.bosID { output.append(bos) }
        var text = text
        text.withUTF8 { bytes in
            var state = EncodeState()
            for fragment in core.specials.partition(bytes, parseSpecial: parseSpecial) {
                switch fragment {
                case .token(let id): output.append(id)
                case .text(let range): encodeText(bytes, range, &state, &output)
                }
            }
        }
        if addSpecial && addsEOS, let eos = core.eosID { output.append(eos) }
        return output
    }

    /// Scratch buffers reused across the pieces of one `encode` call.
    struct EncodeState {
        var scalars: [UInt32] = []
        var offsets: [Int] = []
        var classes: [UInt8] = []
        var ends: [Int] = []
        var ids: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var heap = BinaryHeap<MergeCandidate>()
        var encoded: [UInt8] = []
        /// Byte offset where each symbol starts (vocabularies that merge UTF-8 characters).
        var starts: [Int] = []
    }

    struct MergeCandidate: HeapElement {
        var rank: Int32, left: Int32, right: Int32, leftID: Int32, rightID: Int32, result: Int32
        @inline(__always)
        static func precedes(_ a: Self, _ b: Self) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.left < b.left }
    }

    func encodeText(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ st: inout EncodeState, _ output: inout [Int32]) {
        if preTokenizer.escapesWhitespace {
            var escaped: [UInt8] = []
            escaped.reserveCapacity(range.count)
            for i in range {
                if bytes[i] == 0x20 { escaped.append(contentsOf: [0xE2, 0x96, 0x81]) } else { escaped.append(bytes[i]) }
            }
            escaped.withUnsafeBufferPointer { splitAndMerge($0, 0 ..< $0.count, &st, &output) }
        } else {
            splitAndMerge(bytes, range, &st, &output)
        }
    }

    private func splitAndMerge(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ st: inout EncodeState, _ output: inout [Int32]) {
        decodeScalars(bytes, range, scalars: &st.scalars, offsets: &st.offsets)
        st.classes.removeAll(keepingCapacity: true)
        for s in st.scalars { st.classes.append(ScalarClass.of(s).rawValue) }
        st.ends.removeAll(keepingCapacity: true)
        st.scalars.withUnsafeBufferPointer { s in
            st.classes.withUnsafeBufferPointer { c in
                preTokenizer.split(s, c, 0 ..< s.count, into: &st.ends)
            }
        }
        var start = 0
        let ends = st.ends
        for end in ends {
            encodePiece(bytes, st.offsets[start] ..< st.offsets[end], &st, &output)
            start = end
        }
    }

    func encodePiece(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ st: inout EncodeState, _ output: inout [Int32]) {
        let vocabularySize = Int32(core.vocabularySize)
        if preTokenizer.ignoresMerges {
            st.encoded.removeAll(keepingCapacity: true)
            for i in range { appendCharacter(byteCharacter[Int(bytes[i])], to: &st.encoded) }
            let id = st.encoded.withUnsafeBytes { symbols.find($0) }
            if id >= 0 && id < vocabularySize { output.append(id); return }
        }
        st.ids.removeAll(keepingCapacity: true)
        st.prev.removeAll(keepingCapacity: true)
        st.next.removeAll(keepingCapacity: true)
        st.starts.removeAll(keepingCapacity: true)
        if preTokenizer.encodesBytes {
            for i in range { st.ids.append(byteSymbol[Int(bytes[i])]) }
        } else {
            // A piece made only of newlines that is a token is that token (llama.cpp's Gemma 4 rule).
            if range.allSatisfy({ bytes[$0] == 0x0A }) {
                let id = symbols.find(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[range]))
                if id >= 0 && id < vocabularySize { output.append(id); return }
            }
            // One symbol per UTF-8 character; a character no merge or token names gets an id
            // that matches no merge and falls back to its bytes.
            var i = range.lowerBound
            while i < range.upperBound {
                let len = min(utf8SequenceLength(bytes[i]), range.upperBound - i)
                let id = symbols.find(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[i ..< i + len]))
                st.ids.append(id >= 0 ? id : Int32.max)
                st.starts.append(i)
                i += len
            }
            st.starts.append(range.upperBound)
        }
        let n = st.ids.count
        for k in 0 ..< n {
            st.prev.append(Int32(k - 1))
            st.next.append(k + 1 < n ? Int32(k + 1) : -1)
        }
        st.heap.removeAll()
        for k in 1 ..< max(n, 1) { addCandidate(Int32(k - 1), Int32(k), &st) }
        while let c = st.heap.pop() {
            let l = Int(c.left), r = Int(c.right)
            // Outdated when either side was merged away or changed since the candidate was made.
            if st.ids[l] != c.leftID || st.ids[r] != c.rightID || st.next[l] != c.right { continue }
            st.ids[l] = c.result
            st.ids[r] = -1
            let after = st.next[r]
            st.next[l] = after
            if after >= 0 { st.prev[Int(after)] = c.left }
            if st.prev[l] >= 0 { addCandidate(st.prev[l], c.left, &st) }
            if after >= 0 { addCandidate(c.left, after, &st) }
        }
        var k: Int32 = 0
        while k >= 0 {
            let id = st.ids[Int(k)]
            if id < vocabularySize {
                output.append(id)
            } else if !preTokenizer.encodesBytes {
                let end = st.next[Int(k)] >= 0 ? st.starts[Int(st.next[Int(k)])] : st.starts[n]
                for i in st.starts[Int(k)] ..< end where byteToken[Int(bytes[i])] >= 0 { output.append(byteToken[Int(bytes[i])]) }
            } else {
                // Not a token: each byte of its text that is a token on its own (llama.cpp's fallback).
                for b in symbols.key(Int(id)) {
                    let single = symbols.find(CollectionOfOne(b))
                    if single >= 0 && single < vocabularySize { output.append(single) }
                }
            }
            k = st.next[Int(k)]
        }
    }

    @inline(__always)
    private func addCandidate(_ left: Int32, _ right: Int32, _ st: inout EncodeState) {
        let a = st.ids[Int(left)], b = st.ids[Int(right)]
        if let m = merges.find(left: a, right: b) {
            st.heap.push(MergeCandidate(rank: m.rank, left: left, right: right, leftID: a, rightID: b, result: m.result))
        }
    }

    private func appendCharacter(_ scalar: UInt32, to out: inout [UInt8]) {
        if scalar < 0x80 { out.append(UInt8(scalar)) } else {
            out.append(UInt8(0xC0 | (scalar >> 6))); out.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    public func pieceBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8] {
        guard id >= 0, Int(id) < core.vocabularySize else { return [] }
        let text = core.text(Int(id))
        switch core.kinds[Int(id)] {
        case .normal where !preTokenizer.encodesBytes:
            // U+2581 stands for a space.
            var out: [UInt8] = []
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
            // <0xXX>
            guard text.count == 6, let b = UInt8(String(decoding: text.dropFirst(3).prefix(2), as: UTF8.self), radix: 16) else { return [] }
            return [b]
        case .normal:
            // Map each GPT-2 byte character back to its byte; other characters stay as they are.
            var out: [UInt8] = []
            out.reserveCapacity(text.count)
            var i = text.startIndex
            while i < text.endIndex {
                let lead = text[i]
                let len = min(utf8SequenceLength(lead), text.endIndex - i)
                if len == 2 {
                    let scalar = Int(lead & 0x1F) << 6 | Int(text[i + 1] & 0x3F)
                    if scalar < characterByte.count, characterByte[scalar] >= 0 {
                        out.append(UInt8(characterByte[scalar])); i += 2; continue
                    }
                } else if len == 1, Int(lead) < characterByte.count, characterByte[Int(lead)] >= 0 {
                    out.append(UInt8(characterByte[Int(lead)])); i += 1; continue
                }
                out.append(contentsOf: text[i ..< i + len]); i += len
            }
            return out
        case .userDefined: return Array(text)
        case .control, .unknown: return renderSpecial ? Array(text) : []
        default: return []
        }
    }
}
