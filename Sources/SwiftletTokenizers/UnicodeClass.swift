/// Character classes the pre-tokenizers need, per Unicode scalar: `\p{L}`, `\p{N}`, `\p{P}`, `\p{M}`, `\s`.
///
/// Letters are general categories Lu Ll Lt Lm Lo, numbers Nd Nl No, whitespace the
/// White_Space property — the classes llama.cpp's `unicode.cpp` uses for its regex splits.
struct ScalarClass: OptionSet, Sendable {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)
    static let number = ScalarClass(rawValue: 2)
    static let whitespace = ScalarClass(rawValue: 4)
    /// Unicode punctuation (P*), used by the BERT pre-tokenizer.
    static let punctuation = ScalarClass(rawValue: 8)
    /// Other (Cc Cf Cs Co; not unassigned Cn), which BERT's clean-up removes — the
    /// `is_other` of the unicode_categories crate that Hugging Face tokenizers uses.
    static let other = ScalarClass(rawValue: 16)
    /// Nonspacing mark (Mn), which BERT's accent stripping removes.
    static let nonspacingMark = ScalarClass(rawValue: 32)
    /// Unicode Changes_When_Lowercased (BERT's lower-casing looks up the mapping only then).
    static let changesWhenLowercased = ScalarClass(rawValue: 64)
    /// Any mark (Mn Mc Me), `\p{M}` (Qwen 3.5's letter runs take them).
    static let mark = ScalarClass(rawValue: 128)

    /// The class of `scalar`; the Basic Multilingual Plane comes from a table built once.
    @inline(__always)
    static func of(_ scalar: UInt32) -> ScalarClass {
        if scalar < 0x10000 { return ScalarClass(rawValue: bmpTable[Int(scalar)]) }
        guard let s = Unicode.Scalar(scalar) else { return [] }
        return compute(s)
    }

    static func compute(_ s: Unicode.Scalar) -> ScalarClass {
        var c: ScalarClass = []
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            c.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            c.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            c.insert(.punctuation)
        case .control, .format, .surrogate, .privateUse:
            c.insert(.other)
        case .nonspacingMark:
            c.insert([.nonspacingMark, .mark])
        case .spacingMark, .enclosingMark:
            c.insert(.mark)
        default: break
        }
        if isWhiteSpace(s.value) { c.insert(.whitespace) }
        if s.properties.changesWhenLowercased { c.insert(.changesWhenLowercased) }
        return c
    }

    /// The Unicode White_Space property (a fixed list; cheaper than a property lookup).
    static func isWhiteSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09 ... 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000 ... 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    static let bmpTable: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 0x10000)
        for v in 0 ..< 0x10000 {
            if let s = Unicode.Scalar(UInt32(v)) { table[v] = compute(s).rawValue } else { table[v] = other.rawValue }  // surrogates
        }
        return table
    }()
}
