import Foundation
import SwiftletTensor

/// A parsed JSON value of a Hugging Face checkpoint's files (`config.json`, `tokenizer.json`,
/// `tokenizer_config.json`), keeping booleans, integers and fractions apart as Python does.
enum HFJSON: Decodable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([HFJSON])
    case object([String: HFJSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([HFJSON].self) { self = .array(a); return }
        self = .object(try c.decode([String: HFJSON].self))
    }

    /// Reads and parses the JSON file at `url`.
    static func load(_ url: URL) throws -> HFJSON {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SwiftletError.io(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(HFJSON.self, from: data) } catch {
            throw SwiftletError.malformedFile(path: url.path, reason: "not valid JSON")
        }
    }

    subscript(key: String) -> HFJSON? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    var object: [String: HFJSON]? { if case let .object(o) = self { return o }; return nil }
    var array: [HFJSON]? { if case let .array(a) = self { return a }; return nil }
    var string: String? { if case let .string(s) = self { return s }; return nil }
    var bool: Bool? { if case let .bool(b) = self { return b }; return nil }
    var int: Int? { if case let .int(i) = self { return i }; return nil }
    var isNull: Bool { self == .null }
    /// An integer or a fraction as a Double.
    var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }

    /// Python truthiness (`if value:`).
    var isTruthy: Bool {
        switch self {
        case .null: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .array(a): return !a.isEmpty
        case let .object(o): return !o.isEmpty
        }
    }
}
