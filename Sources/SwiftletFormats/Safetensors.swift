import Foundation
import SwiftletCore

/// Element types of the safetensors format (the `dtype` strings of its header).
///
/// Every type can be listed and its raw bytes read; ``SafetensorsFile/floats(_:)`` converts
/// `F32`, `F16` and `BF16` to `Float`.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
    case bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }

    /// Whether ``SafetensorsFile/floats(_:)`` can convert this type to `Float`.
    public var isFloatConvertible: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

/// One tensor's entry in a safetensors header, validated against the file.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    /// The tensor's name (e.g. `encoder.layer.0.attention.self.query.weight`).
    public let name: String
    /// Element type.
    public let dtype: SafetensorsDType
    /// Shape, outermost dimension first (PyTorch order: a Linear weight is `[out, in]`).
    public let shape: [Int]
    /// Offset of the first byte from the start of the file.
    public let fileOffset: Int
    /// Length of the data in bytes (`elementCount * dtype.byteSize`, checked).
    public let byteCount: Int

    /// Number of elements (product of `shape`; 1 for a scalar).
    public var elementCount: Int { byteCount / dtype.byteSize }
}

/// A `Float` tensor read from a safetensors file: zero-copy into the mapping for aligned `F32`
/// data, otherwise converted once into owned memory.
///
/// The buffer stays valid as long as this value (or a copy of it) is alive.
public struct SafetensorsFloatTensor: @unchecked Sendable {  // a read-only view of memory nothing writes after init
    /// The elements, row-major, outermost dimension first.
    public let buffer: UnsafeBufferPointer<Float>
    /// The tensor's shape.
    public let shape: [Int]
    /// Whether `buffer` points into the file mapping (no copy was made).
    public let isMapped: Bool
    /// Keeps the mapping or the converted storage alive.
    let owner: AnyObject

    /// A copy of the elements as an array.
    public var values: [Float] { withExtendedLifetime(owner) { Array(buffer) } }

    /// Base address of the elements (valid while this value is alive: use
    /// `withExtendedLifetime` when the value is a temporary).
    public var pointer: UnsafePointer<Float> { buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)! }
}

/// Owned float storage for converted (F16/BF16/unaligned) tensors.
final class SafetensorsOwnedFloats {
    let pointer: UnsafeMutablePointer<Float>
    init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}

/// A single `.safetensors` file, memory-mapped and validated.
///
/// Opening checks the whole header against the file before any tensor is handed out: header
/// length within the file and below 100 MiB, valid JSON, known dtypes, non-negative shapes
/// whose byte size (checked for overflow) equals the data range, ranges inside the data section
/// and not overlapping. Every violation is a typed ``SwiftletError``; a hostile file can't make a
/// later read go out of bounds.
public final class SafetensorsFile: @unchecked Sendable {  // immutable after init; the mapping is read-only
    /// Largest header accepted (the format's reference implementation uses the same bound).
    public static let maxHeaderBytes = 100 * 1024 * 1024

    /// Path the file was opened from.
    public let path: String
    /// The `__metadata__` string map of the header (empty when absent).
    public let metadata: [String: String]
    /// Every tensor, by name.
    public let tensors: [String: SafetensorsTensorInfo]
    /// Tensor names in file order (by data offset).
    public let names: [String]

    let mapping: MappedFile

    /// Maps and validates the file at `path`.
    public convenience init(path: String) throws {
        try self.init(mapping: MappedFile(url: URL(fileURLWithPath: path)), path: path)
    }

