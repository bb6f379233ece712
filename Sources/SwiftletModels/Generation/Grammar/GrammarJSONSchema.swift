import Foundation
import SwiftletTensor

/// Converts a JSON Schema to a GBNF grammar whose texts are JSON documents valid under the
/// schema (the subset llama.cpp's `json-schema-to-grammar` handles): `type` (one or a list),
/// `properties` / `required` (properties appear in declaration order, required ones first as
/// llama.cpp orders them), `additionalProperties` (`false` or absent: none; `true` or a schema:
/// further keys that differ from the declared ones), `enum`, `const`, `items`, `prefixItems`,
/// `minItems` / `maxItems`, `$ref` into `$defs` / `definitions` (recursive references allowed),
/// `anyOf` / `oneOf`, `allOf` of objects, string `minLength` / `maxLength` / `pattern` /
/// `format` (`date`, `time`, `date-time`, `uuid`), integer `minimum` / `maximum` /
/// `exclusiveMinimum` / `exclusiveMaximum` (exact digit ranges). Unsupported or malformed parts throw
/// `SwiftletError.invalidSchema` with the JSON pointer of the part.
public enum GrammarJSONSchema {
    /// A grammar for documents valid under `schema` (JSON text).
    public static func grammar(schema: String) throws -> String {
        var converter = SchemaConverter(root: try OrderedJSON(parsing: schema))
        try converter.convertRoot()
        return converter.render()
    }

    /// A grammar for any JSON object (OpenAI's `json_object` response format).
    public static var anyObjectGrammar: String {
        var converter = SchemaConverter(root: .object([]))
        converter.rules["root"] = converter.primitive("object")
        return converter.render()
    }
}

struct SchemaConverter {
    let root: OrderedJSON
    var rules: [String: String] = [:]
    /// `$ref` targets already given a rule (the rule name), so recursive schemas terminate.
    var refRules: [String: String] = [:]
    var depth = 0
    static let maxDepth = 64
    static let maxRules = 10_000

    init(root: OrderedJSON) { self.root = root }

    func fail(_ reason: String, _ path: String) -> SwiftletError { .invalidSchema(reason: reason, path: path) }

    func render() -> String {
        var names = rules.keys.sorted()
        if let i = names.firstIndex(of: "root") { names.remove(at: i); names.insert("root", at: 0) }
        return names.map { "\($0) ::= \(rules[$0]!)" }.joined(separator: "\n") + "\n"
    }

