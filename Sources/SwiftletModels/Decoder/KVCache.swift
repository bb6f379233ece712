import Foundation
import SwiftletTensor
import SwiftletQuant
import CSwiftletKernels

/// Element type of the KV cache (keys or values), named as llama.cpp's `--cache-type-k/-v`.
/// The quantized types need flash attention, except as keys beside f16 values.
public enum KVCacheType: String, Sendable, CaseIterable {
    /// Full precision (not llama.cpp-exact; no flash attention).
    case f32
    /// Half the memory, and llama.cpp's default: with it Swiftlet reproduces llama.cpp's attention
    /// bit for bit, with flash attention and without. The default.
    case f16
    /// 8-bit blocks of 32 with an f16 scale (8.5 bits per value), quantized as llama.cpp's CPU
    /// backend writes them.
    case q8_0
    /// 4-bit blocks of 32 (4.5 bits per value).
    case q4_0
    /// 4-bit blocks of 32 with an f16 scale and min (5 bits per value).
    case q4_1
    /// 5-bit blocks of 32 (5.5 bits per value).
    case q5_0
    /// 5-bit blocks of 32 with an f16 scale and min (6 bits per value).
    case q5_1
    /// 4-bit non-linear levels in blocks of 32 (4.5 bits per value).
    case iq4_nl

    /// The GGML storage type.
    public var ggmlType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .iq4_nl: .iq4_nl
        }
    }

    /// Whether the type stores blocks of quantized values.
    public var isQuantized: Bool { self != .f32 && self != .f16 }

    /// Bytes of one row of `count` values (a whole number of blocks for the quantized types).
    func rowBytes(_ count: Int) -> Int { self == .f32 ? 4 * count : swiftlet_fa_row_bytes(Int32(ggmlType.rawValue), count) }

    /// The names `--cache-type-k/-v` accept, for messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Keys and values of every past position, allocated once for the whole context; positions are
/// overwritten in place, so rewinding (prompt cache reuse) is just moving the logical length back.
///
/// Layouts, chosen so attention streams each operand with unit stride (as llama.cpp stores them):
/// - keys: rows `[layer][kvHead][position]`, each `headDim` values of ``keyType``.
/// - values with flash attention: rows like the keys, of ``valueType``.
/// - values without flash attention: f32 rows; f16 transposed, `[layer][kvHead][headDim][position]`,
///   so one output dimension is a dot product over positions.
/// Each (layer, head) block holds `paddedCapacity` positions (a multiple of 64) so the kernels may
/// read whole 64-position chunks; the padding stays zero.
public final class KVCache: @unchecked Sendable {  // mutated only by the one evaluation that owns it at a time
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Positions the cache holds.
    public let capacity: Int
    /// `capacity` rounded up to a multiple of 64.
    public let paddedCapacity: Int
    /// Element type of the keys.
    public let keyType: KVCacheType
    /// Element type of the values.
    public let valueType: KVCacheType
    /// Whether the cache is laid out for flash attention (values as rows).
    public let flashAttention: Bool
    /// Whether quantized caches rotate their inputs (the `rotation` the cache was made with).
    public let rotation: Bool
    /// Rows of the Walsh–Hadamard rotation applied to queries and keys before a quantized key
    /// cache stores them (the largest power of two from 64 up that divides `headDim`), or 0.
    public let keyRotation: Int
    /// Rows of the rotation applied to values before a quantized value cache stores them, and to
    /// the attention output after (64), or 0.
    public let valueRotation: Int
    /// Bytes of one position's key (value) row of one head.
    let keyRowBytes: Int
    let valueRowBytes: Int
    let keyStorage: UnsafeMutableRawPointer
    let valueStorage: UnsafeMutableRawPointer

