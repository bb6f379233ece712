import Foundation
import SwiftletCore

/// A GGUF model file (versions 2 and 3), memory-mapped read-only.
///
/// Opening parses the header, metadata and tensor table and validates every size and offset;
/// tensor data is not touched or copied: ``data(for:)`` returns a view into the mapping.
///
/// Layout (little-endian): magic `GGUF`, version (u32), tensor count (u64), metadata count (u64),
/// the metadata key/value pairs, the tensor infos (name, dimension count, dimensions, type,
/// offset relative to the data section), padding to ``alignment``, then the data section.
///
/// ```swift
/// let file = try GGUFFile(url: modelURL)
/// let layers = try file.int("llama.block_count")
/// let q = file.tensor(named: "blk.0.attn_q.weight")!
/// let bytes = file.data(for: q)      // valid while `file` lives
/// ```
public final class GGUFFile: GGUFMetadataContainer, @unchecked Sendable {  // immutable after parsing; the mapping is read-only
    /// The file, or `nil` when parsed from memory.
    public let url: URL?
    /// Format version (2 or 3; they share one layout).
    public let version: UInt32
    /// All metadata values by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order (what a writer needs to reproduce the file).
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Alignment of the data section and of every tensor in it (`general.alignment`, default 32).
    public let alignment: Int
    /// Absolute offset of the data section (end of the header, padded to ``alignment``).
    public let dataOffset: Int
    /// The mapped bytes; keeps the mapping alive.
    public let storage: MappedFile

    private let tensorIndex: [String: Int]

    /// Alignment when the file does not say (`GGUF_DEFAULT_ALIGNMENT`).
    public static let defaultAlignment = 32
    /// The four magic bytes "GGUF" read as a little-endian u32.
    static let magic: UInt32 = 0x4655_4747
    /// Largest `general.alignment` accepted.
    static let maxAlignment = 1 << 20

    /// Maps the file at `url` and parses its header.
    ///
    /// - Throws: ``SwiftletError/io(path:reason:)`` when it cannot be mapped;
    ///   ``SwiftletError/truncatedFile(path:what:)``, ``SwiftletError/malformedFile(path:reason:)``
    ///   or ``SwiftletError/unsupportedTensorType(_:)`` when its contents are not a valid GGUF file.
    public convenience init(url: URL) throws {
        try self.init(storage: MappedFile(url: url))
    }

    /// Parses GGUF bytes held in memory (copied once into an aligned buffer).
    public convenience init<Bytes: ContiguousBytes>(bytes: Bytes) throws {
        try self.init(storage: MappedFile(copying: bytes))
    }

    /// Parses the bytes of `storage` (a mapped file or an in-memory copy).
    public init(storage: MappedFile) throws {
        self.storage = storage
        self.url = storage.url
        let path = storage.displayPath
        var r = GGUFByteReader(bytes: storage.bytes, path: path)

        let magic = try r.read(UInt32.self, "magic")
        guard magic == Self.magic else {
            throw SwiftletError.malformedFile(path: path, reason: "not a GGUF file (magic 0x\(String(magic, radix: 16)))")
        }
        let version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            let hint = version.byteSwapped == 2 || version.byteSwapped == 3 ? " (big-endian GGUF is not supported)" : ""
            throw SwiftletError.malformedFile(path: path, reason: "unsupported GGUF version \(version)\(hint)")
        }
        self.version = version

        // Each tensor info takes at least 24 bytes (name length, dims count, type, offset); each
        // key/value at least 12 (key length, type) + 1. Absurd counts fail here, before allocation.
        let tensorCount = try r.readCount(minimumElementSize: 24, "tensor count")
        let metadataCount = try r.readCount(minimumElementSize: 13, "metadata count")

        // Walk the metadata checking bounds only, then read the tensor infos that follow it:
        // a truncated or absurd header fails here, before any of the metadata's (possibly
        // hundreds of thousands of) strings are built.
        var infoReader = r
        for i in 0 ..< metadataCount {
            try infoReader.skipValue(.string, "metadata key #\(i)")
            let type = try infoReader.readValueType("type of metadata #\(i)")
            try infoReader.skipValue(type, "metadata #\(i)")
        }
        let raw = try Self.readTensorInfos(&infoReader, count: tensorCount, path: path)
        let headerEnd = infoReader.offset

        var metadata = [String: GGUFValue](minimumCapacity: metadataCount)
        var keys = [String]()
        keys.reserveCapacity(metadataCount)
        for i in 0 ..< metadataCount {
            let key = try r.readString(strict: true, "metadata key #\(i)")
            let type = try r.readValueType("type of metadata '\(key)'")
            let value = try r.readValue(type, "metadata '\(key)'")
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw SwiftletError.malformedFile(path: path, reason: "duplicate metadata key '\(key)'")
            }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = Self.defaultAlignment
        if let value = metadata["general.alignment"] {
            guard let a = value.intValue, a > 0, a <= Self.maxAlignment, a & (a - 1) == 0 else {
                throw SwiftletError.malformedFile(path: path, reason: "general.alignment \(value) is not a power of two up to \(Self.maxAlignment)")
            }
            alignment = a
        }
        self.alignment = alignment