    static let primitives: [String: (body: String, dependencies: [String])] = [
        "space": (#"| " " | "\n"{1,2} [ \t]{0,20}"#, []),
        "boolean": (#"("true" | "false") space"#, ["space"]),
        "null": (#""null" space"#, ["space"]),
        "integral-part": (#"[0] | [1-9] [0-9]{0,15}"#, []),
        "decimal-part": (#"[0-9]{1,16}"#, []),
        "integer": (#"("-"? integral-part) space"#, ["integral-part", "space"]),
        "number": (#"("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)? space"#, ["integral-part", "decimal-part", "space"]),
        "char": (#"[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})"#, []),
        "string": (#""\"" char* "\"" space"#, ["char", "space"]),
        "value": (#"object | array | string | number | boolean | null"#, ["object", "array", "string", "number", "boolean", "null"]),
        "object": (#""{" space ( string ":" space value ("," space string ":" space value)* )? "}" space"#, ["string", "value", "space"]),
        "array": (#""[" space ( value ("," space value)* )? "]" space"#, ["value", "space"]),
        "date": (#"[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )"#, []),
        "time": (#"([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )"#, []),
        "date-time": (#"date "T" time"#, ["date", "time"]),
        "uuid": (#"[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}"#, []),
    ]

    /// Adds a built-in rule and its dependencies; returns its name.
    @discardableResult
    mutating func primitive(_ name: String) -> String {
        guard rules[name] == nil, let p = Self.primitives[name] else { return name }
        rules[name] = p.body
        for d in p.dependencies { primitive(d) }
        return name
    }

    /// Adds `body` under a name derived from `base` (reusing an identical rule); returns the name.
    mutating func addRule(_ base: String, _ body: String) throws -> String {
        var name = Self.sanitize(base)
        if let existing = rules[name], existing != body {
            var i = 1
            while let other = rules["\(name)\(i)"], other != body { i += 1 }
            name = "\(name)\(i)"
        }
        guard rules.count < Self.maxRules else { throw fail("schema needs more than \(Self.maxRules) rules", "") }
        rules[name] = body
        return name
    }

    static func sanitize(_ s: String) -> String {
        let mapped = s.unicodeScalars.map { c -> Character in
            (c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c))) || c == "-" ? Character(c) : "-"
        }
        let name = String(mapped)
        return name.isEmpty ? "r" : name
    }

    mutating func convertRoot() throws {
        let body = try visit(root, name: "root", path: "")
        if body != "root" { rules["root"] = body }
    }

    /// The expression for `schema`; named sub-rules are added under `name`.
    mutating func visit(_ schema: OrderedJSON, name: String, path: String) throws -> String {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw fail("schema nested deeper than \(Self.maxDepth)", path) }
        if case let .bool(b) = schema {
            if b { return primitive("value") }
            throw fail("schema 'false' matches nothing", path)
        }
        guard case let .object(members) = schema else { throw fail("a schema must be an object or a boolean", path) }

        if let ref = schema["$ref"] {
            guard case let .string(ref) = ref else { throw fail("$ref must be a string", path + "/$ref") }
            return try visitReference(ref, path: path + "/$ref")
        }
        if let c = schema["const"] {
            primitive("space")
            return GrammarRegex.literal(c.text) + " space"
        }
        if let e = schema["enum"] {
            guard case let .array(values) = e, !values.isEmpty else { throw fail("enum must be a non-empty array", path + "/enum") }
            primitive("space")
            return "(" + values.map { GrammarRegex.literal($0.text) }.joined(separator: " | ") + ") space"
        }
        for key in ["anyOf", "oneOf"] {
            if let list = schema[key] {
                guard case let .array(items) = list, !items.isEmpty else { throw fail("\(key) must be a non-empty array", path + "/" + key) }
                var alternatives: [String] = []
                for (i, sub) in items.enumerated() {
                    let expr = try visit(sub, name: "\(name)-\(i)", path: path + "/\(key)/\(i)")
                    alternatives.append(try addRule("\(name)-\(i)", expr))
                }
                return alternatives.joined(separator: " | ")
            }
        }
        if let list = schema["allOf"] {
            guard case let .array(items) = list else { throw fail("allOf must be an array", path + "/allOf") }
            var properties: [(String, OrderedJSON)] = [], required: [OrderedJSON] = []
            for (i, item) in items.enumerated() {
                var sub = item
                if case let .string(ref)? = item["$ref"] { sub = try resolve(ref, path: path + "/allOf/\(i)/$ref") }
                if let t = sub["type"], t != .string("object") {
                    throw fail("allOf is supported for object schemas only", path + "/allOf/\(i)")
                }
                if case let .object(props)? = sub["properties"] {
                    for (k, v) in props where !properties.contains(where: { $0.0 == k }) { properties.append((k, v)) }
                }
                if case let .array(r)? = sub["required"] { required += r }
            }
            return try objectRule(.object([("type", .string("object")), ("properties", .object(properties)), ("required", .array(required))]),
                                  name: name, path: path)
        }

        var types: [String] = []
        switch schema["type"] {
        case let .string(t)?: types = [t]
        case let .array(list)?:
            for (i, t) in list.enumerated() {
                guard case let .string(t) = t else { throw fail("type must be a string or an array of strings", path + "/type/\(i)") }
                types.append(t)
            }
        case nil:
            if schema["properties"] != nil || schema["additionalProperties"] != nil {
                types = ["object"]
            } else if schema["items"] != nil || schema["prefixItems"] != nil {
                types = ["array"]
            } else if members.allSatisfy({ Self.annotationKeys.contains($0.0) }) {
                return primitive("value")
            } else if schema["pattern"] != nil || schema["format"] != nil || schema["minLength"] != nil || schema["maxLength"] != nil {
                types = ["string"]
            } else {
                return primitive("value")
            }
        default: throw fail("type must be a string or an array of strings", path + "/type")
        }
        if types.count != 1 {
            guard !types.isEmpty else { throw fail("type list is empty", path + "/type") }
            var alternatives: [String] = []
            for t in types {
                let single = OrderedJSON.object(members.filter { $0.0 != "type" } + [("type", .string(t))])
                alternatives.append(try addRule("\(name)-\(t)", try visit(single, name: "\(name)-\(t)", path: path)))
            }
            return alternatives.joined(separator: " | ")
        }
        switch types[0] {
        case "string": return try stringRule(schema, name: name, path: path)
        case "integer": return try integerRule(schema, path: path)
        case "number", "boolean", "null": return primitive(types[0])
        case "object":
            if schema["properties"] == nil && schema["additionalProperties"] == nil { return primitive("object") }
            return try objectRule(schema, name: name, path: path)
        case "array": return try arrayRule(schema, name: name, path: path)
        default: throw fail("unknown type '\(types[0])'", path + "/type")
        }
    }

    static let annotationKeys: Set<String> = ["description", "title", "$schema", "$defs", "definitions", "$id", "$comment",
                                              "examples", "default", "readOnly", "writeOnly", "deprecated"]

    mutating func stringRule(_ s: OrderedJSON, name: String, path: String) throws -> String {
        primitive("space")
        if case let .string(format)? = s["format"], ["date", "time", "date-time", "uuid"].contains(format) {
            return "\"\\\"\" " + primitive(format) + " \"\\\"\" space"
        }
        if let pattern = s["pattern"] {
            guard case let .string(pattern) = pattern else { throw fail("pattern must be a string", path + "/pattern") }
            let body: String
            do {
                body = try GrammarRegex.expression(pattern: pattern, insideJSONString: true)
            } catch let SwiftletError.invalidGrammar(reason, _, column) {
                throw fail("\(reason) (at character \(column) of the pattern)", path + "/pattern")
            }
            return "\"\\\"\" " + (try addRule("\(name)-pattern", body)) + " \"\\\"\" space"
        }
        let minLength = try count(s, "minLength", path) ?? 0
        let maxLength = try count(s, "maxLength", path)
        if let maxLength, maxLength < minLength { throw fail("maxLength is below minLength", path + "/maxLength") }
        if minLength > 2000 || (maxLength ?? 0) > 2000 { throw fail("string length bounds above 2000 are not supported", path) }
        if minLength == 0 && maxLength == nil { return primitive("string") }
        primitive("char")
        let repetition = maxLength == minLength ? "{\(minLength)}" : maxLength.map { "{\(minLength),\($0)}" } ?? "{\(minLength),}"
        return "\"\\\"\" char" + repetition + " \"\\\"\" space"
    }

    /// Integers within `minimum` / `maximum` (`exclusive…` as numbers, JSON Schema 2019+), as
    /// exact decimal digit ranges; no bound gives the plain `integer` rule.
    mutating func integerRule(_ s: OrderedJSON, path: String) throws -> String {
        func bound(_ key: String) throws -> Double? {
            guard let v = s[key] else { return nil }
            guard case let .number(text) = v, let d = Double(text), d.isFinite else { throw fail("\(key) must be a number", path + "/" + key) }
            guard abs(d) < 1e15 else { throw fail("\(key) beyond ±10^15 is not supported", path + "/" + key) }
            return d
        }
        var low: Int64? = try bound("minimum").map { Int64($0.rounded(.up)) }
        if let e = try bound("exclusiveMinimum") { low = max(low ?? .min, Int64(e.rounded(.down)) + 1) }
        var high: Int64? = try bound("maximum").map { Int64($0.rounded(.down)) }
        if let e = try bound("exclusiveMaximum") { high = min(high ?? .max, Int64(e.rounded(.up)) - 1) }
        if low == nil && high == nil { return primitive("integer") }
        if let low, let high, high < low { throw fail("no integer lies between the bounds", path) }
        primitive("space")
        return "(" + IntegerRange.expression(low: low, high: high) + ") space"
    }

    func count(_ s: OrderedJSON, _ key: String, _ path: String) throws -> Int? {
        guard let v = s[key] else { return nil }
        guard case let .number(text) = v, let d = Double(text), let i = Int(exactly: d), i >= 0 else {
            throw fail("\(key) must be a non-negative integer", path + "/" + key)
        }
        return i
    }

    mutating func arrayRule(_ s: OrderedJSON, name: String, path: String) throws -> String {
        primitive("space")
        if let prefix = s["prefixItems"] {
            guard case let .array(items) = prefix else { throw fail("prefixItems must be an array", path + "/prefixItems") }
            var parts: [String] = []
            for (i, sub) in items.enumerated() {
                parts.append(try addRule("\(name)-\(i)", try visit(sub, name: "\(name)-\(i)", path: path + "/prefixItems/\(i)")))
            }
            return "\"[\" space " + parts.joined(separator: " \",\" space ") + " \"]\" space"
        }
        let minItems = try count(s, "minItems", path) ?? 0
        let maxItems = try count(s, "maxItems", path)
        if let maxItems, maxItems < minItems { throw fail("maxItems is below minItems", path + "/maxItems") }
        if minItems > 2000 || (maxItems ?? 0) > 2000 { throw fail("item counts above 2000 are not supported", path) }
        if maxItems == 0 { return "\"[\" space \"]\" space" }
        let item = try addRule("\(name)-item", try visit(s["items"] ?? .object([]), name: "\(name)-item", path: path + "/items"))
        let restMin = max(minItems - 1, 0)
        let rest = maxItems.map { restMin == $0 - 1 ? "{\(restMin)}" : "{\(restMin),\($0 - 1)}" } ?? "{\(restMin),}"
        let list = item + " ( \",\" space " + item + " )" + rest
        return "\"[\" space " + (minItems == 0 ? "( " + list + " )?" : list) + " \"]\" space"
    }

    mutating func objectRule(_ s: OrderedJSON, name: String, path: String) throws -> String {
        primitive("space")
        var properties: [(String, OrderedJSON)] = []
        if let p = s["properties"] {
            guard case let .object(props) = p else { throw fail("properties must be an object", path + "/properties") }
            properties = props
        }
        var requiredNames: [String] = []
        if let r = s["required"] {
            guard case let .array(list) = r else { throw fail("required must be an array", path + "/required") }
            for (i, item) in list.enumerated() {
                guard case let .string(n) = item else { throw fail("required entries must be strings", path + "/required/\(i)") }
                requiredNames.append(n)
            }
        }
        let additional = s["additionalProperties"]
        let allowsMore: Bool
        switch additional {
        case nil, .bool(false)?: allowsMore = false
        default: allowsMore = true
        }
        for (i, r) in requiredNames.enumerated() where !properties.contains(where: { $0.0 == r }) && !allowsMore {
            throw fail("required property '\(r)' is not declared in properties", path + "/required/\(i)")
        }
        var kv: [String: String] = [:]
        for (key, sub) in properties {
            let valueName = "\(name)-\(key)"
            let value = try addRule(valueName, try visit(sub, name: valueName, path: path + "/properties/" + Self.pointerEscaped(key)))
            kv[key] = try addRule(valueName + "-kv", GrammarRegex.literal(OrderedJSON.string(key).text) + " space \":\" space " + value)
        }
        let order = properties.map(\.0)
        let required = order.filter { requiredNames.contains($0) }
        var optional = order.filter { !requiredNames.contains($0) }
        if allowsMore {
            let valueRule: String
            if case .object? = additional {
                valueRule = try addRule("\(name)-additional", try visit(additional!, name: "\(name)-additional", path: path + "/additionalProperties"))
            } else {
                valueRule = primitive("value")
            }
            let key = order.isEmpty
                ? primitive("string")
                : try addRule("\(name)-additional-k", notStrings(order, name: "\(name)-additional-k", path: path + "/properties"))
            kv["*"] = try addRule("\(name)-additional-kv", key + " \":\" space " + valueRule)
            optional.append("*")
        }
        var body = "\"{\" space " + required.map { kv[$0]! }.joined(separator: " \",\" space ")
        if !optional.isEmpty {
            // Each alternative starts with the first optional property present; later ones follow
            // with their commas.
            var alternatives: [String] = []
            for i in optional.indices {
                alternatives.append(try optionalChain(Array(optional[i...]), kv: kv, name: name, firstOptional: false))
            }
            body += " ( " + (required.isEmpty ? "" : "\",\" space ( ") + alternatives.joined(separator: " | ")
                + (required.isEmpty ? "" : " )") + " )?"
        }
        return body + " \"}\" space"
    }

    static func pointerEscaped(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    mutating func optionalChain(_ keys: [String], kv: [String: String], name: String, firstOptional: Bool) throws -> String {
        let k = keys[0]
        let comma = "( \",\" space " + kv[k]! + " )"
        var result = firstOptional ? comma + (k == "*" ? "*" : "?") : kv[k]! + (k == "*" ? " " + comma + "*" : "")
        if keys.count > 1 {
            let rest = try optionalChain(Array(keys.dropFirst()), kv: kv, name: name, firstOptional: true)
            result += " " + (try addRule("\(name)-\(k == "*" ? "additional" : k)-rest", rest))
        }
        return result
    }

    /// Trie levels kept inline in one rule; a deeper level continues in a rule of its own, so a
    /// long property name cannot nest groups past the GBNF parser's limit (`Grammar.Limits`).
    static let notStringsLevelsPerRule = 32
    /// Longest property name (in characters) a schema that allows additional properties may list:
    /// the trie is built by recursion, one level per character.
    static let maxExcludedNameLength = 1024

    /// A JSON string (with its quotes and trailing space) that is none of `strings`: a trie over
    /// their characters, leaving it at any point by a different character or by ending early.
    mutating func notStrings(_ strings: [String], name: String, path: String) throws -> String {
        if let long = strings.first(where: { $0.count > Self.maxExcludedNameLength }) {
            throw fail("property name of \(long.count) characters, more than \(Self.maxExcludedNameLength) "
                       + "with additionalProperties allowed", path)
        }
        final class Node { var children: [(Character, Node)] = []; var terminal = false }
        let trie = Node()
        for s in strings {
            var node = trie
            for c in s {
                if let next = node.children.first(where: { $0.0 == c })?.1 { node = next } else {
                    let n = Node(); node.children.append((c, n)); node = n
                }
            }
            node.terminal = true
        }
        let char = primitive("char")
        primitive("space")
        let close = "\"\\\"\" space"
        func alternatives(_ node: Node, level: Int) throws -> String {
            var alts: [String] = []
            for (c, child) in node.children {
                let rest = level + 1 < Self.notStringsLevelsPerRule
                    ? try alternatives(child, level: level + 1)
                    : try addRule(name + "-rest", try alternatives(child, level: 0))
                alts.append(GrammarRegex.literal(String(JSONText.quoted(String(c)).dropFirst().dropLast())) + " (" + rest + ")")
            }
            let excluded = node.children.map { c in String(c.0).unicodeScalars.map { GrammarRegex.escape($0, inClass: true) }.joined() }.joined()
            alts.append("[^\"\\\\\\x7F\\x00-\\x1F" + excluded + "] " + char + "* " + close)
            if !node.terminal { alts.append(close) }
            return alts.joined(separator: " | ")
        }
        return "\"\\\"\" (" + (try alternatives(trie, level: 0)) + ")"
    }

    func resolve(_ ref: String, path: String) throws -> OrderedJSON {
        guard ref.hasPrefix("#") else { throw fail("only local references (#/...) are supported", path) }
        var node = root
        for raw in ref.dropFirst().split(separator: "/", omittingEmptySubsequences: true) {
            let key = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let next = node[key] {
                node = next
            } else if case let .array(items) = node, let i = Int(key), items.indices.contains(i) {
                node = items[i]
            } else {
                throw fail("reference '\(ref)' does not resolve", path)
            }
        }
        return node
    }

    mutating func visitReference(_ ref: String, path: String) throws -> String {
        if let name = refRules[ref] { return name }
        let target = try resolve(ref, path: path)
        // A placeholder body unique to this reference, replaced once the target is converted.
        let name = try addRule("ref" + (ref.split(separator: "/").last.map { "-" + $0 } ?? ""), "(" + ref + ")")
        refRules[ref] = name
        rules[name] = try visit(target, name: name, path: path)
        return name
    }
}

/// GBNF for the decimal integers in a range (no leading zeros, `-0` excluded), built from
/// digit-by-digit ranges of equal-length numbers. Magnitudes stay below 10^16 (the 16 digits
/// of the `integral-part` rule).
enum IntegerRange {
    static let maxDigits = 16

    /// Integers `x` with `low ≤ x ≤ high`; nil leaves that side open.
    static func expression(low: Int64?, high: Int64?) -> String {
        let anyNatural = "[1-9] [0-9]{0,\(maxDigits - 1)}"
        var alternatives: [String] = []
        // Negative part: -x for x in [max(1, -high), -low].
        if low.map({ $0 < 0 }) ?? true {
            let from = max(1, high.map { $0 < 0 ? -$0 : 1 } ?? 1)
            alternatives.append("\"-\" (" + (low.map { naturals(from, -$0) } ?? atLeast(from)) + ")")
        }
        // Non-negative part: [max(0, low), high].
        if high.map({ $0 >= 0 }) ?? true {
            let from = max(0, low ?? 0)
            if let high { alternatives.append(naturals(from, high)) } else { alternatives.append(from == 0 ? "\"0\" | " + anyNatural : atLeast(from)) }
        }
        return alternatives.joined(separator: " | ")
    }

    /// `n ≥ from` (from ≥ 0) up to the digit bound.
    static func atLeast(_ from: Int64) -> String {
        let digits = String(from).count
        var parts = [naturals(from, pow10(digits) - 1)]
        if digits < maxDigits { parts.append("[1-9] [0-9]{\(digits),\(maxDigits - 1)}") }
        return parts.joined(separator: " | ")
    }

    /// `a ≤ n ≤ b` (0 ≤ a ≤ b), one alternative per digit count.
    static func naturals(_ a: Int64, _ b: Int64) -> String {
        var parts: [String] = []
        var length = String(a).count
        while length <= String(b).count {
            let lo = max(a, length == 1 ? 0 : pow10(length - 1))
            let hi = min(b, pow10(length) - 1)
            if lo <= hi { parts.append(sameLength(Array(String(lo).utf8), Array(String(hi).utf8))) }
            length += 1
        }
        return parts.count == 1 ? parts[0] : parts.map { "(" + $0 + ")" }.joined(separator: " | ")
    }

    static func pow10(_ n: Int) -> Int64 { (0..<n).reduce(1) { r, _ in r * 10 } }

    static func digitClass(_ from: UInt8, _ to: UInt8) -> String {
        from == to ? "\"\(Character(Unicode.Scalar(from)))\"" : "[\(Character(Unicode.Scalar(from)))-\(Character(Unicode.Scalar(to)))]"
    }

    static func anyDigits(_ n: Int) -> String { n == 0 ? "" : n == 1 ? " [0-9]" : " [0-9]{\(n)}" }

    /// Digit strings of one length between `lo` and `hi` (lo ≤ hi).
    static func sameLength(_ lo: [UInt8], _ hi: [UInt8]) -> String {
        var prefix = 0
        while prefix < lo.count && lo[prefix] == hi[prefix] { prefix += 1 }
        let shared = prefix == 0 ? "" : "\"" + String(decoding: lo[..<prefix], as: UTF8.self) + "\""
        if prefix == lo.count { return shared }
        let rest = lo.count - prefix - 1
        let l = lo[prefix], h = hi[prefix]
        let loRest = Array(lo[(prefix + 1)...]), hiRest = Array(hi[(prefix + 1)...])
        // A side whose remaining digits are all 0 (low) or all 9 (high) joins the free middle block.
        let lowFull = loRest.allSatisfy { $0 == UInt8(ascii: "0") }, highFull = hiRest.allSatisfy { $0 == UInt8(ascii: "9") }
        let blockFrom = lowFull ? l : l + 1, blockTo = highFull ? h : h - 1
        var choices: [String] = []
        if !lowFull { choices.append(digitClass(l, l) + suffix(loRest, atLeast: true)) }
        if blockFrom <= blockTo { choices.append(digitClass(blockFrom, blockTo) + anyDigits(rest)) }
        if !highFull { choices.append(digitClass(h, h) + suffix(hiRest, atLeast: false)) }
        let body = "(" + choices.joined(separator: " | ") + ")"
        return shared.isEmpty ? body : shared + " " + body
    }

    /// Digit strings of `bound.count` digits that are ≥ (or ≤) `bound`, with a leading space.
    static func suffix(_ bound: [UInt8], atLeast: Bool) -> String {
        guard let first = bound.first else { return "" }
        let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        if bound.allSatisfy({ $0 == (atLeast ? zero : nine) }) { return anyDigits(bound.count) }
        let rest = Array(bound.dropFirst())
        if rest.allSatisfy({ $0 == (atLeast ? zero : nine) }) {
            return " " + (atLeast ? digitClass(first, nine) : digitClass(zero, first)) + anyDigits(rest.count)
        }
        var choices = [digitClass(first, first) + suffix(rest, atLeast: atLeast)]
        if atLeast, first < nine { choices.append(digitClass(first + 1, nine) + anyDigits(rest.count)) }
        if !atLeast, first > zero { choices.append(digitClass(zero, first - 1) + anyDigits(rest.count)) }
        return " (" + choices.joined(separator: " | ") + ")"
    }
}
