import CSwiftletKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How rotary position embedding pairs up the dimensions of a head.
public enum RoPEConvention: String, Sendable, CaseIterable {
    /// Adjacent pairs (x[2i], x[2i+1]) — llama.cpp's "NORM" mode, used for the llama architecture
    /// (GGUF llama weights are permuted for it).
    case interleaved
    /// Halves (x[i], x[i + ropeDim/2]) — GPT-NeoX style, used by Gemma 3 and by HF checkpoints.
    case neox
}

/// Rotary position embedding.
///
/// Pair `i` (0 ≤ i < ropeDim/2) is rotated by θ_i = position · base^(−2i/ropeDim). Dimensions from
/// `ropeDim` to `headDim` are left unchanged (partial rotary). The angles are computed as llama.cpp
/// does (θ_0 = position, θ_{i+1} = θ_i · base^(−2/ropeDim), in Float) so results match it closely.
public enum RoPE {
    /// Rotates `heads` consecutive heads of `headDim` floats at `x`, in place.
    /// Does nothing when `ropeDim` is not even or exceeds `headDim` (callers validate shapes up front;
    /// the `Tensor` API throws for that case).
    public static func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, ropeDim: Int, position: Int,
                             base: Float, convention: RoPEConvention) {
        guard ropeDim > 0, ropeDim % 2 == 0, ropeDim <= headDim, heads > 0 else { return }
        let pairs = ropeDim / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: ropeDim) { table in
            let cosines = table.baseAddress!
            let sines = cosines + pairs
            fillAngles(position: position, pairs: pairs, ropeDim: ropeDim, base: base, cos: cosines, sin: sines)
            for h in 0..<heads {
                rotate(x + h * headDim, pairs: pairs, cos: cosines, sin: sines, convention: convention)
            }
        }
    }

    /// Precomputed cos/sin of every position up to `maxPositions` (for the decode loop: no
    /// transcendental calls per token). Memory: maxPositions · ropeDim floats.
    public final class Table: @unchecked Sendable {
        public let ropeDim: Int
        public let base: Float
        public let maxPositions: Int
        /// Row p: ropeDim/2 cosines then ropeDim/2 sines.
        @usableFromInline let storage: UnsafeMutablePointer<Float>

        /// - Throws: `SwiftletError.invalidArgument` when ropeDim is odd or not positive, or
        ///   maxPositions is negative.
        public init(ropeDim: Int, base: Float, maxPositions: Int) throws {
            guard ropeDim > 0, ropeDim % 2 == 0 else {
                throw SwiftletError.invalidArgument("RoPE dimension must be positive and even, got \(ropeDim)")
            }
            guard maxPositions >= 0 else {
                throw SwiftletError.invalidArgument("RoPE table needs maxPositions ≥ 0, got \(maxPositions)")
            }
            self.ropeDim = ropeDim
            self.base = base
            self.maxPositions = maxPositions
            storage = .allocate(capacity: Swift.max(1, maxPositions * ropeDim))
            let pairs = ropeDim / 2
            for p in 0..<maxPositions {
                let row = storage + p * ropeDim
                RoPE.fillAngles(position: p, pairs: pairs, ropeDim: ropeDim, base: base, cos: row, sin: row + pairs)
            }
        }

        deinit { storage.deallocate() }

        /// Rotates `heads` heads at `position` using the table. Positions outside the table are
        /// computed directly (same result, slower).
        public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, position: Int,
                          convention: RoPEConvention) {
            guard ropeDim <= headDim, heads > 0 else { return }
            guard position >= 0, position < maxPositions else {
                RoPE.apply(x, heads: heads, headDim: headDim, ropeDim: ropeDim, position: position, base: base,
                           convention: convention)
                return
            }
            let pairs = ropeDim / 2
            let row = storage + position * ropeDim
            for h in 0..<heads {
                RoPE.rotate(x + h * headDim, pairs: pairs, cos: row, sin: row + pairs, convention: convention)
            }
        }
    }

    /// Writes cos θ_i and sin θ_i of pairs 0..<pairs at `position`, in llama.cpp's order of
    /// operations (also used by the training graph's backward rotation).
    public static func fillAngles(position: Int, pairs: Int, ropeDim: Int, base: Float,
                           cos cosines: UnsafeMutablePointer<Float>, sin sines: UnsafeMutablePointer<Float>) {
        let thetaScale = powf(base, -2 / Float(ropeDim))
        var theta = Float(position)
        for i in 0..<pairs {
            cosines[i] = cosf(theta)
            sines[i] = sinf(theta)
            theta *= thetaScale
        }
    }

    /// x0·cos − x1·sin and x0·sin + x1·cos with the x0 product fused (FMA), as GCC compiles
    /// ggml's rotation: bit-identical to llama.cpp (`swiftlet_gc_rope`, which keeps the FMA an
    /// instruction rather than a libm call).
    @usableFromInline @inline(__always)
    static func rotate(_ x: UnsafeMutablePointer<Float>, pairs: Int, cos cosines: UnsafePointer<Float>,
                       sin sines: UnsafePointer<Float>, convention: RoPEConvention) {
        swiftlet_gc_rope(x, pairs, cosines, sines, convention == .neox ? 1 : 0)
    }
}