        var index = [String: Int](minimumCapacity: tensorCount)
        for (i, t) in raw.enumerated() {
            guard index.updateValue(i, forKey: t.name) == nil else {
                throw SwiftletError.malformedFile(path: path, reason: "duplicate tensor name '\(t.name)'")
            }
            guard t.relativeOffset % alignment == 0 else {
                throw SwiftletError.malformedFile(path: path, reason: "tensor '\(t.name)' offset \(t.relativeOffset) is not a multiple of the alignment \(alignment)")
            }
        }
        self.tensorIndex = index

        // The data section starts at the next multiple of the alignment. (The header end is at
        // most the file size, so the rounding cannot overflow.)
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        let fileSize = storage.bytes.count
        var infos = [GGUFTensorInfo]()
        infos.reserveCapacity(raw.count)
        for t in raw {
            let (start, o1) = dataOffset.addingReportingOverflow(t.relativeOffset)
            let (end, o2) = start.addingReportingOverflow(t.bytes)
            guard !o1, !o2 else {
                throw SwiftletError.malformedFile(path: path, reason: "tensor '\(t.name)' offset \(t.relativeOffset) + \(t.bytes) bytes overflows")
            }
            guard end <= fileSize else {
                throw SwiftletError.truncatedFile(path: path, what: "data of tensor '\(t.name)' (bytes \(start)..<\(end), file has \(fileSize))")
            }
            infos.append(GGUFTensorInfo(name: t.name, type: t.type, shape: t.shape, offset: start, byteCount: t.bytes, elementCount: t.elements))
        }
        self.tensors = infos
    }

    /// A tensor info as stored: offset relative to the data section, sizes validated.
    private struct RawTensorInfo {
        let name: String, type: GGMLType, shape: [Int], relativeOffset: Int, elements: Int, bytes: Int
    }

    /// Reads `count` tensor infos (name, dimension count, dimensions, type, relative offset),
    /// validating the type and that the shape's element and byte counts do not overflow.
    private static func readTensorInfos(_ r: inout GGUFByteReader, count: Int, path: String) throws -> [RawTensorInfo] {
        var infos = [RawTensorInfo]()
        infos.reserveCapacity(count)
        for i in 0 ..< count {
            let name = try r.readString(strict: true, "name of tensor #\(i)")
            let dimCount = try r.read(UInt32.self, "dimension count of tensor '\(name)'")
            guard dimCount <= GGUFTensorGeometry.maxDimensions else {
                throw SwiftletError.malformedFile(path: path, reason: "tensor '\(name)' has \(dimCount) dimensions (at most \(GGUFTensorGeometry.maxDimensions))")
            }
            var shape = [Int]()
            shape.reserveCapacity(Int(dimCount))
            for _ in 0 ..< dimCount {
                let d = try r.read(UInt64.self, "dimensions of tensor '\(name)'")
                guard d <= UInt64(Int.max) else {
                    throw SwiftletError.malformedFile(path: path, reason: "tensor '\(name)' has dimension \(d), which overflows")
                }
                shape.append(Int(d))
            }
            let typeID = try r.read(UInt32.self, "type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: typeID) else {
                throw SwiftletError.unsupportedTensorType("type id \(typeID) of tensor '\(name)' in \(path)")
            }
            let offset = try r.read(UInt64.self, "offset of tensor '\(name)'")
            guard offset <= UInt64(Int.max) else {
                throw SwiftletError.malformedFile(path: path, reason: "tensor '\(name)' has offset \(offset), which overflows")
            }
            switch GGUFTensorGeometry.sizes(type: type, shape: shape) {
            case let .success(sizes):
                infos.append(RawTensorInfo(name: name, type: type, shape: shape, relativeOffset: Int(offset), elements: sizes.elements, bytes: sizes.bytes))
            case let .failure(e):
                throw SwiftletError.malformedFile(path: path, reason: "tensor '\(name)' (\(type)) \(e.reason)")
            }
        }
        return infos
    }

    /// The tensor called `name`, if any.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor: a view into the mapping, valid while this `GGUFFile` lives.
    ///
    /// `info` must come from this file; an info whose range is not inside the file yields an
    /// empty buffer rather than a read outside the mapping.
    public func data(for info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let bytes = storage.bytes
        guard info.offset >= 0, info.byteCount >= 0, info.offset <= bytes.count,
              info.byteCount <= bytes.count - info.offset
        else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: bytes[info.offset ..< info.offset + info.byteCount])
    }

    /// The file's size in bytes.
    public var fileSize: Int { storage.bytes.count }

    /// `general.architecture` ("llama", "gemma3", …).
    public var architecture: String? { metadata["general.architecture"]?.stringValue }
}
