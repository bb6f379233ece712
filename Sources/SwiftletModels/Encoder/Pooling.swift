import Foundation
import SwiftletTensor
import SwiftletFormats

/// How token states become one sentence vector (sentence-transformers' `Pooling` module).
public enum PoolingMode: String, Sendable, CaseIterable {
    /// The first token's state (`[CLS]`).
    case cls
    /// Element-wise maximum over the tokens.
    case max
    /// Mean over the tokens.
    case mean
    /// Sum over the tokens divided by √(token count).
    case meanSqrtLen
}

/// `1_Pooling/config.json` of a sentence-transformers model.
///
/// When several modes are on, their vectors are concatenated in the order cls, max, mean,
/// mean-sqrt-len (the order sentence-transformers uses).
public struct PoolingConfig: Decodable, Sendable, Equatable {
    /// Width of the token states (`word_embedding_dimension`).
    public var wordEmbeddingDimension: Int?
    /// The modes that are on, in concatenation order.
    public var modes: [PoolingMode]

    /// Mean pooling only (sentence-transformers' default when a model has no pooling config).
    public init(modes: [PoolingMode] = [.mean], wordEmbeddingDimension: Int? = nil) {
        self.modes = modes
        self.wordEmbeddingDimension = wordEmbeddingDimension
    }

    enum CodingKeys: String, CodingKey {
        case wordEmbeddingDimension = "word_embedding_dimension"
        case cls = "pooling_mode_cls_token", max = "pooling_mode_max_tokens"
        case mean = "pooling_mode_mean_tokens", meanSqrtLen = "pooling_mode_mean_sqrt_len_tokens"
        case weightedMean = "pooling_mode_weightedmean_tokens", lastToken = "pooling_mode_lasttoken"
        case poolingMode = "pooling_mode"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        wordEmbeddingDimension = try c.decodeIfPresent(Int.self, forKey: .wordEmbeddingDimension)
        for key in [CodingKeys.weightedMean, .lastToken] where try c.decodeIfPresent(Bool.self, forKey: key) == true {
            throw SwiftletError.unsupportedArchitecture("pooling \(key.rawValue)", supported: PoolingMode.allCases.map(\.rawValue))
        }
        var modes: [PoolingMode] = []
        if try c.decodeIfPresent(Bool.self, forKey: .cls) == true { modes.append(.cls) }
        if try c.decodeIfPresent(Bool.self, forKey: .max) == true { modes.append(.max) }
        if try c.decodeIfPresent(Bool.self, forKey: .mean) == true { modes.append(.mean) }
        if try c.decodeIfPresent(Bool.self, forKey: .meanSqrtLen) == true { modes.append(.meanSqrtLen) }
        if modes.isEmpty, let name = try c.decodeIfPresent(String.self, forKey: .poolingMode) {
            switch name {
            case "cls": modes = [.cls]
            case "max": modes = [.max]
            case "mean": modes = [.mean]
            case "mean_sqrt_len_tokens": modes = [.meanSqrtLen]
            default: throw SwiftletError.unsupportedArchitecture("pooling \(name)", supported: ["cls", "max", "mean", "mean_sqrt_len_tokens"])
            }
        }
        guard !modes.isEmpty else {
            throw SwiftletError.missingMetadata("1_Pooling/config.json: no pooling mode is on")
        }
        self.modes = modes
    }

    /// Width of the pooled vector for token states of width `hidden`.
    public func outputDimension(hidden: Int) -> Int { modes.count * hidden }

    /// Pools the `tokens` rows (width `hidden`, consecutive) at `states` into `out`
    /// (`outputDimension(hidden:)` floats). Every row is a real token: padding never reaches here.
    public func pool(states: UnsafePointer<Float>, tokens: Int, hidden: Int, out: UnsafeMutablePointer<Float>) {
        for (m, mode) in modes.enumerated() {
            let o = out + m * hidden
            guard tokens > 0 else { o.update(repeating: 0, count: hidden); continue }
            switch mode {
            case .cls:
                o.update(from: states, count: hidden)
            case .max:
                o.update(from: states, count: hidden)
                for t in 1..<max(tokens, 1) {
                    let row = states + t * hidden
                    for j in 0..<hidden where row[j] > o[j] { o[j] = row[j] }
                }
            case .mean, .meanSqrtLen:
                o.update(repeating: 0, count: hidden)
                for t in 0..<tokens {
                    let row = states + t * hidden
                    for j in 0..<hidden { o[j] += row[j] }
                }
                let divisor = mode == .mean ? Float(tokens) : Float(tokens).squareRoot()
                let inv = 1 / divisor
                for j in 0..<hidden { o[j] *= inv }
            }
        }
    }
}

/// L2 normalization (sentence-transformers' parameter-free `Normalize` module).
public enum L2Normalize {
    /// Scales `count` floats at `x` to unit length; a zero vector stays zero (norm clamped at 1e-12,
    /// as `torch.nn.functional.normalize` does).
    public static func apply(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var sum: Double = 0
        for i in 0..<count { sum += Double(x[i]) * Double(x[i]) }
        let inv = Float(1 / Swift.max(sum.squareRoot(), 1e-12))
        for i in 0..<count { x[i] *= inv }
    }
}
