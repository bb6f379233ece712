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
                             base: Float, convention: RoPEConvention, scaling: Scaling = Scaling()) {
        guard ropeDim > 0, ropeDim % 2 == 0, ropeDim <= headDim, heads > 0 else { return }
        let pairs = ropeDim / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: ropeDim) { table in
            let cosines = table.baseAddress!
            let sines = cosines + pairs
            fillAngles(position: position, pairs: pairs, ropeDim: ropeDim, base: base, scaling: scaling,
                       cos: cosines, sin: sines)
            for h in 0..<heads {
                rotate(x + h * headDim, pairs: pairs, cos: cosines, sin: sines, convention: convention)
            }
        }
    }

    /// Precomputed cos/sin of every position up to `maxPositions` (for the decode loop: no
    /// transcendental calls per token). Memory: maxPositions · ropeDim floats.
    public final class Table: @unchecked Sendable {  // filled in init, read-only afterwards
        public let ropeDim: Int
        public let base: Float
        public let scaling: Scaling
        public let maxPositions: Int
        /// Row p: ropeDim/2 cosines then ropeDim/2 sines.
        @usableFromInline let storage: UnsafeMutablePointer<Float>

        /// - Throws: `SwiftletError.invalidArgument` when ropeDim is odd or not positive, or
        ///   maxPositions is negative.
        public init(ropeDim: Int, base: Float, maxPositions: Int, scaling: Scaling = Scaling()) throws {
            guard ropeDim > 0, ropeDim % 2 == 0 else {
                throw SwiftletError.invalidArgument("RoPE dimension must be positive and even, got \(ropeDim)")
            }
            guard maxPositions >= 0 else {
                throw SwiftletError.invalidArgument("RoPE table needs maxPositions ≥ 0, got \(maxPositions)")
            }
            self.ropeDim = ropeDim
            self.base = base
            self.scaling = scaling
            self.maxPositions = maxPositions
            storage = .allocate(capacity: Swift.max(1, maxPositions * ropeDim))
            let pairs = ropeDim / 2
            for p in 0..<maxPositions {
                let row = storage + p * ropeDim
                RoPE.fillAngles(position: p, pairs: pairs, ropeDim: ropeDim, base: base, scaling: scaling,
                                cos: row, sin: row + pairs)
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
                           convention: convention, scaling: scaling)
                return
            }
            let pairs = ropeDim / 2
            let row = storage + position * ropeDim
            for h in 0..<heads {
                RoPE.rotate(x + h * headDim, pairs: pairs, cos: row, sin: row + pairs, convention: convention)
            }
        }
    }

    /// Context-extension variants of the angles, as llama.cpp's `ggml_rope_ext` takes them: pair i
    /// turns by θ_i / factor_i (Llama 3's `rope_freqs`), interpolated by `frequencyScale` (linear
    /// scaling: 1 / factor), blended back towards θ_i / factor_i by YaRN's ramp between
    /// `correctionDims` when `extrapolation` > 0, and cos/sin multiplied by `magnitude`.
    /// The default changes nothing (every operation is exact with these values).
    public struct Scaling: Sendable, Equatable {
        public var frequencyFactors: [Float]?
        public var frequencyScale: Float
        /// YaRN's `ext_factor` (0 = off).
        public var extrapolation: Float
        public var correctionDims: SIMD2<Float>
        /// `attn_factor`: scales cos and sin.
        public var magnitude: Float

        public init(frequencyFactors: [Float]? = nil, frequencyScale: Float = 1, extrapolation: Float = 0,
                    correctionDims: SIMD2<Float> = .zero, magnitude: Float = 1) {
            self.frequencyFactors = frequencyFactors; self.frequencyScale = frequencyScale
            self.extrapolation = extrapolation; self.correctionDims = correctionDims; self.magnitude = magnitude
        }

        /// YaRN's first and last dimension to correct (ggml_rope_yarn_corr_dims).
        public static func yarnCorrectionDims(ropeDim: Int, originalContext: Int, base: Float,
                                              betaFast: Float = 32, betaSlow: Float = 1) -> SIMD2<Float> {
            func dim(_ rotations: Float) -> Float {
                Float(ropeDim) * logf(Float(originalContext) / (rotations * 2 * Float.pi)) / (2 * logf(base))
            }
            return SIMD2(Swift.max(0, floorf(dim(betaFast))), Swift.min(Float(ropeDim - 1), ceilf(dim(betaSlow))))
        }
    }

    /// Writes cos θ_i and sin θ_i of pairs 0..<pairs at `position`, in llama.cpp's order of
    /// operations (also used by the training graph's backward rotation).
    public static func fillAngles(position: Int, pairs: Int, ropeDim: Int, base: Float, scaling: Scaling = Scaling(),
                           cos cosines: UnsafeMutablePointer<Float>, sin sines: UnsafeMutablePointer<Float>) {
        let thetaScale = powf(base, -2 / Float(ropeDim))
        var theta = Float(position)
        for i in 0..<pairs {
            // ggml_rope_cache_init / rope_yarn, with GCC's FMA contractions written out.
            let extrapolated = theta / (scaling.frequencyFactors?[i] ?? 1)
            let interpolated = scaling.frequencyScale * extrapolated
            var angle = interpolated, magnitude = scaling.magnitude
            if scaling.extrapolation != 0 {
                let (low, high) = (scaling.correctionDims.x, scaling.correctionDims.y)
                let y = (Float(i) - low) / Swift.max(0.001, high - low)
                let mix = (1 - Swift.min(1, Swift.max(0, y))) * scaling.extrapolation
                angle = fmaf(interpolated, 1 - mix, extrapolated * mix)
                magnitude *= fmaf(0.1, logf(1 / scaling.frequencyScale), 1)
            }
            cosines[i] = cosf(angle) * magnitude
            sines[i] = sinf(angle) * magnitude
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