    /// Validates safetensors bytes held in `mapping` (a mapped file or an in-memory copy);
    /// `path` names it in errors.
    public init(mapping: MappedFile, path: String) throws {
        self.path = path
        self.mapping = mapping
        let size = mapping.bytes.count
        guard size >= 8, let base = mapping.bytes.baseAddress else {
            throw SwiftletError.truncatedFile(path: path, what: "safetensors header length (8 bytes)")
        }
        let headerLength = base.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw SwiftletError.malformedFile(path: path, reason: "header length \(headerLength) exceeds \(Self.maxHeaderBytes) bytes")
        }
        let headerBytes = Int(headerLength)
        guard headerBytes <= size - 8 else {
            throw SwiftletError.truncatedFile(path: path, what: "safetensors header (\(headerBytes) bytes declared, \(size - 8) present)")
        }
        let dataStart = 8 + headerBytes
        let dataSize = size - dataStart
        let headerData = Data(bytes: base + 8, count: headerBytes)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw SwiftletError.malformedFile(path: path, reason: "header is not valid JSON")
        }
        guard let root = json as? [String: Any] else {
            throw SwiftletError.malformedFile(path: path, reason: "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var tensors: [String: SafetensorsTensorInfo] = [:]
        for (name, value) in root {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw SwiftletError.malformedFile(path: path, reason: "__metadata__ is not an object")
                }
                for (k, v) in map {
                    guard let s = v as? String else {
                        throw SwiftletError.malformedFile(path: path, reason: "__metadata__[\(k)] is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            tensors[name] = try Self.parseEntry(name: name, value: value, path: path, dataStart: dataStart, dataSize: dataSize)
        }
        // The format forbids overlapping ranges; a file that has them is corrupt or crafted.
        let ordered = tensors.values.sorted { ($0.fileOffset, $0.name) < ($1.fileOffset, $1.name) }
        // Empty tensors hold no bytes and so overlap nothing, wherever their offset.
        let sized = ordered.filter { $0.byteCount > 0 }
        for (a, b) in zip(sized, sized.dropFirst()) where a.fileOffset + a.byteCount > b.fileOffset {
            throw SwiftletError.malformedFile(path: path, reason: "tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.metadata = metadata
        self.tensors = tensors
        self.names = ordered.map(\.name)
    }

    private static func parseEntry(name: String, value: Any, path: String, dataStart: Int, dataSize: Int) throws -> SafetensorsTensorInfo {
        guard let entry = value as? [String: Any] else {
            throw SwiftletError.malformedFile(path: path, reason: "entry '\(name)' is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw SwiftletError.malformedFile(path: path, reason: "entry '\(name)' has no dtype")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SwiftletError.unsupportedTensorType("\(dtypeName) (tensor '\(name)' in \(path))")
        }
        guard let shapeValues = entry["shape"] as? [Any], let offsetValues = entry["data_offsets"] as? [Any],
              offsetValues.count == 2 else {
            throw SwiftletError.malformedFile(path: path, reason: "entry '\(name)' needs shape and two data_offsets")
        }
        let shape = try shapeValues.map { try nonNegativeInt($0, what: "shape of '\(name)'", path: path) }
        let begin = try nonNegativeInt(offsetValues[0], what: "data_offsets of '\(name)'", path: path)
        let end = try nonNegativeInt(offsetValues[1], what: "data_offsets of '\(name)'", path: path)
        guard begin <= end, end <= dataSize else {
            throw SwiftletError.malformedFile(path: path, reason: "tensor '\(name)' data_offsets [\(begin), \(end)] outside the data section (\(dataSize) bytes)")
        }
        var elements = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SwiftletError.malformedFile(path: path, reason: "tensor '\(name)' shape \(shape) overflows") }
            elements = product
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == end - begin else {
            throw SwiftletError.malformedFile(path: path, reason: "tensor '\(name)' is \(dtypeName) \(shape) but its data range holds \(end - begin) bytes")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, fileOffset: dataStart + begin, byteCount: bytes)
    }

    private static func nonNegativeInt(_ value: Any, what: String, path: String) throws -> Int {
        // JSONSerialization yields NSNumber; reject fractions, negatives and values beyond Int.
        if let n = value as? NSNumber {
            let d = n.doubleValue
            if d >= 0, d < 9.0e18, d.rounded() == d { return n.intValue }
        }
        throw SwiftletError.malformedFile(path: path, reason: "\(what): \(value) is not a non-negative integer")
    }

    /// The entry of tensor `name`, or ``SwiftletError/missingTensor(_:)``.
    public func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let info = tensors[name] else { throw SwiftletError.missingTensor(name) }
        return info
    }

    /// The raw bytes of tensor `name`, inside the mapping (valid while this file is alive).
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let info = try info(name)
        return UnsafeRawBufferPointer(start: mapping.bytes.baseAddress.map { $0 + info.fileOffset }, count: info.byteCount)
    }

    /// Tensor `name` as `Float`s; when `shape` is given the tensor must have exactly that shape.
    ///
    /// `F32` data aligned to 4 bytes is returned without a copy; `F16`/`BF16` (and unaligned
    /// `F32`) are converted once. Other dtypes throw ``SwiftletError/unsupportedTensorType(_:)``.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> SafetensorsFloatTensor {
        let info = try info(name)
        if let expected, expected != info.shape {
            throw SwiftletError.shapeMismatch(op: "load \(name)", detail: "expected \(expected), file has \(info.shape)")
        }
        guard info.dtype.isFloatConvertible else {
            throw SwiftletError.unsupportedTensorType("\(info.dtype.rawValue) for float tensor '\(name)'")
        }
        let count = info.elementCount
        let src = mapping.bytes.baseAddress.map { $0 + info.fileOffset } ?? UnsafeRawPointer(bitPattern: 8)!
        if info.dtype == .f32, Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0 {
            let p = src.assumingMemoryBound(to: Float.self)
            return SafetensorsFloatTensor(buffer: UnsafeBufferPointer(start: p, count: count), shape: info.shape, isMapped: true, owner: mapping)
        }
        let storage = SafetensorsOwnedFloats(count: count)
        let dst = storage.pointer
        switch info.dtype {
        case .f32:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<count { dst[i] = HalfPrecision.float(fromF16: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16:
            for i in 0..<count { dst[i] = HalfPrecision.float(fromBF16: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        default:
            break
        }
        return SafetensorsFloatTensor(buffer: UnsafeBufferPointer(start: dst, count: count), shape: info.shape, isMapped: false, owner: storage)
    }
}

/// A model checkpoint in safetensors form: one `model.safetensors` or the shards listed by
/// `model.safetensors.index.json` (its `weight_map`), seen as one set of named tensors.
public struct SafetensorsCheckpoint: Sendable {
    /// The open files (one, or one per shard).
    public let files: [SafetensorsFile]
    /// Which file holds each tensor.
    private let fileIndexByName: [String: Int]

    /// Every tensor name in the checkpoint, sorted.
    public var names: [String] { fileIndexByName.keys.sorted() }

    /// Opens the checkpoint in `directory`: `model.safetensors.index.json` when present
    /// (sharded), otherwise `model.safetensors`.
    public init(directory: URL) throws {
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: index.path) {
            try self.init(index: index)
        } else {
            try self.init(file: directory.appendingPathComponent("model.safetensors"))
        }
    }

    /// Opens a single safetensors file.
    public init(file: URL) throws {
        let f = try SafetensorsFile(path: file.path)
        files = [f]
        var map: [String: Int] = [:]
        for name in f.tensors.keys { map[name] = 0 }
        fileIndexByName = map
    }

    /// Opens a sharded checkpoint from its index (`{"weight_map": {tensor: shard file}}`).
    ///
    /// Shard names must be plain file names in the index's folder; every tensor the index
    /// names must be in its shard, and every tensor of a shard must be in the index.
    public init(index: URL) throws {
        let path = index.path
        let data: Data
        do { data = try Data(contentsOf: index) } catch {
            throw SwiftletError.io(path: path, reason: "\(error)")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let weightMap = root["weight_map"] as? [String: Any] else {
            throw SwiftletError.malformedFile(path: path, reason: "expected an object with a weight_map")
        }
        var shardNames: [String] = []
        var shardIndex: [String: Int] = [:]
        var map: [String: Int] = [:]
        for (tensor, value) in weightMap {
            guard let shard = value as? String, !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"),
                  shard != ".", shard != ".." else {
                throw SwiftletError.malformedFile(path: path, reason: "weight_map[\(tensor)] is not a plain file name")
            }
            if shardIndex[shard] == nil { shardIndex[shard] = shardNames.count; shardNames.append(shard) }
            map[tensor] = shardIndex[shard]
        }
        let folder = index.deletingLastPathComponent()
        let files = try shardNames.map { try SafetensorsFile(path: folder.appendingPathComponent($0).path) }
        for (tensor, i) in map where files[i].tensors[tensor] == nil {
            throw SwiftletError.missingTensor("\(tensor) (index names shard \(shardNames[i]))")
        }
        for (i, f) in files.enumerated() {
            for name in f.tensors.keys where map[name] != i {
                throw SwiftletError.malformedFile(path: f.path, reason: "tensor '\(name)' is not listed for this shard in \(index.lastPathComponent)")
            }
        }
        self.files = files
        fileIndexByName = map
    }

    /// The file holding tensor `name`, or ``SwiftletError/missingTensor(_:)``.
    public func file(for name: String) throws -> SafetensorsFile {
        guard let i = fileIndexByName[name] else { throw SwiftletError.missingTensor(name) }
        return files[i]
    }

    /// The header entry of tensor `name`.
    public func info(_ name: String) throws -> SafetensorsTensorInfo { try file(for: name).info(name) }

    /// Tensor `name` as floats, checked against `shape` when given (see ``SafetensorsFile/floats(_:shape:)``).
    public func floats(_ name: String, shape: [Int]? = nil) throws -> SafetensorsFloatTensor {
        try file(for: name).floats(name, shape: shape)
    }
}
