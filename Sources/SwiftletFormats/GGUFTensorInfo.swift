import SwiftletCore

/// Where one tensor lives in a GGUF file and what it holds.
///
/// All sizes were validated when the file was opened: the element count and byte count do not
/// overflow, the row length is a whole number of blocks, and `offset ..< offset + byteCount` lies
/// inside the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name ("blk.0.attn_q.weight").
    public let name: String
    /// Element / block type.
    public let type: GGMLType
    /// Dimensions in GGUF order: `shape[0]` (ne0) is the row length, the fastest-varying axis.
    public let shape: [Int]
    /// Absolute byte offset of the tensor's data in the file.
    public let offset: Int
    /// Bytes of data.
    public let byteCount: Int
    /// Number of elements (product of `shape`).
    public let elementCount: Int

    /// Creates an info; sizes are trusted (the reader validates them before calling this).
    init(name: String, type: GGMLType, shape: [Int], offset: Int, byteCount: Int, elementCount: Int) {
        self.name = name
        self.type = type
        self.shape = shape
        self.offset = offset
        self.byteCount = byteCount
        self.elementCount = elementCount
    }

    /// Elements per row (`shape[0]`, or 1 for a scalar).
    public var rowLength: Int { shape.first ?? 1 }

    /// Number of rows (product of every dimension after the first).
    public var rowCount: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }

    /// Bytes per row.
    public var rowBytes: Int { rowCount == 0 ? 0 : byteCount / rowCount }

    /// Storage bits per weight (`byteCount * 8 / elementCount`).
    public var bitsPerWeight: Double { elementCount == 0 ? 0 : Double(byteCount) * 8 / Double(elementCount) }
}

/// Validation shared by the reader and the writer: the element count and byte count of a tensor
/// of `type` and `shape`, or a description of what is wrong.
enum GGUFTensorGeometry {
    /// ggml's limit on dimensions.
    static let maxDimensions = 4

    static func sizes(type: GGMLType, shape: [Int]) -> Result<(elements: Int, bytes: Int), GeometryError> {
        guard shape.count <= maxDimensions else { return .failure(.init("has \(shape.count) dimensions (at most \(maxDimensions))")) }
        var elements = 1
        for d in shape {
            guard d >= 0 else { return .failure(.init("has a negative dimension \(d)")) }
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { return .failure(.init("shape \(shape) overflows the element count")) }
            elements = p
        }
        let rowLength = shape.first ?? 1
        guard let rowBytes = type.rowBytes(rowLength) else {
            return .failure(.init("row length \(rowLength) is not a multiple of \(type)'s block size \(type.traits.blockSize)"))
        }
        var bytes = rowBytes
        for d in shape.dropFirst() {
            let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else { return .failure(.init("shape \(shape) overflows the byte count")) }
            bytes = p
        }
        return .success((elements, bytes))
    }

    struct GeometryError: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
