import SwiftletCore

/// JSON in and out of template values, matching Python's `json` module: objects keep their key
/// order, and `dumps` lays text out as `json.dumps` does (transformers' `tojson` filter).
public enum JinjaJSON {
    /// Maximum nesting of arrays/objects accepted by `parse` (deeper input is an error, not a crash).
    public static let maximumDepth = 512

    /// Parses JSON text (as `json.loads`: integers stay integers, key order is kept).
    public static func parse(_ text: String) throws -> JinjaValue {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else { throw parser.error("trailing characters") }
        return value
    }

    /// `json.dumps(value, ensure_ascii=…, indent=…, separators=…, sort_keys=…)`; text longer than
    /// `maximumBytes` (UTF-8) is refused as it grows.
    public static func dumps(_ value: JinjaValue, indent: String? = nil, ensureASCII: Bool = false,
                             itemSeparator: String? = nil, keySeparator: String? = nil, sortKeys: Bool = false,
                             maximumBytes: Int = .max) throws -> String {
        var out = ""
        let items = itemSeparator ?? (indent == nil ? ", " : ",")
        let keys = keySeparator ?? ": "
        try write(value, into: &out, indent: indent, level: 0, ensureASCII: ensureASCII, items: items, keys: keys, sortKeys: sortKeys,
                  maximumBytes: maximumBytes)
        return out
    }

    private static func write(_ value: JinjaValue, into out: inout String, indent: String?, level: Int, ensureASCII: Bool,
                              items: String, keys: String, sortKeys: Bool, maximumBytes: Int) throws {
        guard level < maximumDepth else {
            throw SwiftletError.template(kind: .limit, message: "tojson: nesting deeper than \(maximumDepth)", line: 0, column: 0)
        }
        func checkSize(adding bytes: Int) throws {
            if bytes > maximumBytes - out.utf8.count {
                throw SwiftletError.template(kind: .limit, message: "tojson: output larger than \(maximumBytes) bytes", line: 0, column: 0)
            }
        }
        try checkSize(adding: 0)
        func newline(_ depth: Int) throws {
            guard let indent else { return }
            try checkSize(adding: 1 + indent.utf8.count * depth)
            out += "\n" + String(repeating: indent, count: depth)
        }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" }
            else { out += JinjaValue.pythonFloatRepr(d) }
        case .string(let s):
            try checkSize(adding: s.utf8.count)
            JSONText.append(s, to: &out, asciiOnly: ensureASCII)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, element) in a.enumerated() {
                try checkSize(adding: items.utf8.count)
                if i > 0 { out += items }
                try newline(level + 1)
                try write(element, into: &out, indent: indent, level: level + 1, ensureASCII: ensureASCII, items: items, keys: keys, sortKeys: sortKeys,
                          maximumBytes: maximumBytes)
            }
            try newline(level)
            out += "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{"
            // json.dumps writes non-string keys as their JSON text.
            func keyText(_ k: JinjaValue) -> String {
                switch k {
                case .string(let s): return s
                case .none: return "null"
                case .bool(let b): return b ? "true" : "false"
                default: return k.pythonRepr
                }
            }
            var entries = o.entries.map { (keyText($0.key), $0.value) }
            if sortKeys { entries.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) } }
            for (i, (key, value)) in entries.enumerated() {
                try checkSize(adding: items.utf8.count + key.utf8.count + keys.utf8.count)
                if i > 0 { out += items }
                try newline(level + 1)
                JSONText.append(key, to: &out, asciiOnly: ensureASCII)
                out += keys
                try write(value, into: &out, indent: indent, level: level + 1, ensureASCII: ensureASCII, items: items, keys: keys, sortKeys: sortKeys,
                          maximumBytes: maximumBytes)
            }
            try newline(level)
            out += "}"
        case .undefined, .namespace, .callable:
            throw SwiftletError.template(kind: .type, message: "Object of type \(value.typeName) is not JSON serializable", line: 0, column: 0)
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        func error(_ what: String) -> SwiftletError {
            .invalidArgument("JSON: \(what) at byte \(position)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[position]) { position += 1 }
        }

        mutating func value(depth: Int) throws -> JinjaValue {
            guard depth < JinjaJSON.maximumDepth else { throw error("nesting deeper than \(JinjaJSON.maximumDepth)") }
            guard position < bytes.count else { throw error("unexpected end") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var object = JinjaObject()
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
                while true {
                    skipWhitespace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key") }
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    skipWhitespace()
                    object[key] = try value(depth: depth + 1)
                    skipWhitespace()
                    if try separatorOrEnd("}") { return .object(object) }
                }
            case UInt8(ascii: "["):
                position += 1
                var array: [JinjaValue] = []
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(array) }
                while true {
                    skipWhitespace()
                    array.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if try separatorOrEnd("]") { return .array(array) }
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .none
            default: return try number()
            }
        }

        mutating func expect(_ c: Unicode.Scalar) throws {
            guard position < bytes.count, bytes[position] == UInt8(ascii: c) else { throw error("expected '\(c)'") }
            position += 1
        }

        /// After an element: true at the closing bracket, false after a comma.
        mutating func separatorOrEnd(_ close: Unicode.Scalar) throws -> Bool {
            guard position < bytes.count else { throw error("unexpected end") }
            if bytes[position] == UInt8(ascii: close) { position += 1; return true }
            try expect(",")
            return false
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard position + w.count <= bytes.count, Array(bytes[position..<position + w.count]) == w else {
                throw error("invalid literal")
            }
            position += w.count
        }

        mutating func number() throws -> JinjaValue {
            let start = position
            var isFloat = false
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            while position < bytes.count {
                let b = bytes[position]
                if b >= 0x30 && b <= 0x39 { position += 1 }
                else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
                            || ((b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) && isFloat) { isFloat = true; position += 1 }
                else { break }
            }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            guard !text.isEmpty, text != "-" else { throw error("unexpected character") }
            if !isFloat, let i = Int(text) { return .int(i) }
            guard let d = Double(text) else { throw error("invalid number '\(text)'") }
            return .double(d)
        }

        mutating func string() throws -> String {
            position += 1  // opening quote
            var out = [UInt8]()
            while true {
                guard position < bytes.count else { throw error("unterminated string") }
                let b = bytes[position]
                position += 1
                if b == UInt8(ascii: "\"") { break }
                if b != UInt8(ascii: "\\") { out.append(b); continue }
                guard position < bytes.count else { throw error("unterminated escape") }
                let e = bytes[position]
                position += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xd800..<0xdc00).contains(code), position + 1 < bytes.count,
                       bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                        let next = position
                        position += 2
                        let low = try hex4()
                        if (0xdc00..<0xe000).contains(low) {
                            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00)
                        } else {
                            position = next   // not a pair: the high surrogate stands alone (U+FFFD), the escape after it is read on its own
                        }
                    }
                    let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw error("invalid escape")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count,
                  let v = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16) else {
                throw error("invalid \\u escape")
            }
            position += 4
            return v
        }
    }
}
