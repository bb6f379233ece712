import SwiftletTensor

/// The pre-tokenizer split of a byte-level BPE vocabulary, named by GGUF `tokenizer.ggml.pre`.
///
/// Each split is a hand-written scanner over Unicode scalars equivalent to the regex llama.cpp
/// uses for that name (see `llama-vocab.cpp`); matched and unmatched stretches both become pieces.
public enum BPEPreTokenizer: String, Sendable, CaseIterable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Every `\p{N}` alone first, then the GPT-2 split (SmolLM, StarCoder, Refact, Command-R…).
    case smollm
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// As `llama3` with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2
    /// As `qwen2` with marks in letter runs: `[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+`, and
    /// `[^\s\p{L}\p{M}\p{N}]+` for the rest.
    case qwen35
    /// DeepSeek Coder: `[\r\n]`, then `\s?\p{L}+`, `\s?\p{P}+`, CJK runs, every `\p{N}` alone.
    case deepseekCoder
    /// DeepSeek LLM: `[\r\n]`, then `\s?` + runs of cased letters, of ASCII / full-width
    /// punctuation, trailing `\s+$`, CJK runs, `\p{N}+`.
    case deepseekLLM
    /// Falcon: runs of `[\p{P}$+<=>^~|`]`, then the GPT-2 split, then ASCII digit triples.
    case falcon
    /// Gemma 4 (`tokenizer.ggml.model` `gemma4`): SentencePiece-style BPE on raw UTF-8 with spaces
    /// written as U+2581; the text is only split into runs of newlines and runs of the rest.
    case gemma4

    /// Maps a `tokenizer.ggml.pre` value to a split; unknown names (and a missing one, llama.cpp's
    /// "default" split) are an error, never a fallback.
    public init(ggmlName: String) throws {
        switch ggmlName {
        case "gpt2", "gpt-2", "mpt", "olmo", "jais", "trillion":
            self = .gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva":
            self = .smollm
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral":
            self = .llama3
        case "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez":
            self = .qwen2
        case "qwen35": self = .qwen35
        case "deepseek-coder": self = .deepseekCoder
        case "deepseek-llm": self = .deepseekLLM
        case "falcon": self = .falcon
        case "gemma4": self = .gemma4
        default:
            throw SwiftletError.unsupportedTokenizer(
                "BPE pre-tokenizer '\(ggmlName)' (supported: gpt2, smollm, llama3, qwen2, qwen35, deepseek-coder, "
                    + "deepseek-llm, falcon, gemma4 and their aliases)")
        }
    }

    /// Whether a whole pre-token found in the vocabulary is emitted without merging (llama3 family).
    var ignoresMerges: Bool { self == .llama3 }

    /// Appends the end (exclusive, in scalar indices) of every piece of `scalars[range]` to `ends`.
    func split(_ scalars: UnsafeBufferPointer<UInt32>, _ classes: UnsafeBufferPointer<UInt8>,
               _ range: Range<Int>, into ends: inout [Int]) {
        switch self {
        case .gpt2:
            PreTokenizerScanner.gpt2(scalars, classes, range, &ends)
        case .smollm:
            // First pass `\p{N}`: each number scalar is its own piece; the rest keeps its stretches.
            var start = range.lowerBound
            var i = start
            while i < range.upperBound {
                if classes[i] & ScalarClass.number.rawValue != 0 {
                    if i > start { PreTokenizerScanner.gpt2(scalars, classes, start ..< i, &ends) }
                    ends.append(i + 1)
                    start = i + 1
                }
                i += 1
            }
            if start < range.upperBound { PreTokenizerScanner.gpt2(scalars, classes, start ..< range.upperBound, &ends) }
        case .llama3:
            PreTokenizerScanner.llama3(scalars, classes, range, maxDigits: 3, &ends)
        case .qwen2:
            PreTokenizerScanner.llama3(scalars, classes, range, maxDigits: 1, &ends)
        case .qwen35:
            PreTokenizerScanner.llama3(scalars, classes, range, maxDigits: 1, marksInLetterRuns: true, &ends)
        case .deepseekCoder:
            RegexStage.apply([.each(.lineBreak), .runs(.letter, leadingSpace: true), .runs(.punctuation, leadingSpace: true),
                              .runs(.cjk, leadingSpace: false), .each(.number)], scalars, classes, range, &ends)
        case .deepseekLLM:
            RegexStage.apply([.each(.lineBreak), .runs(.casedLetter, leadingSpace: true),
                              .runs(.deepseekPunctuation, leadingSpace: true), .trailingWhitespace,
                              .runs(.cjk, leadingSpace: false), .runs(.number, leadingSpace: false)], scalars, classes, range, &ends)
        case .falcon:
            RegexStage.apply([.runs(.falconPunctuation, leadingSpace: false), .gpt2, .asciiDigitTriples],
                             scalars, classes, range, &ends)
        case .gemma4:
            var pos = range.lowerBound
            while pos < range.upperBound {
                let newline = scalars[pos] == 0x0A
                pos += 1
                while pos < range.upperBound && (scalars[pos] == 0x0A) == newline { pos += 1 }
                ends.append(pos)
            }
        }
    }

    /// Whether the text is split into bytes written as GPT-2 characters before merging
    /// (false: merges work on the UTF-8 characters themselves, bytes fall back to `<0xXX>`).
    var encodesBytes: Bool { self != .gemma4 }

    /// Whether spaces are written as U+2581 before splitting (SentencePiece style).
    var escapesWhitespace: Bool { self == .gemma4 }
}

