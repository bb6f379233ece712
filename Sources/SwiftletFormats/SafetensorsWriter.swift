import Foundation
import SwiftletCore

/// Writes `.safetensors` files (header JSON padded to 8 bytes, tensors in the order given).
public enum SafetensorsWriter {
    /// One tensor to write: its raw little-endian bytes must be `product(shape) · dtype.byteSize` long.
    public struct Tensor: Sendable {
        /// The tensor's name in the header.
        public var name: String
        /// Element type.
        public var dtype: SafetensorsDType
        /// Shape, outermost dimension first.
        public var shape: [Int]
        /// Raw little-endian element bytes.
        public var bytes: [UInt8]

        /// A tensor of raw bytes.
        public init(name: String, dtype: SafetensorsDType, shape: [Int], bytes: [UInt8]) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.bytes = bytes
        }

        /// An `F32` tensor of `values`.
        public init(name: String, shape: [Int], values: [Float]) {
            self.init(name: name, dtype: .f32, shape: shape,
                      bytes: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } })
        }
    }

    /// The file's bytes. Throws ``SwiftletError/shapeMismatch(op:detail:)`` when a tensor's bytes
    /// do not fit its dtype and shape, and ``SwiftletError/invalidArgument(_:)`` for a duplicate name.
    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors {
            guard header[t.name] == nil, t.name != "__metadata__" else {
                throw SwiftletError.invalidArgument("duplicate tensor name \(t.name)")
            }
            let expected = t.shape.reduce(1, *) * t.dtype.byteSize
            guard expected == t.bytes.count else {
                throw SwiftletError.shapeMismatch(op: "safetensors write \(t.name)", detail: "\(t.dtype.rawValue) \(t.shape) needs \(expected) bytes, got \(t.bytes.count)")
            }
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
            offset += t.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data section starts 8-byte aligned (mapped F32 reads stay aligned).
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for t in tensors { out.append(contentsOf: t.bytes) }
        return out
    }

    /// Writes the file to `url` (see ``encode(_:metadata:)``).
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let data = try encode(tensors, metadata: metadata)
        do { try data.write(to: url) } catch {
            throw SwiftletError.io(path: url.path, reason: "\(error.localizedDescription)")
        }
    }
}
