import SwiftletCore
import CSwiftletKernels
import SwiftletTensor

extension QuantizedMatrix {
    /// `Y[t, r] = Σ_c W[r, c] · X[t, c]` for `tokens` rows of X that belong to different sequences
    /// (batched decode): every weight block is read from memory once for all of them, yet each
    /// row of Y is bit-identical to ``matvec(_:into:scratch:pool:)`` of that row alone.
    ///
    /// ``matmul(_:tokens:into:scratch:pool:)`` follows llama.cpp's batch order instead, which for
    /// some types depends on the token count (Q4_K from four tokens, Q6_K from eight). Here every
    /// activation row is quantized as a lone token, and the kernels are called on groups of tokens
    /// small enough that they keep the single-token order; groups after the first re-read a block
    /// of rows that is still in cache.
    public func matmulPerToken(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                               scratch: UnsafeMutableRawBufferPointer, pool: ComputePool = .shared) {
        guard tokens > 0, rows > 0 else { return }
        if tokens == 1 { return matvec(x, into: y, scratch: scratch, pool: pool) }
        let (act, actStride) = prepareLoneActivations(x, tokens: tokens, scratch: scratch)
        let group = Self.loneTokenGroup(type, repacked: llamaRepacked)
        let chunks = min(rows, pool.threadCount)
        let perChunk = (rows + chunks - 1) / chunks
        // Rows re-read by the later token groups: about 16 KiB of weights, which stays in L1/L2.
        let block = tokens <= group ? perChunk : max(1, 16_384 / max(rowBytes, 1))
        pool.parallelFor(chunks) { c in
            let end = min(rows, (c + 1) * perChunk)
            var r0 = min(rows, c * perChunk)
            while r0 < end {
                let r1 = min(end, r0 + block)
                var t0 = 0
                while t0 < tokens {
                    let nt = min(group, tokens - t0)
                    multiply(rows: r0 ..< r1, act + t0 * actStride, actStride, tokens: nt, into: y + t0 * rows)
                    t0 += nt
                }
                r0 = r1
            }
        }
    }

    /// Most tokens one kernel call may take while each keeps the single-token summation order.
    static func loneTokenGroup(_ type: GGMLType, repacked: Bool) -> Int {
        type == .q4_K || (type == .q2_K && repacked) ? 3 : 4
    }

    /// Each row of `x` in the paired activation type, quantized as a lone token would be.
    private func prepareLoneActivations(_ x: UnsafePointer<Float>, tokens: Int,
                                        scratch: UnsafeMutableRawBufferPointer) -> (UnsafeRawPointer, Int) {
        let needed = Self.activationScratchBytes(type: type, cols: cols, tokens: tokens)
        precondition(scratch.count >= needed, "QuantizedMatrix.matmulPerToken: scratch holds \(scratch.count) bytes, needs \(needed)")
        if needed == 0 { return (UnsafeRawPointer(x), 4 * cols) }
        let out = scratch.baseAddress!, actStride = needed / tokens
        for t in 0..<tokens {
            swiftlet_qk_quantize_row_layout(kernel.rawValue, Int32(type.rawValue), llamaRepacked ? 1 : 0, x + t * cols,
                                            out + t * actStride, Int32(cols), 0, 1)
        }
        return (UnsafeRawPointer(out), actStride)
    }
}
