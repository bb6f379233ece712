import Foundation
import SwiftletCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a GGUF file: metadata in insertion order, then tensors laid out in insertion order,
/// each at the next multiple of the alignment, zero-padded — the layout llama.cpp and gguf-py
/// write, so reading a file and writing it back reproduces it byte for byte.
///
/// ```swift
/// var w = GGUFWriter()
/// w.set("general.architecture", .string("llama"))
/// try w.addTensor(name: "output_norm.weight", type: .f32, shape: [576], data: normBytes)
/// try w.write(to: url)
/// ```
public struct GGUFWriter: GGUFMetadataContainer {
    /// A tensor to be written.
    public struct Tensor: Sendable {
        public let name: String
        public let type: GGMLType
        /// GGUF order: row length first.
        public let shape: [Int]
        /// Exactly the bytes the type and shape call for.
        public let data: Data
    }

    /// Format version written (3; 2 shares the layout).
    public var version: UInt32 = 3
    /// Metadata by key.
    public private(set) var metadata: [String: GGUFValue] = [:]
    /// Metadata keys in the order they are written.
    public private(set) var metadataKeys: [String] = []
    /// Tensors in the order they are written.
    public private(set) var tensors: [Tensor] = []
    private var tensorNames = Set<String>()

    /// An empty file.
    public init() {}

