import Foundation
import Synchronization
import SwiftletTensor

/// The memory that KV caches (and their attention buffers) may hold together: every cache a
/// ``Transformer`` makes reserves its bytes here before it is allocated and gives them back when
/// it is freed, so a model's own cache, each session of a model, each sequence of a batched run
/// and every model of the process count against one limit.
///
/// The default limit is ``defaultFraction`` of physical memory minus the weights of the models
/// loaded with this budget: the weights are read in place from the mapped file and stay resident
/// beside the caches, and the last quarter is left to the system, other processes and the
/// activation buffers. `SWIFTLET_KV_CACHE_LIMIT` (bytes, or with a `K`, `M`, `G` or `T` suffix,
/// binary) replaces it for ``shared``; ``limitBytes`` replaces it in code.
///
/// Going past the limit throws ``SwiftletError/kvCacheLimit(what:needed:held:limit:)`` before
/// anything is allocated. Sizes are computed with overflow checks; the bytes themselves come
/// from zero pages the system maps lazily, so a cache only becomes resident as positions fill.
public final class KVCacheBudget: Sendable {
    /// The budget every transformer uses unless given another.
    public static let shared = KVCacheBudget(environment: ProcessInfo.processInfo.environment["SWIFTLET_KV_CACHE_LIMIT"])

    /// Share of physical memory that caches and weights may hold together by default.
    public static let defaultFraction = 0.75

    private struct Ledger {
        /// Set: the limit in bytes. Nil: the default rule.
        var explicitLimit: Int?
        /// Why the environment's limit could not be read, reported at the first reservation.
        var invalidSetting: String?
        var held = 0
        /// Bytes and holders of each set of weights (transformers may share one).
        var weights: [ObjectIdentifier: (bytes: Int, holders: Int)] = [:]
        var weightBytes: Int { weights.values.reduce(0) { $0 + $1.bytes } }
    }
    private let ledger: Mutex<Ledger>

    /// A budget of `limitBytes` bytes of KV caches; nil uses the default rule.
    public init(limitBytes: Int? = nil) {
        ledger = Mutex(Ledger(explicitLimit: limitBytes.map { max($0, 0) }))
    }

    private init(environment value: String?) {
        var ledger = Ledger()
        if let value, !value.trimmingCharacters(in: .whitespaces).isEmpty {
            if let bytes = Self.parseSize(value) {
                ledger.explicitLimit = bytes
            } else {
                ledger.invalidSetting = "SWIFTLET_KV_CACHE_LIMIT=\(value) is not a size (bytes, or a number with K, M, G or T)"
            }
        }
        self.ledger = Mutex(ledger)
    }

    /// The bytes caches may hold together now: the explicit limit, or the default rule for the
    /// weights loaded now.
    public var limitBytes: Int { ledger.withLock { Self.limit(of: $0) } }

    /// Replaces the limit by `bytes`; nil restores the default rule.
    public func setLimit(bytes: Int?) {
        ledger.withLock { $0.explicitLimit = bytes.map { max($0, 0) }; $0.invalidSetting = nil }
    }

    /// Whether ``limitBytes`` follows the default rule.
    public var usesDefaultLimit: Bool { ledger.withLock { $0.explicitLimit == nil } }

    /// Bytes reserved by the caches alive now.
    public var heldBytes: Int { ledger.withLock { $0.held } }

    private static func limit(of ledger: Ledger) -> Int {
        if let limit = ledger.explicitLimit { return limit }
        let share = Double(ProcessInfo.processInfo.physicalMemory) * defaultFraction
        return max(Int(min(share, Double(Int.max / 2))) - ledger.weightBytes, 0)
    }

    /// Reserves `bytes` (nil: a size that overflowed) for `what`, or throws
    /// ``SwiftletError/kvCacheLimit(what:needed:held:limit:)`` when the caches held already and
    /// this one would exceed the limit. The bytes are given back when the reservation is freed.
    public func reserve(_ bytes: Int?, for what: @autoclosure () -> String) throws -> Reservation {
        let refusal: SwiftletError? = ledger.withLock { ledger in
            if let invalid = ledger.invalidSetting { return .invalidArgument(invalid) }
            let limit = Self.limit(of: ledger)
            guard let bytes, bytes >= 0, bytes <= limit - min(ledger.held, limit) else {
                return .kvCacheLimit(what: what(), needed: bytes ?? .max, held: ledger.held, limit: limit)
            }
            ledger.held += bytes
            return nil
        }
        if let refusal { throw refusal }
        return Reservation(budget: self, bytes: bytes!, weights: nil)
    }

    /// Whether `bytes` more would fit now, without reserving them (for a message that names a
    /// whole request before its parts are made one by one).
    public func check(_ bytes: Int?, for what: @autoclosure () -> String) throws {
        _ = try reserve(bytes, for: what())
    }

    /// Counts weights that stay resident while the reservation lives (once however many
    /// transformers share them): they lower the default limit.
    func holdWeights(_ weights: AnyObject, bytes: Int) -> Reservation {
        let key = ObjectIdentifier(weights)
        ledger.withLock { $0.weights[key, default: (bytes, 0)].holders += 1 }
        return Reservation(budget: self, bytes: bytes, weights: key)
    }

    /// Bytes of a budget held until this object is freed.
    public final class Reservation: Sendable {
        let budget: KVCacheBudget
        /// The bytes held.
        public let bytes: Int
        /// The weights held, for a reservation of weights.
        let weights: ObjectIdentifier?

        init(budget: KVCacheBudget, bytes: Int, weights: ObjectIdentifier?) {
            self.budget = budget; self.bytes = bytes; self.weights = weights
        }

        deinit {
            let (bytes, weights) = (bytes, weights)
            budget.ledger.withLock { ledger in
                guard let key = weights else { return ledger.held -= bytes }
                ledger.weights[key]?.holders -= 1
                if ledger.weights[key]?.holders == 0 { ledger.weights[key] = nil }
            }
        }
    }

    /// Bytes from `text`: a whole number, optionally followed by `K`, `M`, `G` or `T` (powers of
    /// 1024, an optional `i`/`B` after it: `64M`, `64MiB`, `2GB`); nil when it is not one or
    /// overflows.
    public static func parseSize(_ text: String) -> Int? {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces).uppercased())
        for unit in ["IB", "B"] where digits.hasSuffix(unit) && digits.count > unit.count {
            digits = digits.dropLast(unit.count)
            break
        }
        var shift = 0
        if let last = digits.last, let index = "KMGT".firstIndex(of: last) {
            shift = 10 * ("KMGT".distance(from: "KMGT".startIndex, to: index) + 1)
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Int(digits), value >= 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : bytes
    }
}
