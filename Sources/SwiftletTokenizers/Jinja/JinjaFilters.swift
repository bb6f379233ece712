import SwiftletCore

extension JinjaBuiltins {
    // MARK: Filters

    /// Filters jinja2 writes as Python generators: their result cannot go through `tojson` or
    /// be printed meaningfully.
    static let generatorFilters: Set<String> = ["map", "select", "reject", "selectattr", "rejectattr", "unique", "batch", "slice"]

    static func filter(_ name: String, _ value: JinjaValue, _ args: JinjaArguments, interpreter: JinjaInterpreter) throws -> JinjaValue {
        func string(_ v: JinjaValue) throws -> String { try interpreter.text(of: v, at: nil) }
        // jinja2's map and select family yield nothing for a false value (None, empty).
        if ["map", "select", "reject", "selectattr", "rejectattr"].contains(name), !value.isTruthy { return .array([]) }
        func flag(_ i: Int, _ n: String, _ d: Bool = false) -> Bool { args.value(i, n)?.isTruthy ?? d }
        switch name {
        case "safe":
            return value
        case "string":
            return .string((try string(value)))
        case "trim":
            return .string(try strip((try string(value)), args.value(0, "chars"), leading: true, trailing: true))
        case "upper": return .string((try string(value)).uppercased())
        case "lower": return .string((try string(value)).lowercased())
        case "title": return .string(jinjaTitle((try string(value))))
        case "capitalize": return .string(capitalize((try string(value))))
        case "replace":
            guard let old = args.value(0, "old"), let new = args.value(1, "new") else { throw fail(.type, "replace expects old and new") }
            let count = try args.value(2, "count").flatMap { $0 == .none ? nil : try integer($0, "count") } ?? -1
            let result = try replace(string(value), string(old), string(new), count: count,
                                     maximumBytes: interpreter.limits.maximumOutputBytes)
            try interpreter.checkSize(result.utf8.count, at: nil)
            return .string(result)
        case "default", "d":
            let fallback = args.value(0, "default_value") ?? .string("")
            if value.isUndefined || (flag(1, "boolean") && !value.isTruthy) { return fallback }
            return value
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.count)
            case .undefined: return .int(0)
            default: throw fail(.type, "object of type '\(value.typeName)' has no len()")
            }
        case "first":
            if case .undefined = value { throw undefinedError(value) }
            return try iterateStatic(value).first ?? .undefined("first item of an empty sequence")
        case "last":
            if case .undefined = value { throw undefinedError(value) }
            if case .object = value { throw fail(.type, "'dict' object is not reversible") }
            return try iterateStatic(value).last ?? .undefined("last item of an empty sequence")
        case "list":
            return .array(try iterateStatic(value))
        case "items":
            switch value {
            case .undefined: return .array([])
            case .object(let o): return itemPairs(o)
            default: throw fail(.type, "Can only get item pairs from a mapping.")
            }
        case "join":
            let separator = try args.value(0, "d").map(string) ?? ""
            var items = try iterateStatic(value)
            if let attribute = args.value(1, "attribute") { items = try items.map { try attributePath($0, attribute, interpreter: interpreter) } }
            var bytes = 0
            for item in items {
                bytes += printedSize(item, limit: interpreter.limits.maximumOutputBytes) + separator.utf8.count
                try interpreter.checkSize(bytes, at: nil, charged: false)
            }
            let result = try items.map(string).joined(separator: separator)
            try interpreter.checkSize(result.utf8.count, at: nil)
            return .string(result)
        case "tojson":
            var indent: String?
            switch args.value(1, "indent") {
            case .int(let n)?:
                try interpreter.checkSize(n, at: nil, charged: false)
                indent = String(repeating: " ", count: max(n, 0))
            case .string(let s)?: indent = s
            case nil, .none?: indent = nil
            case let other?: throw fail(.type, "tojson: indent must be an integer or string, not \(other.typeName)")
            }
            var itemSeparator: String?, keySeparator: String?
            if case .array(let pair)? = args.value(2, "separators"), pair.count == 2 {
                itemSeparator = try string(pair[0]); keySeparator = try string(pair[1])
            }
            let result = try JinjaJSON.dumps(value, indent: indent, ensureASCII: flag(0, "ensure_ascii"),
                                             itemSeparator: itemSeparator, keySeparator: keySeparator, sortKeys: flag(3, "sort_keys"),
                                             maximumBytes: interpreter.limits.maximumOutputBytes)
            try interpreter.checkSize(result.utf8.count, at: nil)
            return .string(result)
        case "int":
            let fallback = args.value(0, "default") ?? .int(0)
            switch value {
            case .int, .bool: return value.numericValue!
            case .double(let d): return d.isFinite && abs(d) < 9e18 ? .int(Int(d)) : fallback
            case .string(let s):
                let t = try strip(s, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                if let i = Int(t) { return .int(i) }
                if let d = Double(t), d.isFinite, abs(d) < 9e18 { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "float":
            let fallback = args.value(0, "default") ?? .double(0)
            switch value {
            case .int, .bool, .double: return .double(value.asDouble)
            case .string(let s): return Double(try strip(s, nil, leading: true, trailing: true)).map { .double($0) } ?? fallback
            default: return fallback
            }
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .double(let d): return .double(abs(d))
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw fail(.type, "bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            let precision = try args.value(0, "precision").map { try integer($0, "precision") } ?? 0
            let method = try args.value(1, "method").map(string) ?? "common"
            let scale = pow10(precision)
            let x = value.asDouble * scale
            let r: Double
            switch method {
            case "ceil": r = x.rounded(.up)
            case "floor": r = x.rounded(.down)
            default: r = x.rounded(.toNearestOrAwayFromZero)
            }
            return .double(r / scale)
        case "escape", "e", "forceescape":
            return .string(escapeHTML((try string(value))))
        case "indent":
            let width: String
            switch args.value(0, "width") {
            case .string(let s)?: width = s
            case let w?:
                let n = try integer(w, "width")
                try interpreter.checkSize(n, at: nil, charged: false)
                width = String(repeating: " ", count: max(0, n))
            case nil: width = "    "
            }
            let text = try string(value)
            let lines = text.utf8.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            let (extra, overflow) = lines.multipliedReportingOverflow(by: width.utf8.count)
            try interpreter.checkSize(overflow ? Int.max : text.utf8.count + extra, at: nil)
            return .string(indent(text, width, first: flag(1, "first"), blank: flag(2, "blank")))
        case "center":
            let width = try args.value(0, "width").map { try integer($0, "width") } ?? 80
            try interpreter.checkSize(width, at: nil)
            let s = (try string(value))
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            let total = width - n
            let left = total / 2 + (total & width & 1)
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: total - left))
        case "reverse":
            switch value {
            case .string(let s): return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed())))
            default: return .array(try iterateStatic(value).reversed())
            }
        case "sort":
            let key = try sortKey(args.value(2, "case_sensitive"), args.value(3, "attribute"), interpreter: interpreter)
            let sorted = try stableSort(try iterateStatic(value), key: key)
            return .array(flag(0, "reverse") ? sorted.reversed() : sorted)
        case "dictsort":
            guard case .object(let o) = value else { throw fail(.type, "dictsort: can only sort a mapping") }
            let byValue = try args.value(1, "by").map(string) == "value"
            let caseSensitive = flag(0, "case_sensitive")
            let pairs = o.entries.map { JinjaValue.array([$0.key, $0.value]) }
            let sorted = try stableSort(pairs) { pair in
                guard case .array(let kv) = pair else { return pair }
                let k = kv[byValue ? 1 : 0]
                if !caseSensitive, case .string(let s) = k { return .string(s.lowercased()) }
                return k
            }
            return .array(flag(2, "reverse") ? sorted.reversed() : sorted)
        case "unique":
            let key = try sortKey(args.value(0, "case_sensitive"), args.value(1, "attribute"), interpreter: interpreter)
            var seen: [JinjaValue] = []
            var out: [JinjaValue] = []
            for item in try iterateStatic(value) {
                let k = try key(item)
                if !seen.contains(k) { seen.append(k); out.append(item) }
            }
            return .array(out)
        case "min", "max":
            let key = try sortKey(args.value(0, "case_sensitive"), args.value(1, "attribute"), interpreter: interpreter)
            let sorted = try stableSort(try iterateStatic(value), key: key)
            return (name == "min" ? sorted.first : sorted.last) ?? .undefined("\(name) of an empty sequence")
        case "sum":
            var total = args.value(1, "start") ?? .int(0)
            for item in try iterateStatic(value) {
                let v = try args.value(0, "attribute").map { try attributePath(item, $0, interpreter: interpreter) } ?? item
                total = try binary("+", total, v, interpreter: interpreter)
            }
            return total
        case "map":
            let items = try iterateStatic(value)
            if let attribute = args.keyword.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = args.keyword.first { $0.0 == "default" }?.1
                return .array(try items.map {
                    let v = try attributePath($0, attribute, interpreter: interpreter)
                    if v.isUndefined, let fallback { return fallback }
                    return v
                })
            }
            guard case .string(let filterName)? = args.positional.first else { throw fail(.type, "map expects a filter name or attribute=") }
            guard filterNames.contains(filterName) else { throw fail(.type, "no filter named '\(filterName)'") }
            let rest = JinjaArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            return .array(try items.map { try filter(filterName, $0, rest, interpreter: interpreter) })
        case "select", "reject":
            let keep = name == "select"
            let testName = try args.positional.first.map(string)
            let rest = JinjaArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            return .array(try iterateStatic(value).filter { item in
                let passes = try testName.map { try test($0, item, rest, interpreter: interpreter) } ?? item.isTruthy
                return passes == keep
            })
        case "selectattr", "rejectattr":
            let keep = name == "selectattr"
            guard let attribute = args.positional.first else { throw fail(.type, "\(name) expects an attribute name") }
            let testName = args.positional.count > 1 ? try string(args.positional[1]) : nil
            let rest = JinjaArguments(positional: Array(args.positional.dropFirst(2)), keyword: args.keyword)
            return .array(try iterateStatic(value).filter { item in
                let v = try attributePath(item, attribute, interpreter: interpreter)
                let passes = try testName.map { try test($0, v, rest, interpreter: interpreter) } ?? v.isTruthy
                return passes == keep
            })
        case "attr":
            guard let attributeName = args.positional.first else { throw fail(.type, "attr expects a name") }
            return try attribute(of: value, string(attributeName), interpreter: interpreter)
        case "wordcount":
            return .int((try string(value)).split { !($0.isLetter || $0.isNumber || $0 == "_") }.count)
        default:
            throw fail(.type, "filter '\(name)' is not supported by Swiftlet's template interpreter")
        }
    }

    /// markupsafe's `escape`.
    static func escapeHTML(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    private static func pow10(_ n: Int) -> Double {
        var r = 1.0
        for _ in 0..<min(abs(n), 300) { r *= 10 }
        return n < 0 ? 1 / r : r
    }

    /// jinja2's `indent` filter.
    static func indent(_ text: String, _ width: String, first: Bool, blank: Bool) -> String {
        var lines = (text + "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeLast()  // the piece after the newline appended above
        var out: String
        if blank {
            out = lines.joined(separator: "\n" + width)
        } else {
            out = lines.first ?? ""
            if lines.count > 1 {
                out += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : width + $0 }.joined(separator: "\n")
            }
        }
        return first ? width + out : out
    }

    /// `item.a.b` / `item.0` as jinja2's attribute getters read an `attribute=` argument.
    static func attributePath(_ item: JinjaValue, _ path: JinjaValue, interpreter: JinjaInterpreter) throws -> JinjaValue {
        if case .int = path { return try self.item(of: item, path, interpreter: interpreter) }
        var v = item
        for part in path.pythonString.split(separator: ".", omittingEmptySubsequences: false) {
            let key: JinjaValue = Int(part).map { .int($0) } ?? .string(String(part))
            if v.isUndefined { return v }
            v = try self.item(of: v, key, interpreter: interpreter)
        }
        return v
    }

    private static func sortKey(_ caseSensitive: JinjaValue?, _ attribute: JinjaValue?,
                                interpreter: JinjaInterpreter) throws -> (JinjaValue) throws -> JinjaValue {
        let sensitive = caseSensitive?.isTruthy ?? false
        return { item in
            var v = item
            if let attribute { v = try attributePath(item, attribute, interpreter: interpreter) }
            if !sensitive, case .string(let s) = v { return .string(s.lowercased()) }
            return v
        }
    }

    private static func stableSort(_ items: [JinjaValue], key: (JinjaValue) throws -> JinjaValue) throws -> [JinjaValue] {
        let keyed = try items.enumerated().map { (try key($0.element), $0.offset, $0.element) }
        var failure: Error?
        let sorted = keyed.sorted { a, b in
            do {
                let o = try ordering(a.0, b.0)
                return o != 0 ? o < 0 : a.1 < b.1
            } catch {
                failure = error
                return a.1 < b.1
            }
        }
        if let failure { throw failure }
        return sorted.map(\.2)
    }

    // MARK: Tests

    static func test(_ name: String, _ value: JinjaValue, _ args: JinjaArguments, interpreter: JinjaInterpreter) throws -> Bool {
        let argument = args.positional.first ?? args.keyword.first?.1
        func requireArgument() throws -> JinjaValue {
            guard let argument else { throw fail(.type, "test '\(name)' needs an argument") }
            return argument
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value == .none && !value.isUndefined
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": return value == .bool(true) && { if case .bool = value { return true } else { return false } }()
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.numericValue != nil
        case "string": return value.stringValue != nil
        case "mapping": if case .object = value { return true } else { return false }
        case "iterable", "sequence":
            switch value {
            case .array, .object, .string, .undefined: return true
            default: return false
            }
        case "callable": if case .callable = value { return true } else { return false }
        case "escaped": return false
        case "sameas":
            let other = try requireArgument()
            switch (value, other) {
            case let (.namespace(a), .namespace(b)): return a === b
            case let (.callable(a), .callable(b)): return a === b
            case (.none, .none): return true
            case let (.bool(a), .bool(b)): return a == b
            default: return false
            }
        case "eq", "equalto", "==": return value == (try requireArgument())
        case "ne", "!=": return value != (try requireArgument())
        case "lt", "lessthan", "<": return try ordering(value, try requireArgument()) < 0
        case "le", "<=": return try ordering(value, try requireArgument()) <= 0
        case "gt", "greaterthan", ">": return try ordering(value, try requireArgument()) > 0
        case "ge", ">=": return try ordering(value, try requireArgument()) >= 0
        case "in": return try contains(try requireArgument(), value)
        case "odd": return try integer(value, "odd") % 2 != 0
        case "even": return try integer(value, "even") % 2 == 0
        case "divisibleby":
            let d = try integer(try requireArgument(), "divisibleby")
            guard d != 0 else { throw fail(.type, "integer modulo by zero") }
            return try integer(value, "divisibleby") % d == 0
        case "lower": return value.stringValue.map { $0.lowercased() == $0 } ?? false
        case "upper": return value.stringValue.map { $0.uppercased() == $0 } ?? false
        case "filter": return (try requireArgument()).stringValue.map(filterNames.contains) ?? false
        case "test": return (try requireArgument()).stringValue.map(testNames.contains) ?? false
        default: throw fail(.type, "test '\(name)' is not supported")
        }
    }
}