enum PreTokenizerScanner {
    private static let letter = ScalarClass.letter.rawValue
    private static let number = ScalarClass.number.rawValue
    private static let space = ScalarClass.whitespace.rawValue
    private static let quote: UInt32 = 0x27

    @inline(__always)
    private static func lowerASCII(_ c: UInt32) -> UInt32 { (c >= 0x41 && c <= 0x5A) ? c + 32 : c }

    /// Length of a contraction (`'s 't 'm 'd` → 2, `'re 've 'll` → 3) at `pos`, or 0.
    @inline(__always)
    private static func contraction(_ s: UnsafeBufferPointer<UInt32>, _ pos: Int, _ end: Int, caseInsensitive: Bool) -> Int {
        guard s[pos] == quote, pos + 1 < end else { return 0 }
        let n = caseInsensitive ? lowerASCII(s[pos + 1]) : s[pos + 1]
        if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 { return 2 }  // s t m d
        guard pos + 2 < end else { return 0 }
        let nn = caseInsensitive ? lowerASCII(s[pos + 2]) : s[pos + 2]
        if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    static func gpt2(_ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ ends: inout [Int]) {
        let end = range.upperBound
        // Class at `p`, or nil past the piece (llama.cpp's "no flags" out of range).
        @inline(__always) func c(_ p: Int) -> UInt8? { p < end ? cls[p] : nil }
        var pos = range.lowerBound
        while pos < end {
            let cpt = s[pos]
            let k = contraction(s, pos, end, caseInsensitive: false)
            if k > 0 { pos += k; ends.append(pos); continue }
            let f2 = cpt == 0x20 ? c(pos + 1) : cls[pos]
            if let f = f2, f & letter != 0 {
                if cpt == 0x20 { pos += 1 }
                while let g = c(pos), g & letter != 0 { pos += 1 }
                ends.append(pos); continue
            }
            if let f = f2, f & number != 0 {
                if cpt == 0x20 { pos += 1 }
                while let g = c(pos), g & number != 0 { pos += 1 }
                ends.append(pos); continue
            }
            if let f = f2, f & (letter | number | space) == 0 {
                if cpt == 0x20 { pos += 1 }
                while let g = c(pos), g & (letter | number | space) == 0 { pos += 1 }
                ends.append(pos); continue
            }
            var n = 0
            while let g = c(pos + n), g & space != 0 { n += 1 }
            if n > 1 && pos + n < end {
                pos += n - 1  // \s+(?!\S): leave the last space to the next piece
            } else if n > 0 {
                pos += n
            } else {
                pos += 1
            }
            ends.append(pos)
        }
    }

    /// The Llama 3 regex (`maxDigits` 3), Qwen 2's (1) and Qwen 3.5's (1, marks in letter runs).
    static func llama3(_ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                       maxDigits: Int, marksInLetterRuns: Bool = false, _ ends: inout [Int]) {
        let end = range.upperBound
        let letter = marksInLetterRuns ? Self.letter | ScalarClass.mark.rawValue : Self.letter
        @inline(__always) func c(_ p: Int) -> UInt8? { p < end ? cls[p] : nil }
        @inline(__always) func isCRLF(_ p: Int) -> Bool { p < end && (s[p] == 0x0D || s[p] == 0x0A) }
        var pos = range.lowerBound
        while pos < end {
            let cpt = s[pos]
            let f = cls[pos]
            let k = contraction(s, pos, end, caseInsensitive: true)
            if k > 0 { pos += k; ends.append(pos); continue }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(cpt == 0x0D || cpt == 0x0A || f & number != 0) {
                if f & letter != 0 || (c(pos + 1).map { $0 & letter != 0 } ?? false) {
                    pos += 1
                    while let g = c(pos), g & letter != 0 { pos += 1 }
                    ends.append(pos); continue
                }
            }
            // \p{N}{1,maxDigits}
            if f & number != 0 {
                var start = pos
                while let g = c(pos), g & number != 0 {
                    pos += 1
                    if pos - start >= maxDigits { ends.append(pos); start = pos }
                }
                if pos > start { ends.append(pos) }
                continue
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*
            let f2 = cpt == 0x20 ? c(pos + 1) : f
            if (f2 ?? 0) & (letter | number | space) == 0 {
                if cpt == 0x20 { pos += 1 }
                while let g = c(pos), g & (letter | number | space) == 0 { pos += 1 }
                while isCRLF(pos) { pos += 1 }
                ends.append(pos); continue
            }
            var n = 0
            var lastLineBreakEnd = 0
            while let g = c(pos + n), g & space != 0 {
                if s[pos + n] == 0x0D || s[pos + n] == 0x0A { lastLineBreakEnd = pos + n + 1 }
                n += 1
            }
            if lastLineBreakEnd > 0 {
                pos = lastLineBreakEnd  // \s*[\r\n]+
            } else if n > 1 && pos + n < end {
                pos += n - 1
            } else if n > 0 {
                pos += n
            } else {
                pos += 1
            }
            ends.append(pos)
        }
    }
}

extension BPEPreTokenizer {
    /// The pieces `text` is split into before BPE merging (special tokens not considered).
    public func pieces(of text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var scalars: [UInt32] = [], offsets: [Int] = [], ends: [Int] = []
            decodeScalars(bytes, 0 ..< bytes.count, scalars: &scalars, offsets: &offsets)
            let classes = scalars.map { ScalarClass.of($0).rawValue }
            scalars.withUnsafeBufferPointer { s in
                classes.withUnsafeBufferPointer { c in split(s, c, 0 ..< s.count, into: &ends) }
            }
            var start = 0
            return ends.map { end in
                defer { start = end }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[offsets[start] ..< offsets[end]]), as: UTF8.self)
            }
        }
    }
}
