/// Pre-tokenizers written as several regexes applied in turn, as llama.cpp's `unicode_regex_split`
/// runs them: each stage splits every piece the previous stage made, and the stretches a stage
/// matches and the stretches between its matches both become pieces.
///
/// llama.cpp runs these stages through `std::regex` (ECMAScript: leftmost match, greedy) on
/// codepoints where every non-ASCII whitespace character has been replaced by U+000B, so a
/// character class never contains a non-ASCII space, while `\s` matches all of them. The scalar
/// sets below follow that rule; `\p{L}`, `\p{N}`, `\p{P}` are Unicode general categories.
enum RegexStage {
    /// `X`: every character of the set is a piece of its own.
    case each(ScalarSet)
    /// `\s?X+` (`leadingSpace`) or `X+`.
    case runs(ScalarSet, leadingSpace: Bool)
    /// `\s+$`: the whitespace at the end of a piece.
    case trailingWhitespace
    /// `[0-9][0-9][0-9]`.
    case asciiDigitTriples
    /// The GPT-2 regex (`'s|'t|… ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`).
    case gpt2

    enum ScalarSet {
        /// `[\r\n]`
        case lineBreak
        /// `\p{L}`
        case letter
        /// `\p{N}`
        case number
        /// `\p{P}`
        case punctuation
        /// `[\p{P}$+<=>^~|`]` (Falcon)
        case falconPunctuation
        /// `[一-龥ࠀ-一가-퟿]`: CJK ideographs, U+0800…U+4E00 and Hangul (DeepSeek)
        case cjk
        /// DeepSeek LLM's letter class: the cased letters (Lu Ll Lt) of its tokenizer, listed as ranges.
        case casedLetter
        /// `[!-/:-~！-／：-～‘-‟　-。]` (DeepSeek LLM)
        case deepseekPunctuation

        @inline(__always)
        func contains(_ scalar: UInt32, _ cls: UInt8) -> Bool {
            switch self {
            case .lineBreak: return scalar == 0x0A || scalar == 0x0D
            case .letter: return cls & ScalarClass.letter.rawValue != 0
            case .number: return cls & ScalarClass.number.rawValue != 0
            case .punctuation: return cls & ScalarClass.punctuation.rawValue != 0
            case .falconPunctuation:
                if cls & ScalarClass.punctuation.rawValue != 0 { return true }
                switch scalar {
                case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C, 0x60: return true  // $ + < = > ^ ~ | `
                default: return false
                }
            case .cjk:
                if cls & ScalarClass.whitespace.rawValue != 0 { return false }
                return (0x4E00 ... 0x9FA5).contains(scalar) || (0x0800 ... 0x4E00).contains(scalar) || (0xAC00 ... 0xD7FF).contains(scalar)
            case .casedLetter:
                if scalar < 0x80 { return (0x41 ... 0x5A).contains(scalar) || (0x61 ... 0x7A).contains(scalar) }
                return RegexStage.inRanges(scalar, RegexStage.deepseekCasedLetters)
            case .deepseekPunctuation:
                if cls & ScalarClass.whitespace.rawValue != 0 { return false }  // U+3000 is a space
                return (0x21 ... 0x2F).contains(scalar) || (0x3A ... 0x7E).contains(scalar) || (0xFF01 ... 0xFF0F).contains(scalar)
                    || (0xFF1A ... 0xFF5E).contains(scalar) || (0x2018 ... 0x201F).contains(scalar) || (0x3000 ... 0x3002).contains(scalar)
            }
        }
    }

    /// Runs `stages` over `scalars[range]` and appends the end of every resulting piece to `ends`.
    static func apply(_ stages: [RegexStage], _ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>,
                      _ range: Range<Int>, _ ends: inout [Int]) {
        var current = [range.upperBound]
        var next: [Int] = []
        for stage in stages {
            next.removeAll(keepingCapacity: true)
            var start = range.lowerBound
            for end in current {
                stage.split(s, cls, start ..< end, &next)
                start = end
            }
            swap(&current, &next)
        }
        ends.append(contentsOf: current)
    }

