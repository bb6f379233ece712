import Foundation
import SwiftletTensor

/// The trainable tensors of a model, in a fixed order, by GGUF tensor name.
public final class ParameterStore: @unchecked Sendable {  // mutable; used by one training task at a time
    /// Parameters in creation order (the order of export, checkpoints and the optimizer state).
    public private(set) var parameters: [Variable] = []
    private var byName: [String: Variable] = [:]

    public init() {}

    /// Creates and registers a parameter `[rows, columns]` (rows = output features).
    @discardableResult
    public func add(_ name: String, rows: Int, columns: Int, requiresGrad: Bool = true) throws -> Variable {
        guard byName[name] == nil else { throw SwiftletError.invalidArgument("duplicate parameter \(name)") }
        let v = try Variable(name: name, rows: rows, columns: columns, requiresGrad: requiresGrad)
        parameters.append(v)
        byName[name] = v
        return v
    }

    /// The parameter called `name`.
    public subscript(name: String) -> Variable? { byName[name] }

    /// Total number of values.
    public var count: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Clears every gradient.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// Seeded normal samples (Box–Muller over SplitMix64) for weight initialization.
struct NormalSampler {
    var generator: SplitMix64
    private var spare: Float?

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func next() -> Float {
        if let s = spare { spare = nil; return s }
        // 24-bit uniforms in (0, 1].
        let u1 = (Double(generator.next() >> 40) + 1) / Double(1 << 24)
        let u2 = Double(generator.next() >> 40) / Double(1 << 24)
        let r = (-2 * log(u1)).squareRoot()
        spare = Float(r * sin(2 * .pi * u2))
        return Float(r * cos(2 * .pi * u2))
    }
}
