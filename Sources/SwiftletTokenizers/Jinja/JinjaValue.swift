import SwiftletCore

/// A value a Jinja template computes with, modelled on the Python objects jinja2 sees:
/// JSON-like data (ordered dictionaries, as Python's), plus `undefined`, namespaces and callables.
public enum JinjaValue: Sendable {
    /// A missing variable, attribute or key (jinja2's `Undefined`): prints as nothing, is false,
    /// iterates as empty; the name says what was missing.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// A list (Python tuples are lists here too).
    case array([JinjaValue])
    case object(JinjaObject)
    /// A `namespace()`: the one mutable value, shared by reference.
    case namespace(JinjaNamespace)
    /// A macro, a global function or a bound method.
    case callable(JinjaCallable)

    /// True when this is `undefined`.
    public var isUndefined: Bool { if case .undefined = self { return true } else { return false } }

    /// Python truthiness.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        case .namespace, .callable: return true
        }
    }

    /// The string of a string value, nil otherwise.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }

    /// Python's `str(value)`: what `{{ value }}` prints.
    public var pythonString: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pythonRepr
        }
    }

    /// Python's `repr(value)` (used inside printed lists and dictionaries).
    public var pythonRepr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return JinjaValue.pythonFloatRepr(d)
        case .string(let s): return JinjaValue.pythonStringRepr(s)
        case .array(let a): return "[" + a.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let o):
            return "{" + o.entries.map { $0.key.pythonRepr + ": " + $0.value.pythonRepr }.joined(separator: ", ") + "}"
        case .namespace(let n): return "<Namespace " + JinjaValue.object(n.attributes).pythonRepr + ">"
        case .callable(let c): return "<function \(c.name)>"
        }
    }

    /// Python's name of the value's type, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        }
    }

    /// Python's `float.__repr__`: the shortest text that reads back, in Python's layout
    /// (`1.0`, `1e-05`, `1e+16`, `inf`, `nan`).
    static func pythonFloatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        // Swift prints the same shortest digits; only the switch to exponent form differs.
        let text = "\(d)"
        let (digits, exponent) = decimalDigits(of: text)
        let decimalPoint = exponent + 1  // position of the point after the first digit
        let sign = d < 0 ? "-" : ""
        if decimalPoint > 16 || decimalPoint < -3 {
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let e = decimalPoint - 1
            return sign + mantissa + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
        }
        if decimalPoint <= 0 {
            return sign + "0." + String(repeating: "0", count: -decimalPoint) + digits
        }
        if digits.count <= decimalPoint {
            return sign + digits + String(repeating: "0", count: decimalPoint - digits.count) + ".0"
        }
        let cut = digits.index(digits.startIndex, offsetBy: decimalPoint)
        return sign + digits[..<cut] + "." + digits[cut...]
    }

    /// The significant digits (no leading/trailing zeros) and decimal exponent of the first digit.
    private static func decimalDigits(of text: String) -> (String, Int) {
        var mantissa = text.hasPrefix("-") ? String(text.dropFirst()) : text
        var exponent = 0
        if let e = mantissa.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(mantissa[mantissa.index(after: e)...]) ?? 0
            mantissa = String(mantissa[..<e])
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = String(parts[0])
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        var all = integerPart + fraction
        var pointIndex = integerPart.count
        while all.hasPrefix("0") && all.count > 1 { all.removeFirst(); pointIndex -= 1 }
        while all.hasSuffix("0") && all.count > 1 { all.removeLast() }
        return (all, pointIndex - 1 + exponent)
    }

    /// Python's `str.__repr__`: single quotes unless the text holds one and no double quote.
    static func pythonStringRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote { out += "\\" + String(quote); continue }
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += "\\x" + hex(scalar.value, width: 2)
                } else if scalar.value >= 0x80 && !isPrintable(scalar) {
                    out += scalar.value <= 0xff ? "\\x" + hex(scalar.value, width: 2)
                        : scalar.value <= 0xffff ? "\\u" + hex(scalar.value, width: 4) : "\\U" + hex(scalar.value, width: 8)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append(quote)
        return out
    }

    /// Python's `str.isprintable` for one non-ASCII scalar (close enough: separators and
    /// control/format/unassigned characters are not printable).
    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: return false
        case .spaceSeparator: return false
        default: return true
        }
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

extension JinjaValue {
    /// Deepest nesting of lists, dictionaries and namespaces a value may reach by being stored in
    /// a namespace or passed to a macro: the two ways a template nests values further on every
    /// loop iteration or call. Printing, comparing and freeing a value recurse once per level.
    static let maximumStoredNesting = 512

    /// Refuses a value that nests lists, dictionaries and namespaces deeper than
    /// ``maximumStoredNesting``, or that holds `container` (storing it there would make a value
    /// that contains itself, which jinja2 only survives by printing `{...}`). Shared parts are
    /// walked once per path, so `poll` runs every 4096 containers to let the render's time limit
    /// stop a walk over a value built by doubling.
    func checkStorable(in container: JinjaNamespace?, poll: () throws -> Void) throws {
        var pending: [(value: JinjaValue, depth: Int)] = []
        var visited = 0
        func push(_ value: JinjaValue, _ depth: Int) throws {
            switch value {
            case .array(let a) where !a.isEmpty: break
            case .object(let o) where !o.isEmpty: break
            case .namespace: break
            default: return
            }
            guard depth <= Self.maximumStoredNesting else {
                throw SwiftletError.template(kind: .limit, message: "value nested deeper than \(Self.maximumStoredNesting) levels",
                                             line: 0, column: 0)
            }
            pending.append((value, depth))
        }
        try push(self, 1)
        while let (value, depth) = pending.popLast() {
            visited += 1
            if visited & 4095 == 0 { try poll() }
            switch value {
            case .array(let a):
                for item in a { try push(item, depth + 1) }
            case .object(let o):
                for (key, item) in o.entries { try push(key, depth + 1); try push(item, depth + 1) }
            case .namespace(let ns):
                if ns === container {
                    throw SwiftletError.template(kind: .limit, message: "a namespace cannot hold itself", line: 0, column: 0)
                }
                for (_, item) in ns.attributes { try push(item, depth + 1) }
            default: break
            }
        }
    }
}

