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
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        self.layers = layers; self.kvHeads = kvHeads; self.headDim = headDim; self.capacity = capacity
        let count = layers * kvHeads * capacity * headDim
        keys = .allocate(capacity: count)
        values = .allocate(capacity: count)
        keys.initialize(repeating: 0, count: count)
        values.initialize(repeating: 0, count: count)
    }

    deinit { keys.deallocate(); values.deallocate() }

    /// Bytes held by keys and values together.
    public var byteCount: Int { 2 * layers * kvHeads * capacity * headDim * MemoryLayout<Float>.size }

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
                (keys + dst).update(from: k + src, count: headDim)
                (values + dst).update(from: v + src, count: headDim)
            }
        }
    }
}
