import SwiftletTensor
import CSwiftletKernels

extension Transformer {
    /// Query rows from which llama.cpp's CPU flash attention takes its tiled path (f16 caches).
    static let flashTileRows = 64
    /// Cached positions from which llama.cpp splits a single query's f16 attention across threads.
    static let flashSplitPositions = 512

    /// Positions llama.cpp's attention spans when `position` is the last cached one: the used
    /// cells padded to 256, at least 256 (its `n_kv`; its cache holds the context padded to 256).
    static func flashSpan(position: Int) -> Int { max(256, (position + 1 + 255) / 256 * 256) }

    /// Causal attention as llama.cpp's `-fa on` computes it (`flash_attn.h`), bit for bit, choosing
    /// its path the way llama.cpp does: the tiled kernel for batches of 64 or more queries over an
    /// f16 cache; for one query over 512 or more positions of an f16 cache, one chunk of positions
    /// per thread merged at the end; otherwise position by position, with the query converted to
    /// the key type's dot-product type. The query heads of a group share each K/V row read.
    func flashAttention(layer: Int, tokens: Int, start: Int, window: Int, scale: Float) {
        let c = config, s = state, cache = self.cache
        let headDim = c.headDim, groupSize = c.headCount / c.kvHeadCount
        let f16 = cache.keyType == .f16 && cache.valueType == .f16
        let scratchStride = s.flashScratchStride

        if tokens >= Self.flashTileRows && f16 {
            let blockRows = Self.attentionBlockRows
            let blocks = (tokens + blockRows - 1) / blockRows
            pool.parallelFor(c.kvHeadCount * blocks) { item, thread in
                let kvHead = item / blocks, block = item % blocks
                let firstRow = block * blockRows, rows = min(blockRows, tokens - firstRow)
                let column = kvHead * groupSize * headDim
                swiftlet_fa_tiled(s.q + firstRow * c.qDim + column, c.qDim, Int32(rows), Int32(groupSize),
                                  Int32(start + firstRow), Int32(headDim),
                                  cache.keyRows(layer: layer, head: kvHead).assumingMemoryBound(to: UInt16.self),
                                  cache.valueRows(layer: layer, head: kvHead).assumingMemoryBound(to: UInt16.self),
                                  Int32(window), scale, s.flashScratch + thread * scratchStride,
                                  s.attention + firstRow * c.qDim + column, c.qDim)
            }
            return
        }

        let keyType = Int32(cache.keyType.ggmlType.rawValue), valueType = Int32(cache.valueType.ggmlType.rawValue)
        let keyBytes = cache.keyRowBytes, valueBytes = cache.valueRowBytes
        if tokens == 1 && f16 && Self.flashSpan(position: start) >= Self.flashSplitPositions {
            let span = Self.flashSpan(position: start)
            let chunks = pool.threadCount, chunkSize = (span + chunks - 1) / chunks
            let partialStride = c.headCount * (headDim + 2)
            pool.parallelFor(c.kvHeadCount * chunks) { item, thread in
                let kvHead = item / chunks, chunk = item % chunks
                let column = kvHead * groupSize * headDim
                let begin = chunk * chunkSize, end = min(begin + chunkSize, span)
                swiftlet_fa_attend(s.q + column, c.qDim, 1, Int32(groupSize), Int32(start), Int32(headDim),
                                   keyType, cache.keyRows(layer: layer, head: kvHead), keyBytes,
                                   valueType, cache.valueRows(layer: layer, head: kvHead), valueBytes,
                                   Int32(window), scale, begin, end, s.flashScratch + thread * scratchStride,
                                   s.attention + column, c.qDim,
                                   s.flashPartials + chunk * partialStride + kvHead * groupSize * (headDim + 2))
            }
            for h in 0..<c.headCount {
                swiftlet_fa_reduce(s.flashPartials + h * (headDim + 2), partialStride, Int32(chunks), Int32(headDim),
                                   s.attention + h * headDim)
            }
            return
        }

        // Position by position. One query: split each group's heads so every thread has work;
        // a few queries: blocks of rows.
        let parts = tokens == 1 ? min(groupSize, max(1, (2 * pool.threadCount + c.kvHeadCount - 1) / c.kvHeadCount)) : 1
        let partSize = (groupSize + parts - 1) / parts
        let blockRows = 16
        let blocks = (tokens + blockRows - 1) / blockRows
        pool.parallelFor(c.kvHeadCount * parts * blocks) { item, thread in
            let kvHead = item / (parts * blocks), part = item / blocks % parts, block = item % blocks
            let firstHead = part * partSize, heads = min(partSize, groupSize - firstHead)
            guard heads > 0 else { return }
            let firstRow = block * blockRows, rows = min(blockRows, tokens - firstRow)
            let column = (kvHead * groupSize + firstHead) * headDim
            swiftlet_fa_attend(s.q + firstRow * c.qDim + column, c.qDim, Int32(rows), Int32(heads), Int32(start + firstRow),
                               Int32(headDim), keyType, cache.keyRows(layer: layer, head: kvHead), keyBytes,
                               valueType, cache.valueRows(layer: layer, head: kvHead), valueBytes,
                               Int32(window), scale, 0, start + tokens, s.flashScratch + thread * scratchStride,
                               s.attention + firstRow * c.qDim + column, c.qDim, nil)
        }
    }
}
