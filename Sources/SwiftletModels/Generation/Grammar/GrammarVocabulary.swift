import SwiftletTokenizers

/// The token texts a grammar is matched against, prepared once per model: every token's bytes
/// (control tokens as their text, as llama.cpp's `token_to_piece` gives them to its grammar),
/// which tokens end generation, and the matchable tokens sorted by their bytes with the length
/// of the prefix each shares with the one before — so a walk over the sorted list visits every
/// shared prefix once, as a walk over a byte trie would.
public struct GrammarVocabulary: Sendable {
    /// Bytes of all tokens back to back; token `t` is `bytes[offsets[t]..<offsets[t + 1]]`.
    let bytes: [UInt8]
    let offsets: [Int32]
    let endOfGeneration: [Bool]
    /// Tokens a grammar can match (not end-of-generation, text not empty and not starting with
    /// NUL), sorted by their text up to its first NUL byte.
    let sortedTokens: [Int32]
    /// Bytes token `sortedTokens[i]` shares with `sortedTokens[i - 1]` (0 for the first).
    let sharedPrefix: [Int32]
    /// Matchable length of each sorted token (its text up to the first NUL byte).
    let sortedLength: [Int32]

    public var count: Int { endOfGeneration.count }

    /// Reads every token's text from `tokenizer`.
    public init(tokenizer: any Tokenizer) {
        let n = tokenizer.vocabularySize
        var pieces: [[UInt8]] = []
        pieces.reserveCapacity(n)
        for t in 0..<n { pieces.append(tokenizer.pieceBytes(Int32(t), renderSpecial: true)) }
        self.init(pieces: pieces, endOfGeneration: tokenizer.endOfGenerationIDs)
    }

    /// A vocabulary from explicit token texts (tests, custom tokenizers).
    public init(pieces: [[UInt8]], endOfGeneration: Set<Int32>) {
        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(pieces.count + 1)
        for p in pieces { bytes.append(contentsOf: p); offsets.append(Int32(bytes.count)) }
        var eog = [Bool](repeating: false, count: pieces.count)
        for t in endOfGeneration where t >= 0 && Int(t) < pieces.count { eog[Int(t)] = true }
        self.bytes = bytes; self.offsets = offsets; self.endOfGeneration = eog

        // Text up to the first NUL: llama.cpp hands the grammar C strings.
        func matchable(_ t: Int) -> ArraySlice<UInt8> {
            let piece = pieces[t][...]
            return piece.firstIndex(of: 0).map { piece[..<$0] } ?? piece
        }
        var candidates = (0..<pieces.count).filter { !eog[$0] && !pieces[$0].isEmpty && pieces[$0][0] != 0 }
        candidates.sort { a, b in matchable(a).lexicographicallyPrecedes(matchable(b)) }
        var shared: [Int32] = []
        var lengths: [Int32] = []
        shared.reserveCapacity(candidates.count); lengths.reserveCapacity(candidates.count)
        var previous: ArraySlice<UInt8> = []
        for t in candidates {
            let m = matchable(t)
            var k = 0
            let limit = min(m.count, previous.count)
            while k < limit && m[m.startIndex + k] == previous[previous.startIndex + k] { k += 1 }
            shared.append(Int32(k)); lengths.append(Int32(m.count))
            previous = m
        }
        sortedTokens = candidates.map(Int32.init); sharedPrefix = shared; sortedLength = lengths
    }

    /// The bytes of token `t`.
    func piece(_ t: Int) -> ArraySlice<UInt8> { bytes[Int(offsets[t])..<Int(offsets[t + 1])] }
}