extension JinjaValue: Equatable {
    /// Python `==`: numbers compare across int/float/bool, undefined equals only undefined.
    public static func == (lhs: JinjaValue, rhs: JinjaValue) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        case let (.namespace(a), .namespace(b)): return a === b
        case let (.callable(a), .callable(b)): return a === b
        default:
            if let a = lhs.numericValue, let b = rhs.numericValue {
                if case .int(let x) = a, case .int(let y) = b { return x == y }
                return a.asDouble == b.asDouble
            }
            return false
        }
    }

    /// The value as a number when it is one (bool counts, as in Python).
    var numericValue: JinjaValue? {
        switch self {
        case .int, .double: return self
        case .bool(let b): return .int(b ? 1 : 0)
        default: return nil
        }
    }

    var asDouble: Double {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return .nan
        }
    }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        var o = JinjaObject()
        for (k, v) in elements { o[k] = v }
        self = .object(o)
    }
    public init(nilLiteral: ()) { self = .none }
}

/// A dictionary that keeps insertion order, as Python's does (it decides `tojson` and
/// `items()` order). Keys are strings, or numbers and other scalars when a template writes
/// them (`{1024: …}`); `1`, `1.0` and `true` are one key, as in Python.
public struct JinjaObject: Sendable, Equatable, Sequence {
    /// The keys in insertion order.
    public private(set) var keyValues: [JinjaValue] = []
    private var storage: [String: JinjaValue] = [:]

    public init() {}

    public var count: Int { keyValues.count }
    public var isEmpty: Bool { keyValues.isEmpty }
    /// The keys as text (what Python's `str()` gives).
    public var keys: [String] { keyValues.map(\.pythonString) }

    private static func canonical(_ key: JinjaValue) -> String {
        switch key {
        case .string(let s): return "s" + s
        case .int(let i): return "i\(i)"
        case .bool(let b): return b ? "i1" : "i0"
        case .double(let d): return d == d.rounded() && abs(d) < 9e18 ? "i\(Int(d))" : "f" + JinjaValue.pythonFloatRepr(d)
        case .none: return "n"
        default: return "r" + key.pythonRepr
        }
    }

    public subscript(key: String) -> JinjaValue? {
        get { storage["s" + key] }
        set { self[key: .string(key)] = newValue }
    }

    public subscript(key key: JinjaValue) -> JinjaValue? {
        get { storage[JinjaObject.canonical(key)] }
        set {
            let c = JinjaObject.canonical(key)
            if let newValue {
                if storage.updateValue(newValue, forKey: c) == nil { keyValues.append(key) }
            } else if storage.removeValue(forKey: c) != nil {
                keyValues.removeAll { JinjaObject.canonical($0) == c }
            }
        }
    }

    /// Key/value pairs in order.
    public var entries: [(key: JinjaValue, value: JinjaValue)] {
        keyValues.map { ($0, storage[JinjaObject.canonical($0)]!) }
    }

    public func makeIterator() -> AnyIterator<(key: String, value: JinjaValue)> {
        var i = 0
        let keys = keyValues
        let storage = storage
        return AnyIterator {
            guard i < keys.count else { return nil }
            defer { i += 1 }
            return (keys[i].pythonString, storage[JinjaObject.canonical(keys[i])]!)
        }
    }

    public static func == (a: JinjaObject, b: JinjaObject) -> Bool {
        a.storage == b.storage
    }
}

/// The state of a `namespace()`: attributes set with `{% set ns.name = … %}` stay visible
/// outside loops. A reference type, as in jinja2; only used by one render at a time.
public final class JinjaNamespace: @unchecked Sendable {  // mutated only by the render that created it
    var attributes: JinjaObject
    init(_ attributes: JinjaObject) { self.attributes = attributes }
}

/// Something a template can call: a macro, a global such as `range`, or a bound method.
public final class JinjaCallable: @unchecked Sendable {  // immutable; bodies capture immutable values or the calling render's state
    let name: String
    let body: (_ arguments: JinjaArguments, _ interpreter: JinjaInterpreter) throws -> JinjaValue
    init(name: String, body: @escaping (_ arguments: JinjaArguments, _ interpreter: JinjaInterpreter) throws -> JinjaValue) {
        self.name = name
        self.body = body
    }
}

/// Positional and keyword arguments of a call.
struct JinjaArguments {
    var positional: [JinjaValue] = []
    var keyword: [(String, JinjaValue)] = []

    /// The argument at `index` or named `name`, if given.
    func value(_ index: Int, _ name: String) -> JinjaValue? {
        if index < positional.count { return positional[index] }
        return keyword.first { $0.0 == name }?.1
    }
}
