import Foundation
import SwiftletTensor

extension KVCache {
    /// Whether `transformer` can evaluate with this cache: same layers, heads, head size and
    /// context length.
    public func fits(_ transformer: Transformer) -> Bool {
        let c = transformer.config
        return layers == c.layerCount && kvHeads == c.kvHeadCount && headDim == c.headDim
            && capacity == transformer.contextLength
    }

    /// Bytes of one position's keys and values across all layers and heads.
    var bytesPerPosition: Int { 2 * layers * kvHeads * headDim * (type == .f32 ? 4 : 2) }

    /// The keys and values of positions `0 ..< count`, in a layout independent of the padding:
    /// for each layer and head the keys row by row, then the values dimension by dimension.
    func snapshot(positions count: Int) -> Data {
        precondition(count >= 0 && count <= capacity)
        var data = Data(capacity: count * bytesPerPosition)
        func append<T>(_ p: UnsafePointer<T>, _ n: Int) {
            data.append(UnsafeBufferPointer(start: p, count: n))
        }
        for layer in 0..<layers {
            for head in 0..<kvHeads {
                let base = headOffset(layer: layer, head: head)
                switch type {
                case .f32:
                    append(keys + base, count * headDim)
                    append(values + base, count * headDim)
                case .f16:
                    append(keys16 + base, count * headDim)
                    for d in 0..<headDim { append(valuesT16 + base + d * paddedCapacity, count) }
                }
            }
        }
        return data
    }

    /// Writes positions `0 ..< count` from a ``snapshot(positions:)`` of a cache of the same shape.
    func restore(_ data: Data, positions count: Int) throws {
        guard count >= 0, count <= capacity, data.count == count * bytesPerPosition else {
            throw SwiftletError.invalidArgument("KV state of \(data.count) bytes does not hold \(count) positions of this cache")
        }
        data.withUnsafeBytes { raw in
            var offset = 0
            func copy<T>(_ p: UnsafeMutablePointer<T>, _ n: Int) {
                let bytes = n * MemoryLayout<T>.stride
                UnsafeMutableRawPointer(p).copyMemory(from: raw.baseAddress! + offset, byteCount: bytes)
                offset += bytes
            }
            for layer in 0..<layers {
                for head in 0..<kvHeads {
                    let base = headOffset(layer: layer, head: head)
                    switch type {
                    case .f32:
                        copy(keys + base, count * headDim)
                        copy(values + base, count * headDim)
                    case .f16:
                        copy(keys16 + base, count * headDim)
                        for d in 0..<headDim { copy(valuesT16 + base + d * paddedCapacity, count) }
                    }
                }
            }
        }
    }
}
