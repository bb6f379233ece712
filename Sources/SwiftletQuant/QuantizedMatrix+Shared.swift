import SwiftletCore
import CSwiftletKernels
import SwiftletTensor

extension QuantizedMatrix {
    /// Two or three products of the same input, `Y_i = W_i · X` (attention's Q, K, V; the
    /// feed-forward's gate and up): when the matrices share their weight type and width, the
    /// activations are quantized once and all rows go through one pool dispatch, which in decode
    /// saves a quantization and a thread hand-off per extra matrix. Results are identical to
    /// separate ``matmul(_:tokens:into:scratch:pool:)`` calls (the same kernels on the same
    /// bytes); with differing types it falls back to them.
    ///
    /// - Parameters:
    ///   - a, b, c: the matrices (`c` optional) with their outputs (row-major `[tokens, rows]`).
    ///   - scratch: as for `matmul`, sized for one matrix.
    public static func matmul(_ a: QuantizedMatrix, into ya: UnsafeMutablePointer<Float>,
                              _ b: QuantizedMatrix, into yb: UnsafeMutablePointer<Float>,
                              _ c: QuantizedMatrix? = nil, into yc: UnsafeMutablePointer<Float>? = nil,
                              input x: UnsafePointer<Float>, tokens: Int,
                              scratch: UnsafeMutableRawBufferPointer, pool: ComputePool = .shared) {
        guard tokens > 0 else { return }
        func sameShape(_ m: QuantizedMatrix) -> Bool { m.type == a.type && m.cols == a.cols && m.kernel == a.kernel }
        var third = c.flatMap { m in yc.map { (m, $0) } }
        guard sameShape(b) else {
            a.matmul(x, tokens: tokens, into: ya, scratch: scratch, pool: pool)
            b.matmul(x, tokens: tokens, into: yb, scratch: scratch, pool: pool)
            if let (m, y) = third { m.matmul(x, tokens: tokens, into: y, scratch: scratch, pool: pool) }
            return
        }
        if let (m, y) = third, !sameShape(m) {
            // A third matrix of another type (Gemma's alternating V): on its own, first.
            m.matmul(x, tokens: tokens, into: y, scratch: scratch, pool: pool)
            third = nil
        }
        let (act, actStride) = a.prepareActivations(x, tokens: tokens, scratch: scratch, pool: pool)
        // Chunks per matrix in proportion to its rows; a chunk never straddles two matrices.
        let (mc, outc) = third ?? (b, yb)
        let rowsC = third == nil ? 0 : mc.rows
        let totalRows = a.rows + b.rows + rowsC
        let target = chunksPerThread(tokens: tokens) * pool.threadCount
        func share(_ rows: Int) -> Int { rows == 0 ? 0 : min(rows, max(1, (target * rows + totalRows - 1) / totalRows)) }
        let ca = share(a.rows), cb = share(b.rows), cc = share(rowsC)
        pool.parallelFor(ca + cb + cc) { chunk in
            let w: QuantizedMatrix, y: UnsafeMutablePointer<Float>, index: Int, count: Int
            if chunk < ca { w = a; y = ya; index = chunk; count = ca }
            else if chunk < ca + cb { w = b; y = yb; index = chunk - ca; count = cb }
            else { w = mc; y = outc; index = chunk - ca - cb; count = cc }
            let perChunk = w.rowsPerChunk(chunks: count, tokens: tokens)
            w.multiply(rows: min(w.rows, index * perChunk) ..< min(w.rows, (index + 1) * perChunk), act, actStride, tokens: tokens, into: y)
        }
    }
}
