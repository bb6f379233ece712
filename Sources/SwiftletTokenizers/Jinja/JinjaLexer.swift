import SwiftletCore

/// A 1-based position in template source.
public struct JinjaLocation: Sendable, Equatable {
    public var line: Int
    public var column: Int
}

/// How jinja2's environment treats whitespace around tags (transformers uses both `true`).
public struct JinjaWhitespace: Sendable, Equatable {
    /// Drop the first newline after a block or comment tag.
    public var trimBlocks: Bool
    /// Drop spaces and tabs between the start of a line and a block or comment tag.
    public var lstripBlocks: Bool
    /// Keep the template's final newline (jinja2 drops one by default).
    public var keepTrailingNewline: Bool

    public init(trimBlocks: Bool = true, lstripBlocks: Bool = true, keepTrailingNewline: Bool = false) {
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
        self.keepTrailingNewline = keepTrailingNewline
    }
}

/// One token of a template: literal text, tag delimiters, or a piece of an expression.
struct JinjaToken: Equatable {
    enum Kind: Equatable {
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        /// An operator or punctuation: `+ - * / // % ** ~ == != < > <= >= = . : | , ( ) [ ] { }`.
        case op(String)
        case end
    }
    var kind: Kind
    var location: JinjaLocation
}

/// Splits template source into tokens the way jinja2's lexer does, including its whitespace
/// rules: `{%-`/`-%}` strip all whitespace on that side, `+` disables `lstripBlocks`, and
/// the source's newlines are normalized to `\n` with one trailing newline dropped.
struct JinjaLexer {
    private let source: [Unicode.Scalar]
    private let whitespace: JinjaWhitespace
    private var position = 0
    private var line = 1
    private var column = 1
    private var tokens: [JinjaToken] = []

