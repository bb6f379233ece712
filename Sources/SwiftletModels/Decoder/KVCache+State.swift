import Foundation
import SwiftletTensor

extension KVCache {
    /// Whether `transformer` can evaluate with this cache: same layers, heads, head size, context
    /// length and attention kind (flash attention or not).
    public func fits(_ transformer: Transformer) -> Bool {
        let c = transformer.config
        return layers == c.layerCount && kvHeads == c.kvHeadCount && headDim == c.headDim
            && capacity == transformer.contextLength && flashAttention == transformer.flashAttention
    }

    /// Bytes of one position's keys and values across all layers and heads.
    var bytesPerPosition: Int { layers * kvHeads * (keyRowBytes + valueRowBytes) }

    /// Calls `body` with each stored span of positions `0 ..< count` (start and byte count), in the
    /// order of a saved state: for each layer and head the keys row by row, then the values (row by
    /// row, or dimension by dimension where they are stored transposed).
    private func forEachSpan(positions count: Int, _ body: (UnsafeMutableRawPointer, Int) -> Void) {
        for layer in 0..<layers {
            for head in 0..<kvHeads {
                body(keyRows(layer: layer, head: head), count * keyRowBytes)
                if valuesTransposed {
                    let base = headOffset(layer: layer, head: head)
                    for d in 0..<headDim { body(valuesT16 + base + d * paddedCapacity, count * 2) }
                } else {
                    body(valueRows(layer: layer, head: head), count * valueRowBytes)
                }
            }
        }
    }

    /// The keys and values of positions `0 ..< count`, independent of the padding.
    func snapshot(positions count: Int) -> Data {
        precondition(count >= 0 && count <= capacity)
        var data = Data(capacity: count * bytesPerPosition)
        forEachSpan(positions: count) { span, bytes in data.append(span.assumingMemoryBound(to: UInt8.self), count: bytes) }
        return data
    }

    /// Writes positions `0 ..< count` from a ``snapshot(positions:)`` of a cache of the same shape.
    func restore(_ data: Data, positions count: Int) throws {
        guard count >= 0, count <= capacity, data.count == count * bytesPerPosition else {
            throw SwiftletError.invalidArgument("KV state of \(data.count) bytes does not hold \(count) positions of this cache")
        }
        data.withUnsafeBytes { raw in
            var offset = 0
            forEachSpan(positions: count) { span, bytes in
                span.copyMemory(from: raw.baseAddress! + offset, byteCount: bytes)
                offset += bytes
            }
        }
    }
}
