import SwiftletCore

/// Typed access to GGUF metadata, shared by ``GGUFFile`` and ``GGUFWriter``.
///
/// The throwing accessors throw ``SwiftletError/missingMetadata(_:)`` when the key is absent or
/// holds another type; the `…IfPresent` variants return `nil` when the key is absent and still
/// throw when it holds another type (a wrong type is a broken file, not a default).
public protocol GGUFMetadataContainer {
    /// All metadata values by key.
    var metadata: [String: GGUFValue] { get }
}

extension GGUFMetadataContainer {
    /// The raw value at `key`.
    public func value(_ key: String) -> GGUFValue? { metadata[key] }

    private func typed<T>(_ key: String, _ expected: String, _ convert: (GGUFValue) -> T?) throws -> T? {
        guard let value = metadata[key] else { return nil }
        guard let converted = convert(value) else {
            throw SwiftletError.missingMetadata("\(key) (expected \(expected), found \(value.type))")
        }
        return converted
    }

    private func required<T>(_ key: String, _ value: T?) throws -> T {
        guard let value else { throw SwiftletError.missingMetadata(key) }
        return value
    }

    /// An integer of any width that fits `Int`.
    public func intIfPresent(_ key: String) throws -> Int? { try typed(key, "an integer", { $0.intValue }) }
    /// An integer of any width that fits `Int`.
    public func int(_ key: String) throws -> Int { try required(key, intIfPresent(key)) }

    /// A float32 or float64 (or an integer) as `Float`.
    public func floatIfPresent(_ key: String) throws -> Float? { try typed(key, "a number", { $0.doubleValue.map(Float.init) }) }
    /// A float32 or float64 (or an integer) as `Float`.
    public func float(_ key: String) throws -> Float { try required(key, floatIfPresent(key)) }

    /// A string.
    public func stringIfPresent(_ key: String) throws -> String? { try typed(key, "a string", { $0.stringValue }) }
    /// A string.
    public func string(_ key: String) throws -> String { try required(key, stringIfPresent(key)) }

    /// A bool.
    public func boolIfPresent(_ key: String) throws -> Bool? { try typed(key, "a bool", { $0.boolValue }) }
    /// A bool.
    public func bool(_ key: String) throws -> Bool { try required(key, boolIfPresent(key)) }

    /// An array of any element type.
    public func arrayIfPresent(_ key: String) throws -> GGUFArray? { try typed(key, "an array", { $0.arrayValue }) }
    /// An array of any element type.
    public func array(_ key: String) throws -> GGUFArray { try required(key, arrayIfPresent(key)) }

    /// An array of strings (no copy: the stored array is shared).
    public func stringArrayIfPresent(_ key: String) throws -> [String]? {
        try typed(key, "an array of strings", { if case let .array(.string(a)) = $0 { return a }; return nil })
    }
    /// An array of strings (no copy: the stored array is shared).
    public func stringArray(_ key: String) throws -> [String] { try required(key, stringArrayIfPresent(key)) }

    /// An array of float32 (no copy). A float64 array is converted.
    public func floatArrayIfPresent(_ key: String) throws -> [Float]? {
        try typed(key, "an array of floats", {
            switch $0 {
            case let .array(.float32(a)): return a
            case let .array(.float64(a)): return a.map { Float($0) }
            default: return nil
            }
        })
    }
    /// An array of float32 (no copy). A float64 array is converted.
    public func floatArray(_ key: String) throws -> [Float] { try required(key, floatArrayIfPresent(key)) }

    /// An array of int32 (no copy).
    public func int32ArrayIfPresent(_ key: String) throws -> [Int32]? {
        try typed(key, "an array of int32", { if case let .array(.int32(a)) = $0 { return a }; return nil })
    }
    /// An array of int32 (no copy).
    public func int32Array(_ key: String) throws -> [Int32] { try required(key, int32ArrayIfPresent(key)) }

    /// An array of integers of any width, converted to `Int` (each must fit).
    public func intArrayIfPresent(_ key: String) throws -> [Int]? { try typed(key, "an array of integers", { $0.arrayValue?.intValues }) }
    /// An array of integers of any width, converted to `Int` (each must fit).
    public func intArray(_ key: String) throws -> [Int] { try required(key, intArrayIfPresent(key)) }
}