    /// Appends the piece ends of one stage over `range` (matches and the stretches between).
    func split(_ s: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ ends: inout [Int]) {
        let a = range.lowerBound, b = range.upperBound
        var last = a
        @inline(__always) func match(_ start: Int, _ end: Int) {
            if start > last { ends.append(start) }
            ends.append(end)
            last = end
        }
        @inline(__always) func space(_ p: Int) -> Bool { cls[p] & ScalarClass.whitespace.rawValue != 0 }
        switch self {
        case .gpt2:
            PreTokenizerScanner.gpt2(s, cls, range, &ends)
            return
        case .each(let set):
            for p in a ..< b where set.contains(s[p], cls[p]) { match(p, p + 1) }
        case .runs(let set, let leadingSpace):
            var p = a
            while p < b {
                var q = p
                if leadingSpace && space(p) && p + 1 < b && set.contains(s[p + 1], cls[p + 1]) {
                    q = p + 1
                } else if !set.contains(s[p], cls[p]) {
                    p += 1
                    continue
                }
                while q < b && set.contains(s[q], cls[q]) { q += 1 }
                match(p, q)
                p = q
            }
        case .trailingWhitespace:
            var q = b
            while q > a && space(q - 1) { q -= 1 }
            if q < b { match(q, b) }
        case .asciiDigitTriples:
            @inline(__always) func digit(_ p: Int) -> Bool { s[p] >= 0x30 && s[p] <= 0x39 }
            var p = a
            while p + 2 < b {
                if digit(p) && digit(p + 1) && digit(p + 2) { match(p, p + 3); p += 3 } else { p += 1 }
            }
        }
        if last < b { ends.append(b) }
    }

    static func inRanges(_ scalar: UInt32, _ ranges: [ClosedRange<UInt32>]) -> Bool {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < scalar { lo = mid + 1 } else { hi = mid }
        }
        return lo < ranges.count && ranges[lo].contains(scalar)
    }

    /// The non-ASCII part of DeepSeek LLM's letter class (`[A-Za-zµÀ-ÖØ-ö…]` in its tokenizer), sorted.
    static let deepseekCasedLetters: [ClosedRange<UInt32>] = [
        0xB5 ... 0xB5, 0xC0 ... 0xD6, 0xD8 ... 0xF6, 0xF8 ... 0x1BA, 0x1BC ... 0x1BF, 0x1C4 ... 0x293, 0x295 ... 0x2AF,
        0x370 ... 0x373, 0x376 ... 0x377, 0x37B ... 0x37D, 0x37F ... 0x37F, 0x386 ... 0x386, 0x388 ... 0x38A,
        0x38C ... 0x38C, 0x38E ... 0x3A1, 0x3A3 ... 0x3F5, 0x3F7 ... 0x481, 0x48A ... 0x52F, 0x531 ... 0x556,
        0x10A0 ... 0x10C5, 0x13A0 ... 0x13F5, 0x13F8 ... 0x13FD, 0x1C90 ... 0x1CBA, 0x1CBD ... 0x1CBF,
        0x1D00 ... 0x1D2B, 0x1D6B ... 0x1D77, 0x1D79 ... 0x1D9A, 0x1E00 ... 0x1F15, 0x1F18 ... 0x1F1D,
        0x1F20 ... 0x1F45, 0x1F48 ... 0x1F4D, 0x1F50 ... 0x1F57, 0x1F59 ... 0x1F59, 0x1F5B ... 0x1F5B,
        0x1F5D ... 0x1F5D, 0x1F5F ... 0x1F7D, 0x1F80 ... 0x1FB4, 0x1FB6 ... 0x1FBC, 0x1FBE ... 0x1FBE,
        0x1FC2 ... 0x1FC4, 0x1FC6 ... 0x1FCC, 0x1FD0 ... 0x1FD3, 0x1FD6 ... 0x1FDB, 0x1FE0 ... 0x1FEC,
        0x1FF2 ... 0x1FF4, 0x1FF6 ... 0x1FFC, 0x2102 ... 0x2102, 0x2107 ... 0x2107, 0x210A ... 0x2113,
        0x2115 ... 0x2115, 0x2119 ... 0x211D, 0x2124 ... 0x2124, 0x2126 ... 0x2126, 0x2128 ... 0x2128,
        0x212A ... 0x212D, 0x212F ... 0x2134, 0x2139 ... 0x2139, 0x213C ... 0x213F, 0x2145 ... 0x2149,
        0x214E ... 0x214E, 0x2183 ... 0x2184, 0x2C00 ... 0x2C7B, 0x2C7E ... 0x2CE4, 0x2CEB ... 0x2CEE,
        0x2CF2 ... 0x2CF3, 0xA640 ... 0xA66D, 0xA680 ... 0xA69B, 0xA722 ... 0xA76F, 0xA771 ... 0xA787,
        0xA78B ... 0xA78E, 0xAB70 ... 0xABBF, 0xFB00 ... 0xFB06, 0xFB13 ... 0xFB17, 0xFF21 ... 0xFF3A,
        0xFF41 ... 0xFF5A, 0x10400 ... 0x1044F, 0x104B0 ... 0x104D3, 0x104D8 ... 0x104FB, 0x10C80 ... 0x10CB2,
        0x10CC0 ... 0x10CF2, 0x118A0 ... 0x118DF, 0x1E900 ... 0x1E943,
    ]
}
