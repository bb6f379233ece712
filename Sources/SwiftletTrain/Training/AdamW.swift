import Foundation
import SwiftletTensor

/// AdamW (Loshchilov & Hutter): Adam moments with bias correction and weight decay applied to the
/// weights directly (decoupled), not through the gradient. Decay applies to matrices only; norm
/// weights (one row) are not decayed.
public final class AdamW: @unchecked Sendable {  // mutable; used by one training task at a time
    public struct Settings: Codable, Sendable, Equatable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.95
        public var epsilon: Float = 1e-8
        public var weightDecay: Float = 0.1
        public init() {}
    }

    public let settings: Settings
    /// Steps taken so far (the bias corrections use it).
    public internal(set) var step: Int = 0
    let parameters: [Variable]
    /// First and second moments, parameter by parameter, allocated once.
    let firstMoments: [UnsafeMutablePointer<Float>]
    let secondMoments: [UnsafeMutablePointer<Float>]
    let pool: ComputePool

    public init(parameters: ParameterStore, settings: Settings = Settings(), pool: ComputePool = .shared) {
        self.settings = settings
        self.parameters = parameters.parameters.filter(\.requiresGrad)
        firstMoments = self.parameters.map {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: $0.count); p.initialize(repeating: 0, count: $0.count); return p
        }
        secondMoments = self.parameters.map {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: $0.count); p.initialize(repeating: 0, count: $0.count); return p
        }
        self.pool = pool
    }

    deinit {
        for p in firstMoments { p.deallocate() }
        for p in secondMoments { p.deallocate() }
    }

    /// Updates every parameter from its gradient at `learningRate`, then increments `step`.
    public func update(learningRate: Float) {
        step += 1
        let s = settings
        let correction1 = 1 - powf(s.beta1, Float(step))
        let correction2 = 1 - powf(s.beta2, Float(step))
        for (index, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let m = firstMoments[index], v = secondMoments[index], w = p.value
            let decay = p.rows > 1 ? 1 - learningRate * s.weightDecay : 1
            pool.parallelChunks(p.count, chunk: 1 << 14) { range, _ in
                for i in range {
                    m[i] = s.beta1 * m[i] + (1 - s.beta1) * g[i]
                    v[i] = s.beta2 * v[i] + (1 - s.beta2) * g[i] * g[i]
                    let mHat = m[i] / correction1, vHat = v[i] / correction2
                    w[i] = w[i] * decay - learningRate * mHat / (vHat.squareRoot() + s.epsilon)
                }
            }
        }
    }

    /// Scales every gradient so that their global L2 norm is at most `maxNorm`; returns the norm
    /// before clipping. (Summed in Double, parameter by parameter, for reproducibility.)
    @discardableResult
    public static func clipGradients(_ parameters: ParameterStore, maxNorm: Float) -> Float {
        var sum = 0.0
        for p in parameters.parameters {
            guard let g = p.grad else { continue }
            sum += Double(VectorOps.dot(g, g, count: p.count))
        }
        let norm = Float(sum.squareRoot())
        if maxNorm > 0, norm > maxNorm {
            let scale = maxNorm / norm
            for p in parameters.parameters { if let g = p.grad { VectorOps.scale(g, by: scale, count: p.count) } }
        }
        return norm
    }
}

/// Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to `minimum` at `totalSteps`.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public var peak: Float
    public var minimum: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, minimum: Float, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak; self.minimum = minimum; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// The rate for step `step` (0-based).
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        return minimum + (peak - minimum) * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}