    /// Everything in `file`: version, metadata in file order, tensors in file order. Tensor data
    /// is not copied: it references `file`'s mapping, which this writer keeps alive.
    public init(copying file: GGUFFile) throws {
        version = file.version
        for key in file.metadataKeys { set(key, file.metadata[key]!) }
        for info in file.tensors {
            let view = file.data(for: info)
            let data: Data
            if let base = view.baseAddress, view.count > 0 {
                data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: view.count,
                            deallocator: .custom { _, _ in withExtendedLifetime(file) {} })
            } else {
                data = Data()
            }
            try addTensor(name: info.name, type: info.type, shape: info.shape, data: data)
        }
    }

    /// Sets `key` to `value`; a new key goes last, an existing key keeps its place.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if metadata.updateValue(value, forKey: key) == nil { metadataKeys.append(key) }
    }

    /// Removes `key` if present.
    public mutating func removeValue(forKey key: String) {
        if metadata.removeValue(forKey: key) != nil { metadataKeys.removeAll { $0 == key } }
    }

    /// Longest tensor name ggml accepts, in UTF-8 bytes (`GGML_MAX_NAME` - 1).
    public static let maxTensorNameBytes = 63

    /// Appends a tensor.
    ///
    /// - Throws: ``SwiftletError/invalidArgument(_:)`` for a duplicate or over-long name, more
    ///   than 4 dimensions, a row length that is not a whole number of blocks, or `data` whose
    ///   size does not match `type` and `shape`.
    public mutating func addTensor(name: String, type: GGMLType, shape: [Int], data: Data) throws {
        guard !name.isEmpty, name.utf8.count <= Self.maxTensorNameBytes else {
            throw SwiftletError.invalidArgument("tensor name '\(name)' must be 1 to \(Self.maxTensorNameBytes) UTF-8 bytes")
        }
        guard !tensorNames.contains(name) else { throw SwiftletError.invalidArgument("duplicate tensor name '\(name)'") }
        switch GGUFTensorGeometry.sizes(type: type, shape: shape) {
        case let .failure(e):
            throw SwiftletError.invalidArgument("tensor '\(name)' (\(type)) \(e.reason)")
        case let .success(sizes):
            guard sizes.bytes == data.count else {
                throw SwiftletError.invalidArgument("tensor '\(name)' (\(type), shape \(shape)) needs \(sizes.bytes) bytes, got \(data.count)")
            }
        }
        tensorNames.insert(name)
        tensors.append(Tensor(name: name, type: type, shape: shape, data: data))
    }

    /// Appends an F32 tensor holding `values` (row-major, `shape[0]` fastest).
    public mutating func addTensor(name: String, shape: [Int], float32 values: [Float]) throws {
        let data = values.withUnsafeBytes { Data($0) }
        try addTensor(name: name, type: .f32, shape: shape, data: data)
    }

    /// The alignment of the data section: `general.alignment` if set, else 32.
    public func alignment() throws -> Int {
        guard let value = metadata["general.alignment"] else { return GGUFFile.defaultAlignment }
        guard let a = value.intValue, a > 0, a <= GGUFFile.maxAlignment, a & (a - 1) == 0 else {
            throw SwiftletError.invalidArgument("general.alignment \(value) is not a power of two up to \(GGUFFile.maxAlignment)")
        }
        return a
    }

    /// Everything before the data section: header, metadata, tensor infos, padding.
    public func headerBytes() throws -> Data {
        try headerBytes(tensorLayout: tensors.map { ($0.name, $0.type, $0.shape, $0.data.count) })
    }

    /// The header for tensors whose data is written later (streamed): name, type, shape and
    /// byte count of each, in file order. The writer's own tensors are ignored.
    public func headerBytes(tensorLayout: [(name: String, type: GGMLType, shape: [Int], byteCount: Int)]) throws -> Data {
        let alignment = try alignment()
        var out = GGUFByteWriter()
        out.append(GGUFFile.magic)
        out.append(version)
        out.append(UInt64(tensorLayout.count))
        out.append(UInt64(metadataKeys.count))
        for key in metadataKeys {
            out.appendString(key)
            let value = metadata[key]!
            out.append(value.type.rawValue)
            out.appendValue(value)
        }
        var offset = 0
        for t in tensorLayout {
            out.appendString(t.name)
            out.append(UInt32(t.shape.count))
            for d in t.shape { out.append(UInt64(d)) }
            out.append(t.type.rawValue)
            out.append(UInt64(offset))
            offset += Self.padded(t.byteCount, to: alignment)
        }
        out.pad(to: alignment)
        return Data(out.bytes)
    }

    /// The whole file in memory.
    public func serialized() throws -> Data {
        let alignment = try alignment()
        var data = try headerBytes()
        for t in tensors {
            data.append(t.data)
            data.append(contentsOf: [UInt8](repeating: 0, count: Self.padded(t.data.count, to: alignment) - t.data.count))
        }
        return data
    }

    /// Writes the file to `url`, streaming tensor data without building the file in memory.
    ///
    /// The bytes go to a temporary file beside `url`, which then replaces `url` in one rename:
    /// a reader never sees a half-written file, and rewriting the very file the tensor data is
    /// mapped from (`GGUFWriter(copying:)` then `write(to:)` the same URL) is safe.
    public func write(to url: URL) throws {
        let alignment = try alignment()
        let header = try headerBytes()
        let path = url.path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw SwiftletError.io(path: path, reason: "cannot create \(temporary.lastPathComponent) beside it")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try handle.write(contentsOf: header)
            let zeros = Data(count: alignment)
            for t in tensors {
                try handle.write(contentsOf: t.data)
                let padding = Self.padded(t.data.count, to: alignment) - t.data.count
                if padding > 0 { try handle.write(contentsOf: zeros.prefix(padding)) }
            }
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw SwiftletError.io(path: path, reason: "write failed: \(error.localizedDescription)")
        }
        guard rename(temporary.path, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw SwiftletError.io(path: path, reason: "cannot replace: \(reason)")
        }
    }

    /// `n` rounded up to a multiple of `alignment`.
    public static func padded(_ n: Int, to alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// Little-endian serialization of GGUF header structures.
struct GGUFByteWriter {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func appendString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            append(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func pad(to alignment: Int) {
        let target = GGUFWriter.padded(bytes.count, to: alignment)
        bytes.append(contentsOf: repeatElement(0, count: target - bytes.count))
    }

    /// Appends `values` as little-endian fixed-width elements in one copy.
    private mutating func appendAll<T: FixedWidthInteger>(_ values: [T]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for v in values { append(v) }
        #endif
    }

    mutating func appendValue(_ value: GGUFValue) {
        switch value {
        case let .uint8(v): append(v)
        case let .int8(v): append(v)
        case let .uint16(v): append(v)
        case let .int16(v): append(v)
        case let .uint32(v): append(v)
        case let .int32(v): append(v)
        case let .uint64(v): append(v)
        case let .int64(v): append(v)
        case let .float32(v): append(v.bitPattern)
        case let .float64(v): append(v.bitPattern)
        case let .bool(v): append(UInt8(v ? 1 : 0))
        case let .string(s): appendString(s)
        case let .array(a): appendArray(a)
        }
    }

    mutating func appendArray(_ array: GGUFArray) {
        append(array.elementType.rawValue)
        append(UInt64(array.count))
        switch array {
        case let .uint8(a): appendAll(a)
        case let .int8(a): appendAll(a)
        case let .uint16(a): appendAll(a)
        case let .int16(a): appendAll(a)
        case let .uint32(a): appendAll(a)
        case let .int32(a): appendAll(a)
        case let .uint64(a): appendAll(a)
        case let .int64(a): appendAll(a)
        case let .float32(a): appendAll(a.map(\.bitPattern))
        case let .float64(a): appendAll(a.map(\.bitPattern))
        case let .bool(a): for b in a { append(UInt8(b ? 1 : 0)) }
        case let .string(a): for s in a { appendString(s) }
        case let .array(a): for inner in a { appendArray(inner) }
        }
    }
}
