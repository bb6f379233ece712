import SwiftletTensor

/// A 2-D F32 buffer of the training graph with its gradient: a parameter (trained, owned by a
/// ``ParameterStore``) or an activation (owned by a ``Tape``). Row-major `[rows, columns]`.
///
/// Memory is allocated once when the variable is created and reused by every step.
public final class Variable: @unchecked Sendable {  // mutable; used by one training task at a time
    /// GGUF tensor name for parameters, a descriptive label for activations.
    public let name: String
    /// Rows (tokens, or output features of a weight matrix).
    public let rows: Int
    /// Columns (the contiguous dimension).
    public let columns: Int
    /// rows · columns.
    public let count: Int
    /// The values, `count` floats.
    public let value: UnsafeMutablePointer<Float>
    /// The gradient of the loss with respect to `value`, or nil for constants (frozen weights).
    public let grad: UnsafeMutablePointer<Float>?

    /// - Throws: ``SwiftletError/invalidArgument(_:)`` when a size is not positive or the element
    ///   count overflows.
    public init(name: String, rows: Int, columns: Int, requiresGrad: Bool = true) throws {
        guard rows > 0, columns > 0 else {
            throw SwiftletError.invalidArgument("\(name): shape [\(rows), \(columns)] must be positive")
        }
        let (n, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, n <= 1 << 40 else {
            throw SwiftletError.invalidArgument("\(name): shape [\(rows), \(columns)] is too large")
        }
        self.name = name
        self.rows = rows
        self.columns = columns
        count = n
        value = .allocate(capacity: n)
        value.initialize(repeating: 0, count: n)
        if requiresGrad {
            let g = UnsafeMutablePointer<Float>.allocate(capacity: n)
            g.initialize(repeating: 0, count: n)
            grad = g
        } else {
            grad = nil
        }
    }

    deinit {
        value.deallocate()
        grad?.deallocate()
    }

    /// Whether the loss's gradient flows into this variable.
    public var requiresGrad: Bool { grad != nil }

    /// Sets the gradient to zero.
    public func zeroGrad() { grad?.update(repeating: 0, count: count) }

    /// A copy of the values (for tests and export).
    public var values: [Float] { Array(UnsafeBufferPointer(start: value, count: count)) }

    /// A copy of the gradient (empty for constants).
    public var gradients: [Float] { grad.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? [] }

    /// Overwrites the values from `source` (which must hold `count` floats).
    public func setValues(_ source: [Float]) throws {
        guard source.count == count else {
            throw SwiftletError.shapeMismatch(op: "set \(name)", detail: "\(source.count) values for \(count)")
        }
        source.withUnsafeBufferPointer { value.update(from: $0.baseAddress!, count: count) }
    }
}

/// Token ids fed to the graph (inputs or targets), allocated once and refilled per batch.
public final class TokenBuffer: @unchecked Sendable {  // mutable; used by one training task at a time
    /// Number of ids.
    public let count: Int
    /// The ids.
    public let ids: UnsafeMutablePointer<Int32>

    public init(count: Int) throws {
        guard count > 0, count <= 1 << 32 else { throw SwiftletError.invalidArgument("token buffer of \(count) ids") }
        self.count = count
        ids = .allocate(capacity: count)
        ids.initialize(repeating: 0, count: count)
    }

    deinit { ids.deallocate() }

    /// Copies `source` (exactly `count` ids).
    public func set(_ source: [Int32]) throws {
        guard source.count == count else {
            throw SwiftletError.shapeMismatch(op: "tokens", detail: "\(source.count) ids for a buffer of \(count)")
        }
        source.withUnsafeBufferPointer { ids.update(from: $0.baseAddress!, count: count) }
    }
}