    init(source text: String, whitespace: JinjaWhitespace) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.utf8.count)  // an upper bound, without a counting pass
        var iterator = text.unicodeScalars.makeIterator()
        var pending = iterator.next()
        while let s = pending {
            pending = iterator.next()
            if s == "\r" {
                if pending == "\n" { pending = iterator.next() }
                scalars.append("\n")
            } else {
                scalars.append(s)
            }
        }
        if !whitespace.keepTrailingNewline, scalars.last == "\n" { scalars.removeLast() }
        source = scalars
        self.whitespace = whitespace
    }

    static func tokenize(_ text: String, whitespace: JinjaWhitespace) throws -> [JinjaToken] {
        var lexer = JinjaLexer(source: text, whitespace: whitespace)
        try lexer.run()
        return lexer.tokens
    }

    private var location: JinjaLocation { JinjaLocation(line: line, column: column) }

    private func error(_ message: String, at where_: JinjaLocation? = nil) -> SwiftletError {
        let at = where_ ?? location
        return .template(kind: .syntax, message: message, line: at.line, column: at.column)
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        position + offset < source.count ? source[position + offset] : nil
    }

    private mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where position < source.count {
            if source[position] == "\n" { line += 1; column = 1 } else { column += 1 }
            position += 1
        }
    }

    private func matches(_ text: String, at offset: Int = 0) -> Bool {
        var i = position + offset
        for s in text.unicodeScalars {
            guard i < source.count, source[i] == s else { return false }
            i += 1
        }
        return true
    }

    /// Python's `str.isspace` for the characters jinja2's `\s` and `rstrip()` remove.
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0d, 0x1c...0x20, 0x85, 0xa0: return true
        default: return s.value > 0x7f && s.properties.isWhitespace
        }
    }

    /// jinja2 names are ASCII: `[a-zA-Z_][a-zA-Z0-9_]*`.
    static func isASCIILetter(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("A"..."Z").contains(s)
    }

    private mutating func skipSpaces() {
        while let s = peek(), JinjaLexer.isSpace(s) { advance() }
    }

    private mutating func run() throws {
        var lineStarting = true
        while position < source.count {
            // Find the next tag opener.
            var tagStart = position
            var opener: Unicode.Scalar?
            while tagStart + 1 < source.count {
                if source[tagStart] == "{", ["{", "%", "#"].contains(source[tagStart + 1]) {
                    opener = source[tagStart + 1]
                    break
                }
                tagStart += 1
            }
            guard let kind = opener else {
                emitText(start: position, end: source.count)
                advance(source.count - position)
                return
            }
            let sign = tagStart + 2 < source.count ? source[tagStart + 2] : nil
            var textEnd = tagStart
            if sign == "-" {
                while textEnd > position, JinjaLexer.isSpace(source[textEnd - 1]) { textEnd -= 1 }
            } else if sign != "+", whitespace.lstripBlocks, kind != "{" {
                var lineStart = textEnd
                while lineStart > position, source[lineStart - 1] != "\n" { lineStart -= 1 }
                if lineStart > position || lineStarting,
                   source[lineStart..<textEnd].allSatisfy({ $0 == " " || $0 == "\t" }) {
                    textEnd = lineStart
                }
            }
            emitText(start: position, end: textEnd)
            advance(tagStart - position)
            let tagLocation = location
            advance(sign == "-" || sign == "+" ? 3 : 2)
            switch kind {
            case "#":
                lineStarting = try skipComment(from: tagLocation)
            case "{":
                tokens.append(JinjaToken(kind: .variableBegin, location: tagLocation))
                lineStarting = try lexExpression(closer: "}", blockLike: false)
            default:
                tokens.append(JinjaToken(kind: .blockBegin, location: tagLocation))
                lineStarting = try lexExpression(closer: "%", blockLike: true)
            }
        }
    }

    private mutating func emitText(start: Int, end: Int) {
        guard end > start else { return }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: source[start..<end])
        tokens.append(JinjaToken(kind: .text(String(s)), location: location))
    }

    /// Consumes the end of a tag (`-%}`, `+%}` or `%}`), applying its whitespace rule; returns
    /// whether the last consumed character was a newline.
    private mutating func consumeTagEnd(closer: Unicode.Scalar, blockLike: Bool) -> Bool {
        if peek() == "-" {
            advance(3)
            let before = position
            skipSpaces()
            return position > before ? source[position - 1] == "\n" : false
        }
        if peek() == "+" { advance(3); return false }
        advance(2)
        if blockLike, whitespace.trimBlocks, peek() == "\n" { advance(); return true }
        return false
    }

    private mutating func skipComment(from start: JinjaLocation) throws -> Bool {
        while position < source.count {
            if matches("-#}") || matches("+#}") || matches("#}") {
                return consumeTagEnd(closer: "#", blockLike: true)
            }
            advance()
        }
        throw error("missing end of comment tag", at: start)
    }

    private func atTagEnd(_ closer: Unicode.Scalar) -> Bool {
        func endsAt(_ offset: Int) -> Bool { peek(offset) == closer && peek(offset + 1) == "}" }
        return endsAt(0) || ((peek() == "-" || peek() == "+") && endsAt(1) && closer == "%")
            || (peek() == "-" && endsAt(1))
    }

    private mutating func lexExpression(closer: Unicode.Scalar, blockLike: Bool) throws -> Bool {
        var brackets: [Unicode.Scalar] = []
        while true {
            skipSpaces()
            guard let c = peek() else { throw error("unexpected end of template inside a tag") }
            if brackets.isEmpty, atTagEnd(closer) {
                let endLocation = location
                let newline = consumeTagEnd(closer: closer, blockLike: blockLike)
                tokens.append(JinjaToken(kind: blockLike ? .blockEnd : .variableEnd, location: endLocation))
                return newline
            }
            let start = location
            if c == "_" || Self.isASCIILetter(c) {
                var name = String.UnicodeScalarView()
                while let s = peek(), s == "_" || Self.isASCIILetter(s) || ("0"..."9").contains(s) {
                    name.append(s); advance()
                }
                tokens.append(JinjaToken(kind: .name(String(name)), location: start))
            } else if ("0"..."9").contains(c) {
                tokens.append(JinjaToken(kind: try number(), location: start))
            } else if c == "'" || c == "\"" {
                tokens.append(JinjaToken(kind: .string(try stringLiteral(quote: c)), location: start))
            } else {
                let two = "/*=!<>".unicodeScalars.contains(c) ? peek(1).map { String(c) + String($0) } : nil
                if let two, ["//", "**", "==", "!=", "<=", ">="].contains(two) {
                    advance(2)
                    tokens.append(JinjaToken(kind: .op(two), location: start))
                } else if "+-*/%~<>=.:|,()[]{}".unicodeScalars.contains(c) {
                    if c == "(" || c == "[" || c == "{" { brackets.append(c) }
                    if c == ")" || c == "]" || c == "}" {
                        let expected: Unicode.Scalar = c == ")" ? "(" : c == "]" ? "[" : "{"
                        guard brackets.last == expected else { throw error("unexpected '\(c)'") }
                        brackets.removeLast()
                    }
                    advance()
                    tokens.append(JinjaToken(kind: .op(String(c)), location: start))
                } else {
                    throw error("unexpected character '\(c)'")
                }
            }
        }
    }

    private mutating func number() throws -> JinjaToken.Kind {
        var text = ""
        func digits() {
            while let s = peek(), ("0"..."9").contains(s) || s == "_" { if s != "_" { text.unicodeScalars.append(s) }; advance() }
        }
        digits()
        var isFloat = false
        if peek() == ".", let next = peek(1), ("0"..."9").contains(next) {
            isFloat = true
            text += "."; advance(); digits()
        }
        if peek() == "e" || peek() == "E" {
            let sign = peek(1) == "+" || peek(1) == "-"
            if let d = peek(sign ? 2 : 1), ("0"..."9").contains(d) {
                isFloat = true
                text += "e"; advance()
                if sign { text.unicodeScalars.append(peek()!); advance() }
                digits()
            }
        }
        if isFloat {
            guard let d = Double(text) else { throw error("invalid number \(text)") }
            return .float(d)
        }
        guard let i = Int(text) else { throw error("integer literal \(text) too large") }
        return .integer(i)
    }

    /// A quoted literal with Python's backslash escapes (unknown escapes are kept as written).
    private mutating func stringLiteral(quote: Unicode.Scalar) throws -> String {
        let start = location
        advance()
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek() else { throw error("unterminated string literal", at: start) }
            advance()
            if c == quote { break }
            if c != "\\" { out.append(c); continue }
            guard let e = peek() else { throw error("unterminated string literal", at: start) }
            advance()
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\", "'", "\"": out.append(e)
            case "\n": break
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "0": out.append("\u{00}")
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                var hex = ""
                for _ in 0..<width { if let h = peek(), h.properties.isASCIIHexDigit { hex.unicodeScalars.append(h); advance() } }
                guard hex.count == width, let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else {
                    throw error("invalid \\\(e) escape in string literal")
                }
                out.append(scalar)
            default:
                out.append("\\"); out.append(e)
            }
        }
        return String(out)
    }
}
