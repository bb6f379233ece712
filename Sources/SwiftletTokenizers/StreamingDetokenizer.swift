import SwiftletCore
/// Turns generated token ids into text as they arrive, never emitting half a UTF-8 character.
///
/// Byte-fallback and byte-level tokens can split one character over several tokens; the bytes
/// of an unfinished character are held back until the token that completes it arrives.
public struct StreamingDetokenizer: Sendable {
    public let tokenizer: any Tokenizer
    public let renderSpecial: Bool
    private var pending: [UInt8] = []
    private var emittedAnything = false

    /// - Parameter renderSpecial: write control tokens as their text (default: leave them out).
    public init(tokenizer: any Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// Adds one token; returns the text it completes (possibly empty).
    public mutating func append(_ id: TokenID) -> String {
        let piece = tokenizer.pieceBytes(id, renderSpecial: renderSpecial)
        if !emittedAnything && pending.isEmpty && tokenizer.decodeDropsLeadingSpace && piece.first == 0x20 {
            pending.append(contentsOf: piece.dropFirst())
        } else {
            pending.append(contentsOf: piece)
        }
        if !pending.isEmpty { emittedAnything = true }
        let ready = StreamingDetokenizer.completePrefixLength(pending)
        if ready == 0 { return "" }
        let text = String(decoding: pending[0 ..< ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Returns whatever is held back (an unfinished character becomes U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix of `bytes` that does not end inside a character that
    /// could still be completed by more bytes.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // Look back at most 3 bytes for the lead byte of a possibly unfinished sequence.
        var i = n - 1
        while i >= 0 && i >= n - 3 {
            let b = bytes[i]
            if b & 0xC0 == 0x80 { i -= 1; continue }  // continuation byte
            if b >= 0xC2 && b <= 0xF4 {
                let needed = utf8SequenceLength(b)
                if n - i < needed { return i }  // unfinished: hold back from its lead byte
            }
            return n
        }
        return n
    }
}
