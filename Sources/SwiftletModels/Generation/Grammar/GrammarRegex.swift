import Foundation
import SwiftletTensor

/// Turns a regular expression into a GBNF expression that matches exactly the strings the
/// regex matches in full (`^…$` is implied). Supported: literals, `.`, classes `[…]` / `[^…]`
/// with ranges, `\d \w \s \D \W \S`, escapes, groups `( … )` / `(?: … )`, alternation and the
/// quantifiers `? * + {m} {m,} {m,n}` (lazy `?` suffixes are accepted and ignored). Anchors are
/// allowed only at the ends. Back-references and look-arounds throw
/// `SwiftletError.invalidGrammar` with the column in the pattern.
public enum GrammarRegex {
    /// A GBNF grammar (`root ::= …`) for `pattern`.
    public static func grammar(pattern: String) throws -> String {
        "root ::= " + (try expression(pattern: pattern, insideJSONString: false)) + "\n"
    }

    /// A GBNF expression for `pattern`. With `insideJSONString`, the expression matches the
    /// JSON-escaped form of the strings (the text between the quotes of a JSON string).
    public static func expression(pattern: String, insideJSONString: Bool) throws -> String {
        var parser = RegexParser(scalars: Array(pattern.unicodeScalars), json: insideJSONString)
        do {
            let result = try parser.parseAll()
            return result
        } catch let failure as RegexParser.Failure {
            throw SwiftletError.invalidGrammar(reason: "regex: " + failure.reason, line: 1, column: failure.offset + 1)
        }
    }

    /// `scalar` inside a GBNF string literal or class.
    static func escape(_ scalar: Unicode.Scalar, inClass: Bool) -> String {
        switch scalar {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "[" where inClass, "]" where inClass, "-" where inClass: return "\\" + String(scalar)
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F { return String(format: "\\x%02X", scalar.value) }
            return String(scalar)
        }
    }

    /// A GBNF literal `"…"` for `text`.
    public static func literal(_ text: String) -> String {
        "\"" + text.unicodeScalars.map { escape($0, inClass: false) }.joined() + "\""
    }
}

struct RegexParser {
    struct Failure: Error { var reason: String; var offset: Int }
    let scalars: [Unicode.Scalar]
    let json: Bool
    var pos = 0
    var depth = 0
    static let maxDepth = 64

    init(scalars: [Unicode.Scalar], json: Bool) { self.scalars = scalars; self.json = json }

    /// One JSON string character (as the JSON text spells it).
    static let jsonChar = #"( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )"#

    var peek: Unicode.Scalar? { pos < scalars.count ? scalars[pos] : nil }

    mutating func parseAll() throws -> String {
        if peek == "^" { pos += 1 }
        let e = try parseAlternation()
        if peek == "$" { pos += 1 }
        if pos < scalars.count {
            throw Failure(reason: scalars[pos] == ")" ? "unbalanced ')'" : "unexpected '\(scalars[pos])'", offset: pos)
        }
        return e
    }

    mutating func parseAlternation() throws -> String {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxDepth { throw Failure(reason: "groups nested deeper than \(Self.maxDepth)", offset: pos) }
        var alternatives = [try parseSequence()]
        while peek == "|" {
            pos += 1
            alternatives.append(try parseSequence())
        }
        return alternatives.count == 1 ? alternatives[0] : "(" + alternatives.joined(separator: " | ") + ")"
    }

    mutating func parseSequence() throws -> String {
        var items: [String] = []
        while let c = peek, c != "|", c != ")" {
            if c == "$" && pos == scalars.count - 1 { break }
            var atom = try parseAtom()
            // One quantifier: a second (`a**`, `a{2}{3}`) is Python's "multiple repeat" error (and
            // would nest a group per quantifier).
            if let q = peek, isQuantifier(at: pos) {
                let at = pos
                if q == "{", let (m, n, end) = parseBraces(pos) {
                    pos = end
                    if let n, n < m { throw Failure(reason: "repetition {\(m),\(n)} has max below min", offset: at) }
                    if m > 2000 || (n ?? 0) > 2000 { throw Failure(reason: "repetition count above 2000", offset: at) }
                    atom = "(" + atom + ")" + (n == m ? "{\(m)}" : n.map { "{\(m),\($0)}" } ?? "{\(m),}")
                } else {
                    pos += 1
                    atom = "(" + atom + ")" + String(q)
                }
                if peek == "?" || peek == "+" { pos += 1 }  // lazy / possessive: same language
                if isQuantifier(at: pos) { throw Failure(reason: "multiple repeat", offset: pos) }
            }
            items.append(atom)
        }
        return items.isEmpty ? "\"\"" : items.joined(separator: " ")
    }

    /// Whether a quantifier (`*`, `+`, `?` or a brace repetition) starts at `i`.
    func isQuantifier(at i: Int) -> Bool {
        guard i < scalars.count else { return false }
        switch scalars[i] {
        case "*", "+", "?": return true
        case "{": return parseBraces(i) != nil
        default: return false
        }
    }

