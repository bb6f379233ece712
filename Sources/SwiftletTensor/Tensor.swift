import Foundation

/// Element type of a ``Tensor``.
public enum DType: String, Sendable, CaseIterable {
    case f32, f16, bf16

    /// Bytes per element.
    public var byteSize: Int { self == .f32 ? 4 : 2 }
}

/// The bytes behind one or more tensors: owned (allocated and freed by Swiftlet) or borrowed
/// (memory-mapped file, caller's buffer), in which case `owner` keeps the memory alive.
public final class TensorStorage: @unchecked Sendable {
    /// Start of the bytes.
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    /// Whatever keeps borrowed memory alive (e.g. the mapped file object); nil for owned storage.
    public let owner: AnyObject?
    private let owned: Bool

    /// Allocates `byteCount` zeroed bytes, 64-byte aligned.
    public init(zeroedByteCount byteCount: Int) {
        self.byteCount = byteCount
        base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        owner = nil
        owned = true
    }

    /// Wraps memory Swiftlet does not own (zero copy). The memory must stay valid while `owner` lives;
    /// writing through a tensor over read-only mapped memory is the caller's responsibility to avoid.
    public init(borrowing base: UnsafeRawPointer, byteCount: Int, owner: AnyObject?) {
        self.base = UnsafeMutableRawPointer(mutating: base)
        self.byteCount = byteCount
        self.owner = owner
        owned = false
    }

    deinit { if owned { base.deallocate() } }
}

