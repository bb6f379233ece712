import Foundation
import Swiftlet

extension JSONText {
    /// A float as JSON (non-finite values, which JSON cannot hold, become null).
    static func number(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }
}

/// The fields of a request's JSON object, read with OpenAI's rules: `null` is the same as
/// absent, a value of the wrong type is a 400 naming the field, and fields nobody asked for are
/// rejected (``rejectUnknown(_:)``).
struct JSONFields {
    let members: [(String, OrderedJSON)]
    /// Where these fields sit in the request, for error messages (`""` at the top, `messages[0].`).
    let prefix: String

    /// Parses a request body: valid UTF-8, one JSON object, bounded nesting.
    init(body: [UInt8]) throws {
        guard let text = String(validating: body, as: UTF8.self) else {
            throw APIError.invalidRequest("The request body is not valid UTF-8", code: "invalid_utf8")
        }
        guard !text.allSatisfy(\.isWhitespace) else {
            throw APIError.invalidRequest("The request body is empty; send a JSON object", code: "invalid_json")
        }
        let value: OrderedJSON
        do {
            value = try OrderedJSON(parsing: text, maxDepth: 64)
        } catch let error as SwiftletError {
            throw APIError.invalidRequest("The request body is not valid JSON: \(error.description)", code: "invalid_json")
        }
        try self.init(value, at: "", expected: "the request body", as: "a JSON object")
    }

    init(_ value: OrderedJSON, at prefix: String, expected name: String, as what: String) throws {
        guard case let .object(members) = value else { throw APIError.invalidType(name, expected: what) }
        self.members = members
        self.prefix = prefix
    }

    func name(_ key: String) -> String { prefix + key }

    /// The value of `key`, `nil` when absent or null.
    func value(_ key: String) -> OrderedJSON? {
        guard let v = members.first(where: { $0.0 == key })?.1 else { return nil }
        if case .null = v { return nil }
        return v
    }

    func rejectUnknown(_ known: Set<String>) throws {
        for (key, _) in members where !known.contains(key) {
            throw APIError.invalidRequest("Unrecognized request argument supplied: \(name(key))", param: name(key),
                                          code: "unknown_parameter")
        }
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case let .string(s) = v else { throw APIError.invalidType(name(key), expected: "a string") }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case let .bool(b) = v else { throw APIError.invalidType(name(key), expected: "a boolean") }
        return b
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard case let .number(text) = v, let x = Double(text), x.isFinite else {
            throw APIError.invalidType(name(key), expected: "a number")
        }
        guard range.contains(x) else {
            throw APIError.invalidRequest("'\(name(key))' is \(text), outside \(range.lowerBound)...\(range.upperBound)",
                                          param: name(key), code: "out_of_range")
        }
        return x
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = Self.integer(v) else { throw APIError.invalidType(name(key), expected: "an integer") }
        guard range.contains(n) else {
            throw APIError.invalidRequest("'\(name(key))' is \(n), outside \(range.lowerBound)...\(range.upperBound)",
                                          param: name(key), code: "out_of_range")
        }
        return n
    }

    /// An integer written as `12`, `12.0` or `1.2e1`; `nil` for anything else, including values
    /// beyond `Int`'s range.
    static func integer(_ v: OrderedJSON) -> Int? {
        guard case let .number(text) = v else { return nil }
        if let n = Int(text) { return n }
        guard let x = Double(text), x.isFinite, x.rounded() == x, abs(x) < 9.0e15 else { return nil }
        return Int(x)
    }

    func object(_ key: String) throws -> JSONFields? {
        guard let v = value(key) else { return nil }
        return try JSONFields(v, at: name(key) + ".", expected: name(key), as: "an object")
    }

    func array(_ key: String) throws -> [OrderedJSON]? {
        guard let v = value(key) else { return nil }
        guard case let .array(items) = v else { throw APIError.invalidType(name(key), expected: "an array") }
        return items
    }
}