    /// `{m}`, `{m,}` or `{m,n}` at `start`, or nil when the brace is a literal.
    func parseBraces(_ start: Int) -> (Int, Int?, Int)? {
        var i = start + 1
        func number() -> Int? {
            var v = 0, digits = 0
            while i < scalars.count, let d = Int(String(scalars[i])), scalars[i].isASCII {
                v = min(v * 10 + d, 1_000_000); digits += 1; i += 1
            }
            return digits > 0 ? v : nil
        }
        guard let m = number() else { return nil }
        if i < scalars.count && scalars[i] == "}" { return (m, m, i + 1) }
        guard i < scalars.count && scalars[i] == "," else { return nil }
        i += 1
        let n = number()
        guard i < scalars.count && scalars[i] == "}" else { return nil }
        return (m, n, i + 1)
    }

    mutating func parseAtom() throws -> String {
        let start = pos
        let c = scalars[pos]
        pos += 1
        switch c {
        case "(":
            if peek == "?" {
                guard pos + 1 < scalars.count, scalars[pos + 1] == ":" else {
                    throw Failure(reason: "look-arounds and named groups are not supported", offset: start)
                }
                pos += 2
            }
            let inner = try parseAlternation()
            guard peek == ")" else { throw Failure(reason: "unclosed group", offset: start) }
            pos += 1
            return "(" + inner + ")"
        case "[":
            return try parseClass(start)
        case ".":
            return json ? Self.jsonChar : "[^\\n]"
        case "\\":
            return try parseEscape(start, inClass: false)
        case "*", "+", "?":
            throw Failure(reason: "nothing to repeat", offset: start)
        case "^", "$":
            throw Failure(reason: "anchors are supported only at the start and end", offset: start)
        default:
            return literal(c)
        }
    }

    func literal(_ c: Unicode.Scalar) -> String {
        if json {
            switch c {
            case "\"": return #""\\\"""#
            case "\\": return #""\\\\""#
            case "\n": return #""\\n""#
            case "\t": return #""\\t""#
            case "\r": return #""\\r""#
            default:
                if c.value < 0x20 { return "\"\\\\u" + String(format: "%04x", c.value) + "\"" }
            }
        }
        return "\"" + GrammarRegex.escape(c, inClass: false) + "\""
    }

    /// Class members (GBNF class syntax) for `\d`-style shorthands; negated ones handled by the caller.
    static func shorthand(_ c: Unicode.Scalar) -> (members: String, negated: Bool)? {
        switch c {
        case "d": return ("0-9", false)
        case "D": return ("0-9", true)
        case "w": return ("a-zA-Z0-9_", false)
        case "W": return ("a-zA-Z0-9_", true)
        case "s": return (" \\t\\n\\r\\x0B\\x0C", false)
        case "S": return (" \\t\\n\\r\\x0B\\x0C", true)
        default: return nil
        }
    }

    mutating func escapedScalar(_ start: Int) throws -> Unicode.Scalar {
        guard let e = peek else { throw Failure(reason: "pattern ends with a backslash", offset: start) }
        pos += 1
        switch e {
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "f": return "\u{0C}"
        case "v": return "\u{0B}"
        case "0": return "\u{0}"
        case "x", "u":
            let count = e == "x" ? 2 : 4
            guard pos + count <= scalars.count, let v = UInt32(String(String.UnicodeScalarView(scalars[pos..<pos + count])), radix: 16),
                  let s = Unicode.Scalar(v) else { throw Failure(reason: "bad \\\(e) escape", offset: start) }
            pos += count
            return s
        default:
            if e.properties.isAlphabetic || ("1"..."9").contains(e) {
                throw Failure(reason: "unsupported escape \\\(e)", offset: start)
            }
            return e
        }
    }

    mutating func parseEscape(_ start: Int, inClass: Bool) throws -> String {
        if let e = peek, let (members, negated) = Self.shorthand(e) {
            pos += 1
            if negated { return json ? "[^" + members + "\"\\\\\\x7F\\x00-\\x1F]" : "[^" + members + "]" }
            return "[" + members + "]"
        }
        return literal(try escapedScalar(start))
    }

    mutating func parseClass(_ start: Int) throws -> String {
        var negated = false
        if peek == "^" { negated = true; pos += 1 }
        var members = ""
        var first = true
        while true {
            guard let c = peek else { throw Failure(reason: "unclosed character class", offset: start) }
            if c == "]" && !first { pos += 1; break }
            first = false
            var low: Unicode.Scalar
            let at = pos
            pos += 1
            if c == "\\" {
                if let e = peek, let (m, neg) = Self.shorthand(e) {
                    if neg { throw Failure(reason: "negated shorthand inside a class", offset: at) }
                    pos += 1
                    members += m
                    continue
                }
                low = try escapedScalar(at)
            } else {
                low = c
            }
            members += GrammarRegex.escape(low, inClass: true)
            if peek == "-", pos + 1 < scalars.count, scalars[pos + 1] != "]" {
                pos += 1
                var high = scalars[pos]
                let highAt = pos
                pos += 1
                if high == "\\" { high = try escapedScalar(highAt) }
                if high.value < low.value { throw Failure(reason: "class range out of order", offset: at) }
                members += "-" + GrammarRegex.escape(high, inClass: true)
            }
        }
        if json {
            // Quotes, backslashes and control characters need JSON escapes: keep them out.
            return negated ? "[^" + members + "\"\\\\\\x7F\\x00-\\x1F]" : "[" + members + "]"
        }
        return (negated ? "[^" : "[") + members + "]"
    }
}