/// An n-dimensional array: shape, strides (in elements), element type and storage.
///
/// Views (`reshaped`, `sliced`, `transposed`, `permuted`) share storage and copy nothing.
/// Operations (see `TensorOps.swift`) compute in Float and return new contiguous F32 tensors;
/// F16/BF16 inputs are converted on the way in. Every shape error throws `SwiftletError`.
/// `Tensor` is for model-building and tests; decode-time hot loops use the raw-pointer kernels
/// (``VectorOps``, ``RoPE``, ``BLAS``) on preallocated buffers.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let dtype: DType
    public let shape: [Int]
    /// Element strides per dimension (may be 0 for broadcast views, never negative).
    public let strides: [Int]
    /// Offset of element [0, 0, …] from `storage.base`, in elements.
    public let offset: Int
    public let storage: TensorStorage

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var description: String { "Tensor<\(dtype.rawValue)>\(shape)" }

    /// Row-major strides of `shape`.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = s
            s *= shape[d]
        }
        return strides
    }

    /// True when the elements are laid out row-major without gaps.
    public var isContiguous: Bool {
        var expected = 1
        for d in stride(from: rank - 1, through: 0, by: -1) where shape[d] != 1 {
            if strides[d] != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    static func validate(_ shape: [Int], op: String) throws -> Int {
        var total = 1
        for d in shape {
            guard d >= 0 else { throw SwiftletError.invalidArgument("\(op): negative dimension in shape \(shape)") }
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SwiftletError.invalidArgument("\(op): shape \(shape) overflows") }
            total = product
        }
        return total
    }

    init(dtype: DType, shape: [Int], strides: [Int], offset: Int, storage: TensorStorage) {
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.storage = storage
    }

    /// A zero-filled contiguous tensor.
    public init(zeros shape: [Int], dtype: DType = .f32) throws {
        let count = try Self.validate(shape, op: "Tensor(zeros:)")
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        // A hostile shape must throw, not crash in the allocator.
        guard !overflow, UInt64(bytes) <= ProcessInfo.processInfo.physicalMemory else {
            throw SwiftletError.invalidArgument("Tensor(zeros:): \(shape) \(dtype.rawValue) does not fit in memory")
        }
        self.init(dtype: dtype, shape: shape, strides: Self.contiguousStrides(shape), offset: 0,
                  storage: TensorStorage(zeroedByteCount: bytes))
    }

    /// A contiguous tensor holding `values` (row-major), stored as `dtype` (rounded for F16/BF16).
    public init(shape: [Int], values: [Float], dtype: DType = .f32) throws {
        let count = try Self.validate(shape, op: "Tensor(shape:values:)")
        guard count == values.count else {
            throw SwiftletError.shapeMismatch(op: "Tensor(shape:values:)",
                                              detail: "shape \(shape) holds \(count) elements, got \(values.count) values")
        }
        try self.init(zeros: shape, dtype: dtype)
        values.withUnsafeBufferPointer { src in
            guard let p = src.baseAddress else { return }
            switch dtype {
            case .f32: storage.base.assumingMemoryBound(to: Float.self).update(from: p, count: count)
            case .f16: HalfPrecision.convertFloatToF16(p, storage.base.assumingMemoryBound(to: UInt16.self), count: count)
            case .bf16: HalfPrecision.convertFloatToBF16(p, storage.base.assumingMemoryBound(to: UInt16.self), count: count)
            }
        }
    }

    /// A zero-copy tensor over borrowed memory (e.g. a memory-mapped weight), contiguous row-major.
    /// - Throws: `SwiftletError.invalidArgument` when `byteCount` is too small for the shape.
    public init(borrowing pointer: UnsafeRawPointer, byteCount: Int, dtype: DType, shape: [Int], owner: AnyObject?) throws {
        let count = try Self.validate(shape, op: "Tensor(borrowing:)")
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, needed <= byteCount else {
            throw SwiftletError.invalidArgument("Tensor(borrowing:): \(shape) \(dtype.rawValue) needs \(needed) bytes, have \(byteCount)")
        }
        self.init(dtype: dtype, shape: shape, strides: Self.contiguousStrides(shape), offset: 0,
                  storage: TensorStorage(borrowing: pointer, byteCount: byteCount, owner: owner))
    }

    // MARK: - element access

    /// The element at a multi-index, as Float.
    public func value(at index: [Int]) throws -> Float {
        guard index.count == rank else {
            throw SwiftletError.shapeMismatch(op: "value(at:)", detail: "index \(index) for shape \(shape)")
        }
        var element = offset
        for d in 0..<rank {
            guard index[d] >= 0, index[d] < shape[d] else {
                throw SwiftletError.invalidArgument("value(at:): index \(index) out of bounds for shape \(shape)")
            }
            element += index[d] * strides[d]
        }
        return load(element)
    }

    @inline(__always)
    func load(_ element: Int) -> Float {
        switch dtype {
        case .f32: return storage.base.assumingMemoryBound(to: Float.self)[element]
        case .f16: return HalfPrecision.float(fromF16: storage.base.assumingMemoryBound(to: UInt16.self)[element])
        case .bf16: return HalfPrecision.float(fromBF16: storage.base.assumingMemoryBound(to: UInt16.self)[element])
        }
    }

    /// All elements in row-major order, as Float.
    public func scalars() -> [Float] {
        let t = contiguousF32()
        return Array(UnsafeBufferPointer(start: t.floatPointer, count: t.count))
    }

    /// Pointer to element [0, …] of an F32 tensor (nil for other dtypes).
    public var floatPointer: UnsafeMutablePointer<Float>? {
        dtype == .f32 ? storage.base.assumingMemoryBound(to: Float.self) + offset : nil
    }

    /// Runs `body` over a contiguous F32 buffer of the elements (zero copy when already contiguous F32).
    public func withFloatBuffer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let t = contiguousF32()
        return try body(UnsafeBufferPointer(start: t.floatPointer, count: t.count))
    }

    // MARK: - conversion

    /// The same tensor as contiguous F32 (self when it already is).
    public func contiguousF32() -> Tensor {
        if dtype == .f32 && isContiguous { return self }
        let out = try! Tensor(zeros: shape)  // shape already validated
        let dst = out.floatPointer!
        var i = 0
        forEachElementOffset { element in
            dst[i] = load(element)
            i += 1
        }
        return out
    }

    /// A contiguous copy with elements stored as `dtype` (F16/BF16 round to nearest even).
    public func converted(to dtype: DType) -> Tensor {
        if dtype == self.dtype && isContiguous { return self }
        let source = contiguousF32()
        if dtype == .f32 { return source }
        let out = try! Tensor(zeros: shape, dtype: dtype)
        let dst = out.storage.base.assumingMemoryBound(to: UInt16.self)
        if dtype == .f16 {
            HalfPrecision.convertFloatToF16(source.floatPointer!, dst, count: count)
        } else {
            HalfPrecision.convertFloatToBF16(source.floatPointer!, dst, count: count)
        }
        return out
    }

    /// Calls `body` with the element offset of every element in row-major order.
    @inline(__always)
    func forEachElementOffset(_ body: (Int) -> Void) {
        let n = count
        guard n > 0 else { return }
        if rank == 0 {
            body(offset)
            return
        }
        var index = [Int](repeating: 0, count: rank)
        var element = offset
        let last = rank - 1
        while true {
            let inner = shape[last], innerStride = strides[last]
            for j in 0..<inner { body(element + j * innerStride) }
            // Advance the outer dimensions like an odometer.
            var d = last - 1
            while d >= 0 {
                index[d] += 1
                element += strides[d]
                if index[d] < shape[d] { break }
                element -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    // MARK: - zero-copy views

    /// Same elements, new shape (one dimension may be −1 to infer it). Needs a contiguous tensor.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1 else {
            throw SwiftletError.invalidArgument("reshape: more than one −1 in \(newShape)")
        }
        if let d = inferred.first {
            var known = newShape
            known[d] = 1
            let knownCount = try Self.validate(known, op: "reshape")
            guard knownCount > 0, count % knownCount == 0 else {
                throw SwiftletError.shapeMismatch(op: "reshape", detail: "cannot reshape \(shape) to \(newShape)")
            }
            resolved[d] = count / knownCount
        }
        let newCount = try Self.validate(resolved, op: "reshape")
        guard newCount == count else {
            throw SwiftletError.shapeMismatch(op: "reshape", detail: "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        guard isContiguous else {
            throw SwiftletError.invalidArgument("reshape: tensor \(shape) with strides \(strides) is not contiguous; call contiguousF32() first")
        }
        return Tensor(dtype: dtype, shape: resolved, strides: Self.contiguousStrides(resolved), offset: offset, storage: storage)
    }

    /// Elements `range` along dimension `dim` (zero copy).
    public func sliced(dim: Int, _ range: Range<Int>) throws -> Tensor {
        guard dim >= 0, dim < rank else {
            throw SwiftletError.invalidArgument("slice: dimension \(dim) of a rank-\(rank) tensor")
        }
        guard range.lowerBound >= 0, range.upperBound <= shape[dim] else {
            throw SwiftletError.invalidArgument("slice: range \(range) outside 0..<\(shape[dim]) of dimension \(dim)")
        }
        var newShape = shape
        newShape[dim] = range.count
        return Tensor(dtype: dtype, shape: newShape, strides: strides, offset: offset + range.lowerBound * strides[dim],
                      storage: storage)
    }

    /// Swaps two dimensions (zero copy).
    public func transposed(_ a: Int, _ b: Int) throws -> Tensor {
        guard a >= 0, a < rank, b >= 0, b < rank else {
            throw SwiftletError.invalidArgument("transpose: dimensions \(a), \(b) of a rank-\(rank) tensor")
        }
        var order = Array(0..<rank)
        order.swapAt(a, b)
        return try permuted(order)
    }

    /// Reorders dimensions: result dimension i is source dimension `order[i]` (zero copy).
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.count == rank, Set(order) == Set(0..<rank) else {
            throw SwiftletError.invalidArgument("permute: \(order) is not a permutation of 0..<\(rank)")
        }
        return Tensor(dtype: dtype, shape: order.map { shape[$0] }, strides: order.map { strides[$0] }, offset: offset,
                      storage: storage)
    }
}
