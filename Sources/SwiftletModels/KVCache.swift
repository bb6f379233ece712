/// Element type of the KV cache.
public enum KVCacheType: String, Sendable, CaseIterable {
    /// Full precision (default).
    case f32
    /// Half the memory; as llama.cpp's default cache (queries and attention weights are rounded
    /// to f16 too, as its f16 matmuls do).
    case f16
}

/// Keys and values of every past position, laid out `[layer][kvHead][position][headDim]` so one
/// head's keys are contiguous (attention streams them with unit stride).
///
/// Allocated once for the whole context; positions are overwritten in place, so rewinding (prompt
/// cache reuse) is just moving the logical length back.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Positions the cache holds.
    public let capacity: Int
    public let type: KVCacheType
    /// f32 storage (`type == .f32`), else empty.
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>
    /// f16 storage (`type == .f16`), else empty.
    let keys16: UnsafeMutablePointer<Float16>
    let values16: UnsafeMutablePointer<Float16>

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, type: KVCacheType = .f32) {
        self.layers = layers; self.kvHeads = kvHeads; self.headDim = headDim; self.capacity = capacity
        self.type = type
        let count = layers * kvHeads * capacity * headDim
        let count32 = type == .f32 ? count : 1, count16 = type == .f16 ? count : 1
        keys = .allocate(capacity: count32); values = .allocate(capacity: count32)
        keys.initialize(repeating: 0, count: count32); values.initialize(repeating: 0, count: count32)
        keys16 = .allocate(capacity: count16); values16 = .allocate(capacity: count16)
        keys16.initialize(repeating: 0, count: count16); values16.initialize(repeating: 0, count: count16)
    }

    deinit { keys.deallocate(); values.deallocate(); keys16.deallocate(); values16.deallocate() }

    /// Bytes held by keys and values together.
    public var byteCount: Int { 2 * layers * kvHeads * capacity * headDim * (type == .f32 ? 4 : 2) }

    /// Offset of `(layer, head, position 0)`.
    @inline(__always)
    func headOffset(layer: Int, head: Int) -> Int { (layer * kvHeads + head) * capacity * headDim }

    /// Stores the keys and values of `tokens` consecutive positions starting at `start`, from
    /// row-major `[tokens, kvHeads·headDim]` buffers.
    func store(layer: Int, start: Int, tokens: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let rowWidth = kvHeads * headDim
        for t in 0..<tokens {
            for h in 0..<kvHeads {
                let dst = headOffset(layer: layer, head: h) + (start + t) * headDim
                let src = t * rowWidth + h * headDim
                switch type {
                case .f32:
                    (keys + dst).update(from: k + src, count: headDim)
                    (values + dst).update(from: v + src, count: headDim)
                case .f16:
                    for d in 0..<headDim {
                        keys16[dst + d] = Float16(k[src + d])
                        values16[dst + d] = Float16(v[src + d])
                    }
                }
            }
        }
    }
}
