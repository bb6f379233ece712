import SwiftletTensor

/// Element type of the KV cache.
public enum KVCacheType: String, Sendable, CaseIterable {
    /// Full precision.
    case f32
    /// Half the memory, and llama.cpp's default: with it Swiftlet reproduces llama.cpp's attention
    /// bit for bit (queries and attention weights rounded to f16, llama.cpp's summation order).
    /// The default.
    case f16
}

/// Keys and values of every past position, allocated once for the whole context; positions are
/// overwritten in place, so rewinding (prompt cache reuse) is just moving the logical length back.
///
/// Layouts, chosen so attention streams each operand with unit stride:
/// - f32: keys and values `[layer][kvHead][position][headDim]`.
/// - f16: keys `[layer][kvHead][position][headDim]`; values transposed,
///   `[layer][kvHead][headDim][position]` (as llama.cpp stores them without flash attention), so
///   one output dimension is a dot product over positions.
/// Rows hold `paddedCapacity` positions (a multiple of 64) so the f16 kernels may read whole
/// 64-position chunks; the padding stays zero.
public final class KVCache: @unchecked Sendable {  // mutated only by the one evaluation that owns it at a time
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Positions the cache holds.
    public let capacity: Int
    /// `capacity` rounded up to a multiple of 64.
    public let paddedCapacity: Int
    public let type: KVCacheType
    /// f32 storage (`type == .f32`), else empty.
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>
    /// f16 storage as raw bits (`type == .f16`), else empty.
    let keys16: UnsafeMutablePointer<UInt16>
    let valuesT16: UnsafeMutablePointer<UInt16>

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, type: KVCacheType = .f16) {
        self.layers = layers; self.kvHeads = kvHeads; self.headDim = headDim; self.capacity = capacity
        self.type = type
        paddedCapacity = (capacity + 63) / 64 * 64
        let count = layers * kvHeads * paddedCapacity * headDim
        let count32 = type == .f32 ? count : 1, count16 = type == .f16 ? count : 1
        keys = .allocate(capacity: count32); values = .allocate(capacity: count32)
        keys.initialize(repeating: 0, count: count32); values.initialize(repeating: 0, count: count32)
        keys16 = .allocate(capacity: count16); valuesT16 = .allocate(capacity: count16)
        keys16.initialize(repeating: 0, count: count16); valuesT16.initialize(repeating: 0, count: count16)
    }

    deinit { keys.deallocate(); values.deallocate(); keys16.deallocate(); valuesT16.deallocate() }

    /// Bytes held by keys and values together.
    public var byteCount: Int { 2 * layers * kvHeads * paddedCapacity * headDim * (type == .f32 ? 4 : 2) }

    /// Offset of the block of `(layer, head)`: position 0 of its keys (both types), of its f32
    /// values, and dimension 0 of its transposed f16 values.
    @inline(__always)
    func headOffset(layer: Int, head: Int) -> Int { (layer * kvHeads + head) * paddedCapacity * headDim }

    /// Stores the keys and values of `tokens` consecutive positions starting at `start`, from
    /// row-major `[tokens, kvHeads·headDim]` buffers.
    func store(layer: Int, start: Int, tokens: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let rowWidth = kvHeads * headDim
        for t in 0..<tokens {
            for h in 0..<kvHeads {
                let base = headOffset(layer: layer, head: h)
                let position = start + t
                let src = t * rowWidth + h * headDim
                switch type {
                case .f32:
                    (keys + base + position * headDim).update(from: k + src, count: headDim)
                    (values + base + position * headDim).update(from: v + src, count: headDim)
                case .f16:
                    let keyRow = keys16 + base + position * headDim
                    for d in 0..<headDim {
                        keyRow[d] = HalfPrecision.f16(from: k[src + d])
                        valuesT16[base + d * paddedCapacity + position] = HalfPrecision.f16(from: v[src + d])
                    }
                }
            }
        }
    }
}
