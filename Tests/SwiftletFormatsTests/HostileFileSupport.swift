import Foundation
import XCTest
import SwiftletFormats
import SwiftletTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes placed so that their last byte is the last readable byte before an inaccessible guard
/// page: a read past the end crashes the test process instead of silently reading neighbours.
final class GuardedBytes {
    let bytes: UnsafeRawBufferPointer
    private let region: UnsafeMutableRawPointer
    private let regionSize: Int

    init(_ source: UnsafeRawBufferPointer) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let dataPages = (source.count + page - 1) / page
        regionSize = (dataPages + 2) * page
        region = mmap(nil, regionSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        precondition(region != MAP_FAILED, "test set-up: mmap failed")
        // Guard pages before and after the data pages.
        mprotect(region, page, PROT_NONE)
        mprotect(region + (dataPages + 1) * page, page, PROT_NONE)
        let start = region + (dataPages + 1) * page - source.count
        if let base = source.baseAddress, source.count > 0 { start.copyMemory(from: base, byteCount: source.count) }
        bytes = UnsafeRawBufferPointer(start: start, count: source.count)
    }

    deinit { munmap(region, regionSize) }
}

/// Parses `bytes` (behind a guard page) and returns the error thrown, or `nil` when the file
/// parsed. Any error that is not a `SwiftletError` fails the test.
func parseError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> SwiftletError? {
    bytes.withUnsafeBytes { parseError($0, file: file, line: line) }
}

func parseError(_ bytes: UnsafeRawBufferPointer, file: StaticString = #filePath, line: UInt = #line) -> SwiftletError? {
    let guarded = GuardedBytes(bytes)
    do {
        let gguf = try GGUFFile(storage: MappedFile(unsafeBorrowing: guarded.bytes, owner: guarded))
        // A file that parses must describe tensors inside itself.
        for t in gguf.tensors {
            XCTAssertEqual(gguf.data(for: t).count, t.byteCount, file: file, line: line)
            XCTAssertLessThanOrEqual(t.offset + t.byteCount, bytes.count, file: file, line: line)
        }
        return nil
    } catch let error as SwiftletError {
        return error
    } catch {
        XCTFail("untyped error \(error)", file: file, line: line)
        return nil
    }
}

/// The kind of a `SwiftletError`, for assertions that do not care about the message.
enum ErrorKind: Equatable {
    case truncated, malformed, unsupportedType, other

    init(_ error: SwiftletError?) {
        switch error {
        case .truncatedFile?: self = .truncated
        case .malformedFile?: self = .malformed
        case .unsupportedTensorType?: self = .unsupportedType
        default: self = .other
        }
    }
}

/// A GGUF byte builder independent of `GGUFWriter`, for files no writer would produce.
struct RawGGUF {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) { raw(Array(s.utf8)) }
    /// A length-prefixed byte string (possibly not UTF-8).
    mutating func raw(_ b: [UInt8]) { u64(UInt64(b.count)); bytes.append(contentsOf: b) }

    /// Magic, version, counts.
    mutating func header(version: UInt32 = 3, tensors: UInt64, keys: UInt64) {
        bytes.append(contentsOf: Array("GGUF".utf8)); u32(version); u64(tensors); u64(keys)
    }

    /// A key with a u32 value.
    mutating func keyU32(_ key: String, _ v: UInt32) { string(key); u32(4); u32(v) }

    /// A tensor info.
    mutating func tensorInfo(_ name: [UInt8], dims: [UInt64], type: UInt32, offset: UInt64) {
        raw(name); u32(UInt32(dims.count)); dims.forEach { u64($0) }; u32(type); u64(offset)
    }

    /// Zero padding to `alignment`, then `count` data bytes.
    mutating func data(_ count: Int, alignment: Int = 32) {
        while bytes.count % alignment != 0 { bytes.append(0) }
        bytes.append(contentsOf: repeatElement(0x3C, count: count))
    }
}
