import Foundation
import SwiftletCore

/// Filters, tests, globals, operators and Python methods of template values.
///
/// Builtins throw errors without a position (line 0); the interpreter adds the position of
/// the expression that called them.
enum JinjaBuiltins {
    static func fail(_ kind: TemplateErrorKind, _ message: String) -> SwiftletError {
        .template(kind: kind, message: message, line: 0, column: 0)
    }

    /// jinja2's built-in filter names (and transformers' `tojson`): a template naming another
    /// filter does not compile, as in jinja2 (except inside an `if`, where it fails when it runs).
    /// The ones this interpreter does not implement fail when they run.
    static let filterNames: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
        "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount",
        "wordwrap", "xmlattr",
    ]

    static let testNames: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lower", "lt", "lessthan", "mapping",
        "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
        "==", "!=", "<", "<=", ">", ">=",
    ]

    // MARK: Globals

    /// The sandbox caps `range` as jinja2's does.
    static let maximumRange = 100_000

    static func installGlobals(in scope: JinjaScope) {
        scope.variables["range"] = .callable(JinjaCallable(name: "range") { args, _ in
            let numbers = try args.positional.map { try integer($0, "range") }
            let (start, stop, step): (Int, Int, Int)
            switch numbers.count {
            case 1: (start, stop, step) = (0, numbers[0], 1)
            case 2: (start, stop, step) = (numbers[0], numbers[1], 1)
            case 3: (start, stop, step) = (numbers[0], numbers[1], numbers[2])
            default: throw fail(.type, "range expected 1 to 3 arguments, got \(numbers.count)")
            }
            guard step != 0 else { throw fail(.type, "range() arg 3 must not be zero") }
            let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
            guard count <= maximumRange else { throw fail(.limit, "range too big (\(count) > \(maximumRange))") }
            return .array((0..<count).map { .int(start + $0 * step) })
        })
        scope.variables["namespace"] = .callable(JinjaCallable(name: "namespace") { args, _ in
            let attributes = try dictionary(args)
            if let bad = attributes.keys.first(where: { $0.hasPrefix("_") }) {
                throw fail(.security, "namespace attributes cannot start with an underscore: '\(bad)'")
            }
            return .namespace(JinjaNamespace(attributes))
        })
        scope.variables["dict"] = .callable(JinjaCallable(name: "dict") { args, _ in .object(try dictionary(args)) })
        scope.variables["raise_exception"] = .callable(JinjaCallable(name: "raise_exception") { args, _ in
            throw fail(.raised, args.positional.first?.pythonString ?? "")
        })
        scope.variables["strftime_now"] = .callable(JinjaCallable(name: "strftime_now") { args, interpreter in
            guard let format = args.value(0, "format")?.stringValue else { throw fail(.type, "strftime_now expects a format string") }
            return .string(strftime(format, date: interpreter.date))
        })
    }

    /// `dict(mapping_or_pairs, **kwargs)`.
    private static func dictionary(_ args: JinjaArguments) throws -> JinjaObject {
        var o = JinjaObject()
        if let first = args.positional.first {
            switch first {
            case .object(let source): o = source
            case .array(let pairs):
                for pair in pairs {
                    guard case .array(let kv) = pair, kv.count == 2 else { throw fail(.type, "dict() needs key/value pairs") }
                    o[kv[0].pythonString] = kv[1]
                }
            case .namespace(let ns): o = ns.attributes
            default: throw fail(.type, "'\(first.typeName)' object is not a mapping")
            }
        }
        for (k, v) in args.keyword { o[k] = v }
        return o
    }

    static func strftime(_ format: String, date: JinjaDate?) -> String {
        var t = tm()
        if let date {
            t.tm_year = Int32(date.year - 1900); t.tm_mon = Int32(date.month - 1); t.tm_mday = Int32(date.day)
            t.tm_hour = Int32(date.hour); t.tm_min = Int32(date.minute); t.tm_sec = Int32(date.second)
            var seconds = timegm(&t)  // also fills in the weekday and day of the year
            gmtime_r(&seconds, &t)
        } else {
            var now = time(nil)
            localtime_r(&now, &t)
        }
        let capacity = 256 + format.utf8.count * 16
        var buffer = [Int8](repeating: 0, count: capacity)
        let written = Foundation.strftime(&buffer, capacity, format, &t)
        return String(decoding: buffer[0..<written].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Attributes and items

    static func undefinedError(_ value: JinjaValue) -> SwiftletError {
        if case .undefined(let name) = value { return fail(.undefined, "\(name) is undefined") }
        return fail(.undefined, "undefined value")
    }

    /// `value.name`: a Python attribute (method) first, then a dictionary key, as jinja2's getattr.
    static func attribute(of value: JinjaValue, _ name: String, interpreter: JinjaInterpreter) throws -> JinjaValue {
        switch value {
        case .undefined: throw undefinedError(value)
        case .object(let o):
            if let method = dictionaryMethod(o, name) { return method }
            return o[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        case .string(let s):
            return stringMethod(s, name) ?? .undefined("'str object' has no attribute '\(name)'")
        case .array(let a):
            return listMethod(a, name) ?? .undefined("'list object' has no attribute '\(name)'")
        case .namespace(let ns):
            return ns.attributes[name] ?? .undefined("'Namespace' has no attribute '\(name)'")
        default:
            return .undefined("'\(value.typeName) object' has no attribute '\(name)'")
        }
    }

    /// `value[key]`: a dictionary key or list index first, then a Python attribute.
    static func item(of value: JinjaValue, _ key: JinjaValue, interpreter: JinjaInterpreter) throws -> JinjaValue {
        switch (value, key) {
        case (.undefined, _): throw undefinedError(value)
        case (.array(let a), _) where key.numericValue != nil:
            guard case .int(let i) = key.numericValue! else { throw fail(.type, "list indices must be integers") }
            let index = i < 0 ? a.count + i : i
            return a.indices.contains(index) ? a[index] : .undefined("list index \(i)")
        case (.string(let s), _) where key.numericValue != nil:
            guard case .int(let i) = key.numericValue! else { throw fail(.type, "string indices must be integers") }
            let scalars = Array(s.unicodeScalars)
            let index = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(index) ? .string(String(scalars[index])) : .undefined("string index \(i)")
        case (.object(let o), _):
            if let v = o[key: key] { return v }
            if case .string(let k) = key { return dictionaryMethod(o, k) ?? .undefined("'dict object' has no attribute '\(k)'") }
            return .undefined("'dict object' has no item \(key.pythonRepr)")
        case (_, .string(let k)):
            return try attribute(of: value, k, interpreter: interpreter)
        default:
            return .undefined("'\(value.typeName) object' has no item \(key.pythonRepr)")
        }
    }

    static func slice(_ value: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func bound(_ v: JinjaValue?) throws -> Int? {
            guard let v, !(v == .none) else { return nil }
            return try integer(v, "slice")
        }
        let stepValue = try bound(step) ?? 1
        guard stepValue != 0 else { throw fail(.type, "slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            func clamp(_ i: Int?, _ defaultValue: Int) -> Int {
                guard var i else { return defaultValue }
                if i < 0 { i += count }
                return stepValue > 0 ? min(max(i, 0), count) : min(max(i, -1), count - 1)
            }
            let first = clamp(try bound(start), stepValue > 0 ? 0 : count - 1)
            let last = clamp(try bound(stop), stepValue > 0 ? count : -1)
            return Array(stride(from: first, to: last, by: stepValue))
        }
        switch value {
        case .array(let a): return .array(try indices(a.count).map { a[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try indices(scalars.count) { out.append(scalars[i]) }
            return .string(String(out))
        case .undefined: throw undefinedError(value)
        default: throw fail(.type, "'\(value.typeName)' object is not subscriptable")
        }
    }

    static func method(_ name: String, _ body: @escaping (JinjaArguments) throws -> JinjaValue) -> JinjaValue {
        .callable(JinjaCallable(name: name) { args, _ in try body(args) })
    }

    /// A method whose result is a new string, checked against the render's bounds.
    static func buildingMethod(_ name: String, _ body: @escaping (JinjaArguments, _ maximumBytes: Int) throws -> String) -> JinjaValue {
        .callable(JinjaCallable(name: name) { args, interpreter in
            let result = try body(args, interpreter.limits.maximumOutputBytes)
            try interpreter.checkSize(result.utf8.count, at: nil)
            return .string(result)
        })
    }

    /// The UTF-8 size of a value as printed, counted up to just past `limit` (an estimate that
    /// never exceeds the true size by more than the quotes and separators it counts).
    static func printedSize(_ value: JinjaValue, limit: Int) -> Int {
        var total = 0
        func visit(_ v: JinjaValue) {
            guard total <= limit else { return }
            switch v {
            case .string(let s): total += s.utf8.count + 2
            case .array(let a): total += 2; for item in a { visit(item); total += 2; if total > limit { return } }
            case .object(let o):
                total += 2
                for (key, item) in o.entries { visit(key); visit(item); total += 4; if total > limit { return } }
            case .namespace(let ns):
                total += 14
                for (key, item) in ns.attributes { total += key.utf8.count + 6; visit(item); if total > limit { return } }
            default: total += 24
            }
        }
        visit(value)
        return total
    }

    static func tooLarge(_ maximumBytes: Int) -> SwiftletError {
        fail(.limit, "output larger than \(maximumBytes) bytes")
    }

    /// A method the immutable sandbox refuses to run.
    static func unsafeMethod(_ type: String, _ name: String) -> JinjaValue {
        method(name) { _ in throw fail(.security, "access to attribute '\(name)' of '\(type)' object is unsafe") }
    }

    static func dictionaryMethod(_ o: JinjaObject, _ name: String) -> JinjaValue? {
        switch name {
        case "items": return method(name) { _ in itemPairs(o) }
        case "keys": return method(name) { _ in .array(o.keyValues) }
        case "values": return method(name) { _ in .array(o.map { $0.value }) }
        case "get":
            return method(name) { args in
                guard let key = args.value(0, "key") else { throw fail(.type, "get expected at least 1 argument") }
                if let v = o[key: key] { return v }
                return args.value(1, "default") ?? .none
            }
        case "copy": return method(name) { _ in .object(o) }
        case "clear", "pop", "popitem", "setdefault", "update": return unsafeMethod("dict", name)
        default: return nil
        }
    }

    static func listMethod(_ a: [JinjaValue], _ name: String) -> JinjaValue? {
        switch name {
        case "count": return method(name) { args in .int(a.filter { $0 == (args.positional.first ?? .none) }.count) }
        case "index":
            return method(name) { args in
                guard let i = a.firstIndex(of: args.positional.first ?? .none) else { throw fail(.type, "value is not in list") }
                return .int(i)
            }
        case "copy": return method(name) { _ in .array(a) }
        case "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort": return unsafeMethod("list", name)
        default: return nil
        }
    }

    static func itemPairs(_ o: JinjaObject) -> JinjaValue {
        .array(o.entries.map { .array([$0.key, $0.value]) })
    }

    // MARK: Strings

    static func isSpace(_ s: Unicode.Scalar) -> Bool { JinjaLexer.isSpace(s) }

    /// Python's `str.strip(chars)` family: `leading`/`trailing` choose the sides.
    static func strip(_ s: String, _ chars: JinjaValue?, leading: Bool, trailing: Bool) throws -> String {
        let remove: (Unicode.Scalar) -> Bool
        switch chars {
        case nil, .none?: remove = isSpace
        case .string(let c)?: let set = Set(c.unicodeScalars); remove = { set.contains($0) }
        case let other?: throw fail(.type, "strip arg must be None or str, not \(other.typeName)")
        }
        var scalars = Substring(s).unicodeScalars[...]
        if leading { while let f = scalars.first, remove(f) { scalars = scalars.dropFirst() } }
        if trailing { while let l = scalars.last, remove(l) { scalars = scalars.dropLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    /// Python's `str.split(sep, maxsplit)`.
    static func split(_ s: String, _ separator: JinjaValue?, maxSplit: Int) throws -> [String] {
        var parts: [String] = []
        let scalars = Array(s.unicodeScalars)
        func text(_ r: Range<Int>) -> String { var v = String.UnicodeScalarView(); v.append(contentsOf: scalars[r]); return String(v) }
        switch separator {
        case nil, .none?:
            var i = 0
            while i < scalars.count {
                while i < scalars.count, isSpace(scalars[i]) { i += 1 }
                if i == scalars.count { break }
                if maxSplit >= 0, parts.count == maxSplit {
                    var end = scalars.count
                    while end > i, isSpace(scalars[end - 1]) { end -= 1 }
                    parts.append(text(i..<end))
                    break
                }
                let start = i
                while i < scalars.count, !isSpace(scalars[i]) { i += 1 }
                parts.append(text(start..<i))
            }
        case .string(let sepText)?:
            let sep = Array(sepText.unicodeScalars)
            guard !sep.isEmpty else { throw fail(.type, "empty separator") }
            var start = 0
            var i = 0
            while i + sep.count <= scalars.count {
                if (maxSplit < 0 || parts.count < maxSplit), Array(scalars[i..<i + sep.count]) == sep {
                    parts.append(text(start..<i))
                    i += sep.count
                    start = i
                } else {
                    i += 1
                }
            }
            parts.append(text(start..<scalars.count))
        case let other?:
            throw fail(.type, "must be str or None, not \(other.typeName)")
        }
        return parts
    }

    /// Python's `str.replace(old, new, count)`; a result over `maximumBytes` (UTF-8) is refused
    /// before it is built.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int, maximumBytes: Int) throws -> String {
        let scalars = Array(s.unicodeScalars)
        let o = Array(old.unicodeScalars)
        let growth = new.utf8.count - old.utf8.count
        var bytes = s.utf8.count
        var out = String.UnicodeScalarView()
        var done = 0
        func charge() throws {
            bytes += growth
            if bytes > maximumBytes { throw tooLarge(maximumBytes) }
        }
        if o.isEmpty {
            for sc in scalars {
                if count < 0 || done < count { try charge(); out.append(contentsOf: new.unicodeScalars); done += 1 }
                out.append(sc)
            }
            if count < 0 || done < count { try charge(); out.append(contentsOf: new.unicodeScalars) }
            return String(out)
        }
        var i = 0
        while i < scalars.count {
            if (count < 0 || done < count), i + o.count <= scalars.count, scalars[i..<i + o.count].elementsEqual(o) {
                try charge()
                out.append(contentsOf: new.unicodeScalars)
                i += o.count
                done += 1
            } else {
                out.append(scalars[i])
                i += 1
            }
        }
        return String(out)
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return String(first).uppercased() + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
    }

    /// Python's `str.title()`: a letter after a cased letter is lowered, any other is raised.
    static func pythonTitle(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for scalar in s.unicodeScalars {
            let c = String(scalar)
            out += previousCased ? c.lowercased() : c.uppercased()
            previousCased = scalar.properties.isCased
        }
        return out
    }

    /// jinja2's `title` filter: words start after `-`, whitespace, `(`, `{`, `[` or `<`.
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atWordStart = true
        for scalar in s.unicodeScalars {
            let isBreak = isSpace(scalar) || "-({[<".unicodeScalars.contains(scalar)
            if isBreak { out.unicodeScalars.append(scalar); atWordStart = true; continue }
            out += atWordStart ? String(scalar).uppercased() : String(scalar).lowercased()
            atWordStart = false
        }
        return out
    }

    static func stringMethod(_ s: String, _ name: String) -> JinjaValue? {
        switch name {
        case "startswith", "endswith":
            return method(name) { args in
                let candidates: [JinjaValue]
                switch args.positional.first {
                case .string?: candidates = [args.positional[0]]
                case .array(let a)?: candidates = a
                default: throw fail(.type, "\(name) first arg must be str or a tuple of str")
                }
                let scalars = Array(s.unicodeScalars)
                for case .string(let c) in candidates {
                    let cs = Array(c.unicodeScalars)
                    if name == "startswith" ? scalars.starts(with: cs) : scalars.reversed().starts(with: cs.reversed()) {
                        return .bool(true)
                    }
                }
                return .bool(false)
            }
        case "strip": return method(name) { args in .string(try strip(s, args.value(0, "chars"), leading: true, trailing: true)) }
        case "lstrip": return method(name) { args in .string(try strip(s, args.value(0, "chars"), leading: true, trailing: false)) }
        case "rstrip": return method(name) { args in .string(try strip(s, args.value(0, "chars"), leading: false, trailing: true)) }
        case "split":
            return method(name) { args in
                let maxSplit = try args.value(1, "maxsplit").map { try integer($0, "maxsplit") } ?? -1
                return .array(try split(s, args.value(0, "sep"), maxSplit: maxSplit).map { .string($0) })
            }
        case "rsplit":
            return method(name) { args in
                let maxSplit = try args.value(1, "maxsplit").map { try integer($0, "maxsplit") } ?? -1
                if maxSplit < 0 { return .array(try split(s, args.value(0, "sep"), maxSplit: -1).map { .string($0) }) }
                // Split the reversed text with the reversed separator, then reverse back.
                let reversedText = String(String.UnicodeScalarView(s.unicodeScalars.reversed()))
                var sep = args.value(0, "sep")
                if case .string(let t)? = sep { sep = .string(String(String.UnicodeScalarView(t.unicodeScalars.reversed()))) }
                let parts = try split(reversedText, sep, maxSplit: maxSplit)
                return .array(parts.reversed().map { .string(String(String.UnicodeScalarView($0.unicodeScalars.reversed()))) })
            }
        case "splitlines":
            return method(name) { _ in
                var lines = s.components(separatedBy: "\n")
                if lines.last == "" { lines.removeLast() }
                return .array(lines.map { .string($0) })
            }
        case "upper": return method(name) { _ in .string(s.uppercased()) }
        case "lower": return method(name) { _ in .string(s.lowercased()) }
        case "title": return method(name) { _ in .string(pythonTitle(s)) }
        case "capitalize": return method(name) { _ in .string(capitalize(s)) }
        case "replace":
            return buildingMethod(name) { args, maximumBytes in
                guard case .string(let old)? = args.value(0, "old"), case .string(let new)? = args.value(1, "new") else {
                    throw fail(.type, "replace expects two strings")
                }
                let count = try args.value(2, "count").map { try integer($0, "count") } ?? -1
                return try replace(s, old, new, count: count, maximumBytes: maximumBytes)
            }
        case "join":
            return buildingMethod(name) { args, maximumBytes in
                guard let items = args.positional.first else { throw fail(.type, "join expects an iterable") }
                var parts: [String] = []
                var bytes = 0
                for item in try iterateStatic(items) {
                    guard case .string(let t) = item else { throw fail(.type, "sequence item: expected str instance, \(item.typeName) found") }
                    bytes += t.utf8.count + (parts.isEmpty ? 0 : s.utf8.count)
                    if bytes > maximumBytes { throw tooLarge(maximumBytes) }
                    parts.append(t)
                }
                return parts.joined(separator: s)
            }
        case "find", "rfind", "count", "index":
            return method(name) { args in
                guard case .string(let needle)? = args.positional.first else { throw fail(.type, "\(name) expects a string") }
                let h = Array(s.unicodeScalars), n = Array(needle.unicodeScalars)
                var hits: [Int] = []
                var i = 0
                while i + n.count <= h.count {
                    if Array(h[i..<i + n.count]) == n { hits.append(i); i += max(n.count, 1) } else { i += 1 }
                    if name == "find" || name == "index", !hits.isEmpty { break }
                }
                if name == "count" { return .int(hits.count) }
                if name == "rfind" {
                    var last = -1
                    var j = 0
                    while j + n.count <= h.count { if Array(h[j..<j + n.count]) == n { last = j }; j += 1 }
                    return .int(last)
                }
                if hits.isEmpty && name == "index" { throw fail(.type, "substring not found") }
                return .int(hits.first ?? -1)
            }
        case "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower":
            return method(name) { _ in
                let scalars = Array(s.unicodeScalars)
                guard !scalars.isEmpty else { return .bool(false) }
                switch name {
                case "isdigit": return .bool(scalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
                case "isalpha": return .bool(scalars.allSatisfy { $0.properties.isAlphabetic })
                case "isalnum": return .bool(scalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
                case "isspace": return .bool(scalars.allSatisfy(isSpace))
                case "isupper": return .bool(s.uppercased() == s && s.lowercased() != s)
                default: return .bool(s.lowercased() == s && s.uppercased() != s)
                }
            }
        case "format":
            return buildingMethod(name) { args, maximumBytes in try pythonFormat(s, args, maximumBytes: maximumBytes) }
        default:
            return nil
        }
    }

    /// Python's `str.format` for plain fields: `{}`, `{0}`, `{name}` and `{{`/`}}`.
    static func pythonFormat(_ s: String, _ args: JinjaArguments, maximumBytes: Int) throws -> String {
        var out = ""
        var automatic = 0
        var chars = s.makeIterator()
        while let c = chars.next() {
            if c == "{" {
                var field = ""
                var closed = false
                while let d = chars.next() {
                    if d == "{" && field.isEmpty { out.append("{"); closed = true; field = "\u{0}"; break }
                    if d == "}" { closed = true; break }
                    field.append(d)
                }
                if field == "\u{0}" { continue }
                guard closed else { throw fail(.type, "Single '{' encountered in format string") }
                guard !field.contains(":"), !field.contains("!") else { throw fail(.type, "format specifications are not supported") }
                let value: JinjaValue?
                if field.isEmpty {
                    value = automatic < args.positional.count ? args.positional[automatic] : nil
                    automatic += 1
                } else if let i = Int(field) {
                    value = i < args.positional.count ? args.positional[i] : nil
                } else {
                    value = args.keyword.first { $0.0 == field }?.1
                }
                guard let value else { throw fail(.type, "format: missing argument '\(field)'") }
                if out.utf8.count + printedSize(value, limit: maximumBytes) > maximumBytes { throw tooLarge(maximumBytes) }
                out += value.pythonString
            } else if c == "}" {
                guard chars.next() == "}" else { throw fail(.type, "Single '}' encountered in format string") }
                out.append("}")
            } else {
                out.append(c)
            }
        }
        return out
    }

    static func iterateStatic(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .array(let a): return a
        case .object(let o): return o.keyValues
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw fail(.type, "'\(value.typeName)' object is not iterable")
        }
    }

    static func integer(_ v: JinjaValue, _ what: String) throws -> Int {
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: throw fail(.type, "\(what): '\(v.typeName)' object cannot be interpreted as an integer")
        }
    }

    // MARK: Operators

    static func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue, interpreter: JinjaInterpreter) throws -> JinjaValue {
        if a.isUndefined { throw undefinedError(a) }
        if b.isUndefined { throw undefinedError(b) }
        func unsupported() -> SwiftletError {
            fail(.type, "unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        switch op {
        case "+":
            switch (a, b) {
            case let (.string(x), .string(y)):
                try interpreter.checkSize(x.utf8.count + y.utf8.count, at: nil)
                return .string(x + y)
            case let (.array(x), .array(y)):
                try interpreter.chargeElements(x.count + y.count)
                return .array(x + y)
            default: break
            }
        case "*":
            switch (a, b) {
            case (.string(let x), _) where b.numericValue != nil, (_, .string(let x)) where a.numericValue != nil:
                guard case .int(let n) = (a.stringValue == nil ? a : b).numericValue! else { throw unsupported() }
                try interpreter.checkSize(x.utf8.count.multipliedReportingOverflow(by: max(n, 0)).overflow ? Int.max : x.utf8.count * max(n, 0), at: nil)
                return .string(String(repeating: x, count: max(n, 0)))
            case (.array(let x), _) where b.numericValue != nil, (_, .array(let x)) where a.numericValue != nil:
                guard case .int(let n) = (b.numericValue ?? a.numericValue)! else { throw unsupported() }
                let total = x.count.multipliedReportingOverflow(by: max(n, 0))
                guard !total.overflow, total.partialValue <= maximumRange else { throw fail(.limit, "list repetition too large") }
                try interpreter.chargeElements(total.partialValue)
                return .array(Array([[JinjaValue]](repeating: x, count: max(n, 0)).joined()))
            default: break
            }
        default: break
        }
        guard let x = a.numericValue, let y = b.numericValue else { throw unsupported() }
        if case .int(let i) = x, case .int(let j) = y {
            func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> JinjaValue {
                guard !r.overflow else { throw fail(.limit, "integer overflow in \(op)") }
                return .int(r.partialValue)
            }
            switch op {
            case "+": return try checked(i.addingReportingOverflow(j))
            case "-": return try checked(i.subtractingReportingOverflow(j))
            case "*": return try checked(i.multipliedReportingOverflow(by: j))
            case "/":
                guard j != 0 else { throw fail(.type, "division by zero") }
                return .double(Double(i) / Double(j))
            case "//":
                guard j != 0 else { throw fail(.type, "integer division or modulo by zero") }
                let q = i / j
                return .int((i % j != 0) && ((i < 0) != (j < 0)) ? q - 1 : q)
            case "%":
                guard j != 0 else { throw fail(.type, "integer division or modulo by zero") }
                let r = i % j
                return .int(r != 0 && ((r < 0) != (j < 0)) ? r + j : r)
            case "**":
                guard j >= 0 else { return .double(pow(Double(i), Double(j))) }
                var result = 1
                for _ in 0..<min(j, 64) {
                    let r = result.multipliedReportingOverflow(by: i)
                    guard !r.overflow else { throw fail(.limit, "integer overflow in **") }
                    result = r.partialValue
                }
                if j > 64 && abs(i) > 1 { throw fail(.limit, "integer overflow in **") }
                return .int(result)
            default: throw unsupported()
            }
        }
        let p = x.asDouble, q = y.asDouble
        switch op {
        case "+": return .double(p + q)
        case "-": return .double(p - q)
        case "*": return .double(p * q)
        case "/":
            guard q != 0 else { throw fail(.type, "float division by zero") }
            return .double(p / q)
        case "//":
            guard q != 0 else { throw fail(.type, "float floor division by zero") }
            return .double((p / q).rounded(.down))
        case "%":
            guard q != 0 else { throw fail(.type, "float modulo") }
            let r = fmod(p, q)
            return .double(r != 0 && ((r < 0) != (q < 0)) ? r + q : r)
        case "**": return .double(pow(p, q))
        default: throw unsupported()
        }
    }

    static func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return a == b
        case "!=": return a != b
        case "in": return try contains(b, a)
        case "not in": return try !contains(b, a)
        default:
            let order = try ordering(a, b, op)
            switch op {
            case "<": return order < 0
            case ">": return order > 0
            case "<=": return order <= 0
            default: return order >= 0
            }
        }
    }

    static func contains(_ container: JinjaValue, _ element: JinjaValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let e) = element else {
                throw fail(.type, "'in <string>' requires string as left operand, not \(element.typeName)")
            }
            return e.isEmpty || s.unicodeScalars.count >= e.unicodeScalars.count && Array(s.unicodeScalars).firstRange(of: Array(e.unicodeScalars)) != nil
        case .array(let a): return a.contains(element)
        case .object(let o): return o[key: element] != nil
        case .undefined: return false
        case .namespace(let ns):
            if case .string(let k) = element { return ns.attributes[k] != nil }
            return false
        default: throw fail(.type, "argument of type '\(container.typeName)' is not iterable")
        }
    }

    /// Python ordering of two values: numbers, strings (by code point) and lists.
    static func ordering(_ a: JinjaValue, _ b: JinjaValue, _ op: String = "<") throws -> Int {
        if let x = a.numericValue, let y = b.numericValue {
            if case .int(let i) = x, case .int(let j) = y { return i < j ? -1 : i > j ? 1 : 0 }
            let p = x.asDouble, q = y.asDouble
            return p < q ? -1 : p > q ? 1 : 0
        }
        switch (a, b) {
        case let (.string(x), .string(y)):
            let (u, v) = (Array(x.unicodeScalars), Array(y.unicodeScalars))
            for (p, q) in zip(u, v) where p != q { return p.value < q.value ? -1 : 1 }
            return u.count < v.count ? -1 : u.count > v.count ? 1 : 0
        case let (.array(x), .array(y)):
            for (p, q) in zip(x, y) where p != q { return try ordering(p, q, op) }
            return x.count < y.count ? -1 : x.count > y.count ? 1 : 0
        default:
            if a.isUndefined { throw undefinedError(a) }
            if b.isUndefined { throw undefinedError(b) }
            throw fail(.type, "'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
    }
}
