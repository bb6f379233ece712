import SwiftletTensor
import CSwiftletKernels

extension Transformer {
    /// Query rows per block of batched attention: bounds the score scratch to
    /// `attentionBlockRows × contextLength` floats per thread and gives the pool
    /// heads × blocks work items to balance.
    static let attentionBlockRows = 64

    /// Attention over f16 values (transposed) and f16 or block-type keys, bit-identical to
    /// llama.cpp without flash attention (`swiftlet_gc_attention_f16`, `swiftlet_gc_attention_quant_k`):
    /// over f16 keys llama.cpp takes a batch of two or more tokens through tinyBLAS and a single
    /// token through `ggml_vec_dot_f16`, whose summation orders differ, so the order follows the
    /// number of tokens evaluated together. Heads × blocks of queries run in parallel.
    func attentionF16(layer: Int, tokens: Int, start: Int, window: Int, scale: Float) {
        let c = config, s = state, cache = self.cache
        let headDim = c.headDim, groupSize = c.headCount / c.kvHeadCount
        let blockRows = Self.attentionBlockRows
        let blocks = (tokens + blockRows - 1) / blockRows
        let batched: Int32 = tokens >= 2 ? 1 : 0
        pool.parallelFor(c.headCount * blocks) { item, thread in
            let h = item / blocks, block = item % blocks
            let firstRow = block * blockRows, rows = min(blockRows, tokens - firstRow)
            let kvHead = h / groupSize
            let base = cache.headOffset(layer: layer, head: kvHead)
            let query = s.q + firstRow * c.qDim + h * headDim, output = s.attention + firstRow * c.qDim + h * headDim
            let scratch = s.attentionScratch + thread * s.attentionScratchStride
            if cache.keyType == .f16 {
                swiftlet_gc_attention_f16(query, c.qDim, Int32(rows), Int32(start + firstRow), Int32(headDim),
                                          cache.keys16 + base, cache.valuesT16 + base, cache.paddedCapacity,
                                          Int32(window), scale, batched, scratch, output, c.qDim)
            } else {
                swiftlet_gc_attention_quant_k(query, c.qDim, Int32(rows), Int32(start + firstRow), Int32(headDim),
                                              Int32(cache.keyType.ggmlType.rawValue), cache.keyRows(layer: layer, head: kvHead),
                                              cache.keyRowBytes, cache.valuesT16 + base, cache.paddedCapacity,
                                              Int32(window), scale, batched, scratch, output, c.qDim)
            }
        }
    }

    /// Causal attention of a batch (prefill) over the f32 cache as two matrix products per
    /// (head, block of queries): S = scale · Q·Kᵀ over the keys the block can see, masked row
    /// softmax, then O = S·V. Same result as the per-query path in `attention` up to summation
    /// order. Blocks run in parallel; each product runs on its thread alone.
    func batchedAttention(layer: Int, tokens: Int, start: Int, window: Int, scale: Float) {
        let c = config, s = state, cache = self.cache
        let headDim = c.headDim, groupSize = c.headCount / c.kvHeadCount
        let blockRows = Self.attentionBlockRows
        let blocks = (tokens + blockRows - 1) / blockRows
        let serial = serialPool
        pool.parallelFor(c.headCount * blocks) { item, thread in
            let h = item / blocks, block = item % blocks
            let firstRow = block * blockRows, rows = min(blockRows, tokens - firstRow)
            let kvHead = h / groupSize
            // Keys visible to some row of the block: from the first row's window start to the
            // last row's own position.
            let firstPosition = start + firstRow
            let keyStart = window > 0 ? max(0, firstPosition - window + 1) : 0
            let keyEnd = firstPosition + rows
            let keyCount = keyEnd - keyStart
            let scores = s.attentionScratch + thread * s.attentionScratchStride
            let query = s.q + firstRow * c.qDim + h * headDim
            let keys = UnsafePointer(cache.keys + cache.headOffset(layer: layer, head: kvHead) + keyStart * headDim)
            let values = UnsafePointer(cache.values + cache.headOffset(layer: layer, head: kvHead) + keyStart * headDim)
            BLAS.sgemm(transA: false, transB: true, m: rows, n: keyCount, k: headDim, alpha: scale,
                       a: query, lda: c.qDim, b: keys, ldb: headDim,
                       beta: 0, c: scores, ldc: keyCount, pool: serial)
            for r in 0..<rows {
                let position = firstPosition + r
                let lo = (window > 0 ? max(0, position - window + 1) : 0) - keyStart
                let hi = position + 1 - keyStart
                let row = scores + r * keyCount
                if lo > 0 { row.update(repeating: 0, count: lo) }
                VectorOps.softmax(row + lo, count: hi - lo)
                if hi < keyCount { (row + hi).update(repeating: 0, count: keyCount - hi) }
            }
            BLAS.sgemm(transA: false, transB: false, m: rows, n: headDim, k: keyCount, alpha: 1,
                       a: scores, lda: keyCount, b: values, ldb: headDim,
                       beta: 0, c: s.attention + firstRow * c.qDim + h * headDim, ldc: c.qDim, pool: serial)
        }
    }
}
