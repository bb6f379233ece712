import SwiftletCore

/// A bounds-checked little-endian cursor over a file's bytes. Every read checks the remaining
/// length first, so a hostile file can only produce a ``SwiftletError``, never a read outside
/// the buffer; counts are checked against the bytes left before anything is allocated.
struct GGUFByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var offset: Int = 0

    /// Deepest nesting of arrays accepted; deeper files are rejected rather than recursed into.
    static let maxArrayNesting = 16

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - offset }

    /// Throws unless `count` more bytes are available.
    @inline(__always)
    func require(_ count: Int, _ what: @autoclosure () -> String) throws {
        guard count >= 0, count <= remaining else {
            throw SwiftletError.truncatedFile(path: path, what: what())
        }
    }

    @inline(__always)
    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try require(MemoryLayout<T>.size, what())
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    /// A 64-bit count or length, which must fit an `Int` and, at `minimumElementSize` bytes
    /// each, must fit the bytes left in the file.
    mutating func readCount(minimumElementSize: Int, _ what: @autoclosure () -> String) throws -> Int {
        let raw = try read(UInt64.self, what())
        guard raw <= UInt64(Int.max) else {
            throw SwiftletError.malformedFile(path: path, reason: "\(what()): count \(raw) is absurd")
        }
        let count = Int(raw)
        let (bytesNeeded, overflow) = count.multipliedReportingOverflow(by: max(minimumElementSize, 1))
        guard !overflow, bytesNeeded <= remaining else {
            throw SwiftletError.truncatedFile(path: path, what: "\(what()) (declares \(count) entries, \(remaining) bytes left)")
        }
        return count
    }

    /// A length-prefixed string. Invalid UTF-8 is repaired (U+FFFD) unless `strict`, where it is
    /// an error (keys and tensor names must be exact to be looked up).
    mutating func readString(strict: Bool, _ what: @autoclosure () -> String) throws -> String {
        let length = try readCount(minimumElementSize: 1, what())
        let raw = UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + length])
        offset += length
        let utf8 = raw.bindMemory(to: UInt8.self)
        if strict {
            guard let s = String(validating: utf8, as: UTF8.self) else {
                throw SwiftletError.malformedFile(path: path, reason: "\(what()) is not valid UTF-8")
            }
            return s
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// `count` fixed-size little-endian values copied into a Swift array in one go.
    mutating func readArray<T>(of _: T.Type, count: Int, _ what: @autoclosure () -> String) throws -> [T] {
        let size = MemoryLayout<T>.stride
        try require(count * size, what()) // count was bounded by readCount, no overflow
        let source = UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + count * size])
        offset += count * size
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            initialized = count
        }
    }

    mutating func readValueType(_ what: @autoclosure () -> String) throws -> GGUFValueType {
        let raw = try read(UInt32.self, what())
        guard let type = GGUFValueType(rawValue: raw) else {
            throw SwiftletError.malformedFile(path: path, reason: "\(what()): unknown value type \(raw)")
        }
        return type
    }

    /// A metadata value of type `type`.
    mutating func readValue(_ type: GGUFValueType, depth: Int = 0, _ what: @autoclosure () -> String) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what()))
        case .int8: return .int8(try read(Int8.self, what()))
        case .uint16: return .uint16(try read(UInt16.self, what()))
        case .int16: return .int16(try read(Int16.self, what()))
        case .uint32: return .uint32(try read(UInt32.self, what()))
        case .int32: return .int32(try read(Int32.self, what()))
        case .uint64: return .uint64(try read(UInt64.self, what()))
        case .int64: return .int64(try read(Int64.self, what()))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what())))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what())))
        case .bool: return .bool(try readBool(what()))
        case .string: return .string(try readString(strict: false, what()))
        case .array: return .array(try readArrayValue(depth: depth + 1, what()))
        }
    }

    private mutating func readBool(_ what: @autoclosure () -> String) throws -> Bool {
        let b = try read(UInt8.self, what())
        guard b <= 1 else { throw SwiftletError.malformedFile(path: path, reason: "\(what()): bool byte \(b) is neither 0 nor 1") }
        return b == 1
    }

    /// Steps over a value of type `type` without building it: bounds checks only. Lets the
    /// reader find a truncated or absurd metadata section before creating any strings.
    mutating func skipValue(_ type: GGUFValueType, depth: Int = 0, _ what: @autoclosure () -> String) throws {
        if let size = type.fixedSize {
            try require(size, what())
            offset += size
            return
        }
        if type == .string {
            offset += try readCount(minimumElementSize: 1, what()) // bounded by readCount
            return
        }
        guard depth < Self.maxArrayNesting else {
            throw SwiftletError.malformedFile(path: path, reason: "\(what()): arrays nested deeper than \(Self.maxArrayNesting)")
        }
        let elementType = try readValueType(what())
        let count = try readCount(minimumElementSize: elementType.minimumEncodedSize, what())
        if let size = elementType.fixedSize {
            offset += count * size // readCount checked count * size <= remaining
        } else if elementType == .string {
            // Vocabularies: a tight loop over length prefixes.
            var o = offset
            let end = bytes.count
            for _ in 0 ..< count {
                guard end - o >= 8 else { offset = o; try require(8, what()); return }
                let length = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self))
                o += 8
                guard length <= UInt64(end - o) else {
                    throw SwiftletError.truncatedFile(path: path, what: "\(what()) (a string of \(length) bytes, \(end - o) left)")
                }
                o += Int(length)
            }
            offset = o
        } else {
            for _ in 0 ..< count { try skipValue(elementType, depth: depth + 1, what()) }
        }
    }

    /// An array: element type, count, elements.
    mutating func readArrayValue(depth: Int, _ what: @autoclosure () -> String) throws -> GGUFArray {
        guard depth <= Self.maxArrayNesting else {
            throw SwiftletError.malformedFile(path: path, reason: "\(what()): arrays nested deeper than \(Self.maxArrayNesting)")
        }
        let elementType = try readValueType(what())
        let count = try readCount(minimumElementSize: elementType.minimumEncodedSize, what())
        switch elementType {
        case .uint8: return .uint8(try readArray(of: UInt8.self, count: count, what()))
        case .int8: return .int8(try readArray(of: Int8.self, count: count, what()))
        case .uint16: return .uint16(try readArray(of: UInt16.self, count: count, what()).littleEndianToHost())
        case .int16: return .int16(try readArray(of: Int16.self, count: count, what()).littleEndianToHost())
        case .uint32: return .uint32(try readArray(of: UInt32.self, count: count, what()).littleEndianToHost())
        case .int32: return .int32(try readArray(of: Int32.self, count: count, what()).littleEndianToHost())
        case .uint64: return .uint64(try readArray(of: UInt64.self, count: count, what()).littleEndianToHost())
        case .int64: return .int64(try readArray(of: Int64.self, count: count, what()).littleEndianToHost())
        case .float32:
            #if _endian(little)
            return .float32(try readArray(of: Float.self, count: count, what()))
            #else
            return .float32(try readArray(of: UInt32.self, count: count, what()).littleEndianToHost().map(Float.init(bitPattern:)))
            #endif
        case .float64:
            #if _endian(little)
            return .float64(try readArray(of: Double.self, count: count, what()))
            #else
            return .float64(try readArray(of: UInt64.self, count: count, what()).littleEndianToHost().map(Double.init(bitPattern:)))
            #endif
        case .bool:
            let raw = try readArray(of: UInt8.self, count: count, what())
            if let bad = raw.first(where: { $0 > 1 }) {
                throw SwiftletError.malformedFile(path: path, reason: "\(what()): bool byte \(bad) is neither 0 nor 1")
            }
            return .bool(raw.map { $0 == 1 })
        case .string:
            var strings = [String]()
            strings.reserveCapacity(count)
            for _ in 0 ..< count { strings.append(try readString(strict: false, what())) }
            return .string(strings)
        case .array:
            var arrays = [GGUFArray]()
            arrays.reserveCapacity(count)
            for _ in 0 ..< count { arrays.append(try readArrayValue(depth: depth + 1, what())) }
            return .array(arrays)
        }
    }
}

extension Array where Element: FixedWidthInteger {
    /// Converts little-endian file values to host order; a no-op (returns self) on little-endian hosts.
    @inline(__always)
    func littleEndianToHost() -> [Element] {
        #if _endian(little)
        return self
        #else
        return map { Element(littleEndian: $0) }
        #endif
    }
}
