import SwiftletTensor

/// One differentiable operation recorded on a ``Tape``: it reads its inputs' values, writes its
/// output's value, and in `backward` adds its contribution to the inputs' gradients.
public protocol DifferentiableOp: AnyObject {
    /// Computes the output from the inputs.
    func forward()
    /// Adds d(loss)/d(input) to every input that requires a gradient, from the output's gradient.
    func backward()
}

/// A recorded computation: ops in execution order and the activations they write.
///
/// The graph is built once (each builder method allocates the op's output and scratch) and then
/// replayed every step: `forward()` runs the ops in order, `backward(from:)` in reverse. Replaying
/// allocates nothing. Parameters are ``Variable``s created outside the tape; their gradients
/// accumulate across backward passes until the optimizer clears them (gradient accumulation).
public final class Tape: @unchecked Sendable {  // mutable; used by one training task at a time
    /// The ops in execution order.
    public private(set) var ops: [any DifferentiableOp] = []
    /// Activations created by this tape (their gradients are cleared before each backward pass).
    public private(set) var activations: [Variable] = []
    /// Threads used by the ops' own loops (matrix products use the BLAS wrapper's split).
    public let pool: ComputePool

    public init(pool: ComputePool = .shared) {
        self.pool = pool
    }

    /// Appends `op` to the tape.
    public func record(_ op: any DifferentiableOp) { ops.append(op) }

    /// A new activation owned by this tape.
    public func activation(_ name: String, rows: Int, columns: Int) throws -> Variable {
        let v = try Variable(name: name, rows: rows, columns: columns)
        activations.append(v)
        return v
    }

    /// Per-op seconds, forward and backward, when profiling is on (see ``enableProfiling()``).
    public private(set) var forwardSeconds: [Double] = []
    public private(set) var backwardSeconds: [Double] = []
    private var profiling = false

    /// Times every op from now on (a clock read per op; the arrays are allocated here, once).
    public func enableProfiling() {
        profiling = true
        forwardSeconds = [Double](repeating: 0, count: ops.count)
        backwardSeconds = [Double](repeating: 0, count: ops.count)
    }

    /// Seconds spent per kind of op (forward + backward), largest first.
    public func profileByKind() -> [(kind: String, forward: Double, backward: Double)] {
        var totals: [String: (Double, Double)] = [:]
        for (i, op) in ops.enumerated() where i < forwardSeconds.count {
            let kind = String(describing: type(of: op)).replacingOccurrences(of: "Op", with: "")
            let t = totals[kind] ?? (0, 0)
            totals[kind] = (t.0 + forwardSeconds[i], t.1 + backwardSeconds[i])
        }
        return totals.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.forward + $0.backward > $1.forward + $1.backward }
    }

    /// Runs every op forward.
    public func forward() {
        if profiling {
            for (i, op) in ops.enumerated() { forwardSeconds[i] += Self.timed { op.forward() } }
            return
        }
        for op in ops { op.forward() }
    }

    private static func timed(_ body: () -> Void) -> Double {
        let start = ContinuousClock.now
        body()
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Back-propagates from the scalar `loss`, seeding its gradient with `seed` (1, or 1/n when
    /// averaging n accumulated micro-batches). Parameter gradients are added to, not overwritten.
    public func backward(from loss: Variable, seed: Float = 1) {
        for a in activations { a.zeroGrad() }
        loss.grad?[0] = seed
        runBackward()
    }

    private func runBackward() {
        if profiling {
            for i in stride(from: ops.count - 1, through: 0, by: -1) { backwardSeconds[i] += Self.timed { ops[i].backward() } }
            return
        }
        for op in ops.reversed() { op.backward() }
    }

    /// Back-propagates a given gradient of any activation `output` (vector-Jacobian product; the
    /// finite-difference tests use it to check ops that do not end in a scalar).
    public func backward(from output: Variable, outputGradient: [Float]) throws {
        guard let g = output.grad, outputGradient.count == output.count else {
            throw SwiftletError.shapeMismatch(op: "backward", detail: "\(outputGradient.count) gradient values for \(output.name) of \(output.count)")
        }
        for a in activations { a.zeroGrad() }
        outputGradient.withUnsafeBufferPointer { g.update(from: $0.baseAddress!, count: output.count) }
        runBackward()
    }
}
