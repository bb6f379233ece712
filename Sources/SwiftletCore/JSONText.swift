/// JSON string literals written the way Python's `json.dumps` and llama.cpp's JSON library write
/// them, so text Swiftlet renders (chat templates, grammars from schemas, benchmark reports)
/// matches theirs byte for byte.
public enum JSONText {
    /// `s` as a JSON string literal, quotes included.
    ///
    /// `"` and `\` are escaped, `\n \r \t \b \f` by name and other control characters as
    /// `\u00xx`. With `asciiOnly` (Python's `ensure_ascii`), every scalar outside `' '...'~'` is
    /// written as `\uxxxx`, as a UTF-16 surrogate pair above U+FFFF.
    public static func quoted(_ s: String, asciiOnly: Bool = false) -> String {
        var out = ""
        append(s, to: &out, asciiOnly: asciiOnly)
        return out
    }

    /// Appends `s` as a JSON string literal to `out` (see ``quoted(_:asciiOnly:)``).
    public static func append(_ s: String, to out: inout String, asciiOnly: Bool = false) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || (asciiOnly && scalar.value > 0x7E && scalar.value <= 0xFFFF) {
                    out += "\\u" + hex4(scalar.value)
                } else if asciiOnly && scalar.value > 0xFFFF {
                    let v = scalar.value - 0x10000
                    out += "\\u" + hex4(0xD800 + (v >> 10)) + "\\u" + hex4(0xDC00 + (v & 0x3FF))
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
