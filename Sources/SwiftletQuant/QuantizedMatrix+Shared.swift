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
        guard a.type.activationType != .f32, sameShape(b) else {
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
        let needed = activationScratchBytes(type: a.type, cols: a.cols, tokens: tokens)
        precondition(scratch.count >= needed, "QuantizedMatrix.matmul: scratch holds \(scratch.count) bytes, needs \(needed)")
        let act = scratch.baseAddress!, actStride = needed / tokens
        let typeID = Int32(a.type.rawValue), variant = a.kernel.rawValue, cols = a.cols
        if tokens == 1 {
            swiftlet_qk_quantize_row(variant, typeID, x, act, Int32(cols), 0, 1)
        } else {
            pool.parallelFor(tokens) { t in
                swiftlet_qk_quantize_row(variant, typeID, x + t * cols, act + t * actStride, Int32(cols), Int32(t), Int32(tokens))
            }
        }
        // Chunks per matrix in proportion to its rows (a few per thread overall); a chunk never
        // straddles two matrices.
        let (mc, outc) = third ?? (b, yb)
        let rowsC = third == nil ? 0 : mc.rows
        let totalRows = a.rows + b.rows + rowsC
        let target = (tokens == 1 ? 1 : 2) * pool.threadCount   // as in matmul
        func share(_ rows: Int) -> Int { rows == 0 ? 0 : min(rows, max(1, (target * rows + totalRows - 1) / totalRows)) }
        let ca = share(a.rows), cb = share(b.rows), cc = share(rowsC)
        let n = Int32(cols)
        pool.parallelFor(ca + cb + cc) { chunk in
            let w: QuantizedMatrix, y: UnsafeMutablePointer<Float>, index: Int, count: Int
            if chunk < ca { w = a; y = ya; index = chunk; count = ca }
            else if chunk < ca + cb { w = b; y = yb; index = chunk - ca; count = cb }
            else { w = mc; y = outc; index = chunk - ca - cb; count = cc }
            var perChunk = (w.rows + count - 1) / count
            if tokens >= 4 && perChunk > 16 { perChunk = (perChunk + 15) / 16 * 16 }   // whole k-quant prefill tiles, as matmul
            let r0 = index * perChunk, r1 = min(w.rows, r0 + perChunk)
            guard r0 < r1 else { return }
            swiftlet_qk_gemm(variant, typeID, n, w.data.baseAddress! + r0 * w.rowBytes, w.rowBytes, Int32(r1 - r0),
                             act, actStride, Int32(tokens), y + r0, w.rows)
        }
    }
}