    /// A cache of one element type for keys and values, laid out for attention without flash
    /// attention (f32 or f16).
    public convenience init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, type: KVCacheType = .f16,
                            budget: KVCacheBudget = .shared) throws {
        try self.init(layers: layers, kvHeads: kvHeads, headDim: headDim, capacity: capacity, keyType: type, valueType: type,
                      flashAttention: false, budget: budget)
    }

    /// A cache with its own key and value types. Quantized types need `headDim` to be a multiple of
    /// 32, and flash attention except for quantized keys with f16 values; ``Transformer`` checks
    /// (``check(keyType:valueType:headDim:flashAttention:)``).
    ///
    /// - Parameter rotation: as llama.cpp, rotate queries, keys and values by a Walsh–Hadamard
    ///   matrix before a quantized cache stores them (and the attention output back), which
    ///   spreads outliers across a block before quantizing; only for head sizes divisible by 64.
    ///   The default follows llama.cpp's: on unless `LLAMA_ATTN_ROT_DISABLE` is set to a non-zero
    ///   number (``rotationDefault``).
    /// - Parameter budget: reserves the cache's bytes before they are mapped (``KVCacheBudget``);
    ///   `what` names the cache in its error.
    public convenience init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, keyType: KVCacheType, valueType: KVCacheType,
                            flashAttention: Bool, rotation: Bool = KVCache.rotationDefault, budget: KVCacheBudget = .shared,
                            for what: String = "a KV cache") throws {
        let bytes = Self.byteCount(layers: layers, kvHeads: kvHeads, headDim: headDim, capacity: capacity,
                                   keyType: keyType, valueType: valueType)
        try self.init(layers: layers, kvHeads: kvHeads, headDim: headDim, capacity: capacity, keyType: keyType,
                      valueType: valueType, flashAttention: flashAttention, rotation: rotation,
                      reservation: budget.reserve(bytes, for: "\(what) (\(capacity) positions)"))
    }

    /// A cache whose bytes `reservation` holds (checked by ``byteCount(layers:kvHeads:headDim:capacity:keyType:valueType:)``).
    init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, keyType: KVCacheType, valueType: KVCacheType,
         flashAttention: Bool, rotation: Bool, reservation: KVCacheBudget.Reservation) throws {
        guard layers >= 0, kvHeads >= 0, headDim >= 0, capacity >= 0 else {
            throw SwiftletError.invalidArgument("a KV cache of \(layers) layers, \(kvHeads) heads of \(headDim), \(capacity) positions")
        }
        self.layers = layers; self.kvHeads = kvHeads; self.headDim = headDim; self.capacity = capacity
        self.keyType = keyType; self.valueType = valueType; self.flashAttention = flashAttention
        self.rotation = rotation
        self.reservation = reservation
        var keyRows = 0
        if rotation && keyType.isQuantized && headDim % 64 == 0 {
            keyRows = 64
            while headDim % (2 * keyRows) == 0 { keyRows *= 2 }
        }
        keyRotation = keyRows
        valueRotation = rotation && valueType.isQuantized && headDim % 64 == 0 ? 64 : 0
        paddedCapacity = (capacity + 63) / 64 * 64
        keyRowBytes = max(keyType.rowBytes(headDim), 0)
        valueRowBytes = max(valueType.rowBytes(headDim), 0)
        let rows = layers * kvHeads * paddedCapacity
        // Zero pages mapped on first touch: only the positions a sequence fills become resident,
        // and the padding reads as zero, as the kernels expect.
        keyStorage = try Self.mapZeroed(rows * keyRowBytes)
        do {
            valueStorage = try Self.mapZeroed(rows * valueRowBytes)
        } catch {
            munmap(keyStorage, max(rows * keyRowBytes, 1))
            throw error
        }
    }

    deinit {
        let rows = layers * kvHeads * paddedCapacity
        munmap(keyStorage, max(rows * keyRowBytes, 1))
        munmap(valueStorage, max(rows * valueRowBytes, 1))
    }

    /// Holds the cache's bytes in its budget until the cache is freed.
    let reservation: KVCacheBudget.Reservation

    /// Bytes of keys and values of a cache of this shape (``byteCount``), or nil when the size
    /// overflows.
    public static func byteCount(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, keyType: KVCacheType,
                                 valueType: KVCacheType) -> Int? {
        guard layers >= 0, kvHeads >= 0, headDim >= 0, headDim <= Int(Int32.max), capacity >= 0, capacity <= Int.max - 63 else {
            return nil
        }
        let padded = (capacity + 63) / 64 * 64
        let rowBytes = max(keyType.rowBytes(headDim), 0).addingReportingOverflow(max(valueType.rowBytes(headDim), 0))
        let heads = layers.multipliedReportingOverflow(by: kvHeads)
        guard !rowBytes.overflow, !heads.overflow else { return nil }
        let rows = heads.partialValue.multipliedReportingOverflow(by: padded)
        guard !rows.overflow else { return nil }
        let bytes = rows.partialValue.multipliedReportingOverflow(by: rowBytes.partialValue)
        return bytes.overflow ? nil : bytes.partialValue
    }

    /// `bytes` of zeroed, writable memory (at least one page), or an error naming the size.
    private static func mapZeroed(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        #if canImport(Darwin)
        let anonymous = MAP_ANON
        #else
        let anonymous = MAP_ANONYMOUS
        #endif
        guard let p = mmap(nil, max(bytes, 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | anonymous, -1, 0), p != MAP_FAILED else {
            throw SwiftletError.io(path: "KV cache", reason: "cannot map \(bytes) bytes: \(String(cString: strerror(errno)))")
        }
        return p
    }

    /// Whether quantized caches rotate by default: llama.cpp's rule, on unless the environment sets
    /// `LLAMA_ATTN_ROT_DISABLE` to a non-zero number, so both tools can be switched alike.
    public static var rotationDefault: Bool {
        guard let value = ProcessInfo.processInfo.environment["LLAMA_ATTN_ROT_DISABLE"] else { return true }
        return (Int(value.trimmingCharacters(in: .whitespaces).prefix { $0.isNumber || $0 == "-" }) ?? 0) == 0
    }

    /// Refuses combinations llama.cpp's CPU kernels (and so Swiftlet's) do not offer: quantized
    /// types need `headDim` divisible by 32; a quantized V cache needs flash attention; without it
    /// a quantized K cache goes with an f16 V cache; flash attention needs f16 or quantized types.
    public static func check(keyType: KVCacheType, valueType: KVCacheType, headDim: Int, flashAttention: Bool) throws {
        for (name, type) in [("K", keyType), ("V", valueType)] where type.isQuantized {
            guard headDim % 32 == 0 else {
                throw SwiftletError.invalidArgument("a \(type.rawValue) \(name) cache needs a head size divisible by 32 (this model's is \(headDim))")
            }
        }
        if flashAttention {
            if keyType == .f32 || valueType == .f32 {
                throw SwiftletError.invalidArgument("flash attention needs an f16 or quantized cache, not f32")
            }
            return
        }
        if valueType.isQuantized {
            throw SwiftletError.invalidArgument("a quantized V cache (\(valueType.rawValue)) needs flash attention (-fa on)")
        }
        if keyType.isQuantized {
            guard valueType == .f16 else {
                throw SwiftletError.invalidArgument("without flash attention a quantized K cache needs an f16 V cache")
            }
            return
        }
        if keyType != valueType {
            throw SwiftletError.invalidArgument("without flash attention keys and values share one cache type")
        }
    }

    /// Element type of both keys and values when they agree, else of the keys.
    public var type: KVCacheType { keyType }

    /// Bytes held by keys and values together.
    public var byteCount: Int { layers * kvHeads * paddedCapacity * (keyRowBytes + valueRowBytes) }

    /// Whether the f16 values are stored transposed (attention without flash attention).
    var valuesTransposed: Bool { !flashAttention && valueType == .f16 }

    /// f32 keys and values (`.f32` caches).
    var keys: UnsafeMutablePointer<Float> { keyStorage.assumingMemoryBound(to: Float.self) }
    var values: UnsafeMutablePointer<Float> { valueStorage.assumingMemoryBound(to: Float.self) }
    /// f16 keys and values as raw bits (`.f16` caches).
    var keys16: UnsafeMutablePointer<UInt16> { keyStorage.assumingMemoryBound(to: UInt16.self) }
    var valuesT16: UnsafeMutablePointer<UInt16> { valueStorage.assumingMemoryBound(to: UInt16.self) }

    /// Element offset of the block of `(layer, head)` in f32 or f16 storage: position 0 of its keys
    /// and row values, and dimension 0 of its transposed f16 values.
    @inline(__always)
    func headOffset(layer: Int, head: Int) -> Int { (layer * kvHeads + head) * paddedCapacity * headDim }

    /// Position 0 of the key rows of `(layer, head)`.
    @inline(__always)
    func keyRows(layer: Int, head: Int) -> UnsafeMutableRawPointer {
        keyStorage + (layer * kvHeads + head) * paddedCapacity * keyRowBytes
    }

    /// Position 0 of the value rows (or transposed f16 block) of `(layer, head)`.
    @inline(__always)
    func valueRows(layer: Int, head: Int) -> UnsafeMutableRawPointer {
        valueStorage + (layer * kvHeads + head) * paddedCapacity * valueRowBytes
    }

    /// Stores the keys and values of `tokens` consecutive positions starting at `start`, from
    /// row-major `[tokens, kvHeads·headDim]` buffers, converted as llama.cpp's CPU backend writes
    /// its cache (f16 round to nearest even; Q8_0 with its x86 quantizer; the other block types with
    /// ggml's reference quantizers).
    func store(layer: Int, start: Int, tokens: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let rowWidth = kvHeads * headDim
        for t in 0..<tokens {
            for h in 0..<kvHeads {
                let position = start + t
                let src = t * rowWidth + h * headDim
                Self.write(k + src, count: headDim, as: keyType, into: keyRows(layer: layer, head: h) + position * keyRowBytes)
                if valuesTransposed {
                    let block = valuesT16 + headOffset(layer: layer, head: h)
                    for d in 0..<headDim { block[d * paddedCapacity + position] = HalfPrecision.f16(from: v[src + d]) }
                } else {
                    Self.write(v + src, count: headDim, as: valueType,
                               into: valueRows(layer: layer, head: h) + position * valueRowBytes)
                }
            }
        }
    }

    /// One row of `count` values in `type`.
    private static func write(_ x: UnsafePointer<Float>, count: Int, as type: KVCacheType, into row: UnsafeMutableRawPointer) {
        switch type {
        case .f32:
            row.copyMemory(from: x, byteCount: 4 * count)
        case .f16:
            let h = row.assumingMemoryBound(to: UInt16.self)
            for d in 0..<count { h[d] = HalfPrecision.f16(from: x[d]) }
        case .q8_0:
            // The CPU backend's quantize_row_q8_0 (x86: 127/max, round half to even), which is
            // the activation quantizer.
            QuantKernels.quantizeActivations(weightType: .q8_0, x, count: count, into: row)
        case .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl:
            // Sizes were checked when the cache was made (whole blocks), so this cannot throw.
            try! quantizeRowReference(type.ggmlType, src: x, count: count,
                                      into: UnsafeMutableRawBufferPointer(start: row, count: type.rowBytes(count)))
        }
    }
}
