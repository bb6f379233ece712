import Foundation
import XCTest
import SwiftletFormats
import SwiftletTensor
import SwiftletTestSupport

/// Hostile and damaged GGUF files: each must give a typed `SwiftletError`, never a crash, and
/// never a read outside the file (the bytes sit against a guard page, see `GuardedBytes`).
final class GGUFHostileFileTests: XCTestCase {
    // MARK: truncation

    /// A small synthetic file cut at every byte offset.
    func testSyntheticFileTruncatedAtEveryOffset() throws {
        let full = [UInt8](try GGUFPythonInteropTests.sampleWriter(alignment: 64).serialized())
        let gguf = try GGUFFile(bytes: full)
        let lastDataEnd = gguf.tensors.map { $0.offset + $0.byteCount }.max()!
        for cut in 0 ..< full.count {
            let error = full.withUnsafeBytes { parseError(UnsafeRawBufferPointer(rebasing: $0[0 ..< cut])) }
            if cut < lastDataEnd {
                XCTAssertEqual(ErrorKind(error), .truncated, "cut at \(cut): \(String(describing: error))")
            } else {
                XCTAssertNil(error, "cut at \(cut) is only missing padding")
            }
        }
    }

    /// The real SmolLM2 header cut at every offset of its first 32 KiB (fixed header, all scalar
    /// metadata, the start of the vocabulary) and its last 17 KiB (the end of the merges, all 272
    /// tensor infos, which take 16,157 bytes, and the padding), and every 1009th offset between.
    /// `SWIFTLET_EXHAUSTIVE=1` cuts at every single offset up to the data section (about 1.8
    /// million parses).
    func testRealHeaderTruncatedEverywhere() throws {
        let file = try GGUFFile(url: RealModel.smollm2.url())
        nonisolated(unsafe) let header = file.storage.bytes  // read-only while the workers run
        let end = file.dataOffset + 1 // includes a cut into the first tensor's data
        let exhaustive = ProcessInfo.processInfo.environment["SWIFTLET_EXHAUSTIVE"] == "1"
        let cuts = (0 ..< end).filter { exhaustive || $0 < 32768 || $0 >= end - 17408 || $0 % 1009 == 0 }
        // The header is read in place (no guard page: the mapping continues past the cut, so a
        // stray read would go unnoticed here; the synthetic tests above cover that).
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 2) { half in
            for cut in stride(from: half, to: cuts.count, by: 2) {
                let prefix = UnsafeRawBufferPointer(rebasing: header[0 ..< cuts[cut]])
                do {
                    _ = try GGUFFile(storage: MappedFile(unsafeBorrowing: prefix))
                    failures.add("cut at \(cuts[cut]) parsed")
                } catch SwiftletError.truncatedFile {
                } catch {
                    failures.add("cut at \(cuts[cut]): \(error)")
                }
            }
        }
        XCTAssertEqual(failures.list.prefix(5), [], "\(failures.list.count) bad cuts of \(cuts.count)")
        if exhaustive { print("truncated SmolLM2 header at \(cuts.count) offsets") }
    }

    // MARK: header

    func testBadMagicVersionAndTinyFiles() {
        XCTAssertEqual(ErrorKind(parseError([])), .truncated)
        XCTAssertEqual(ErrorKind(parseError(Array("GGU".utf8))), .truncated)
        XCTAssertEqual(ErrorKind(parseError(Array("GGML\u{3}\0\0\0".utf8))), .malformed)
        for version: UInt32 in [0, 1, 4, 0x0300_0000, .max] {
            var f = RawGGUF(); f.header(version: version, tensors: 0, keys: 0)
            XCTAssertEqual(ErrorKind(parseError(f.bytes)), .malformed, "version \(version)")
        }
        var ok = RawGGUF(); ok.header(version: 2, tensors: 0, keys: 0)
        XCTAssertNil(parseError(ok.bytes))
    }

    func testAbsurdCounts() {
        for count: UInt64 in [1 << 62, 1 << 63, .max, 1_000_000] {
            var t = RawGGUF(); t.header(tensors: count, keys: 0)
            XCTAssertTrue([.truncated, .malformed].contains(ErrorKind(parseError(t.bytes))), "tensor count \(count)")
            var k = RawGGUF(); k.header(tensors: 0, keys: count)
            XCTAssertTrue([.truncated, .malformed].contains(ErrorKind(parseError(k.bytes))), "key count \(count)")
        }
    }

    func testAbsurdStringAndArrayLengths() {
        for length: UInt64 in [1 << 62, 1 << 63, .max, 100] {
            var key = RawGGUF(); key.header(tensors: 0, keys: 1); key.u64(length); key.bytes += [0x61, 0x62]
            XCTAssertTrue([.truncated, .malformed].contains(ErrorKind(parseError(key.bytes))), "key length \(length)")

            var value = RawGGUF(); value.header(tensors: 0, keys: 1); value.string("k"); value.u32(8); value.u64(length)
            XCTAssertTrue([.truncated, .malformed].contains(ErrorKind(parseError(value.bytes))), "string length \(length)")

            for elementType: UInt32 in 0 ... 12 {
                var array = RawGGUF(); array.header(tensors: 0, keys: 1); array.string("k"); array.u32(9)
                array.u32(elementType); array.u64(length); array.bytes += [UInt8](repeating: 0, count: 64)
                XCTAssertTrue([.truncated, .malformed].contains(ErrorKind(parseError(array.bytes))), "array of \(elementType) length \(length)")
            }
        }
    }

    func testUnknownValueTypesAndBadBools() {
        for type: UInt32 in [13, 255, .max] {
            var f = RawGGUF(); f.header(tensors: 0, keys: 1); f.string("k"); f.u32(type); f.u32(0)
            XCTAssertEqual(ErrorKind(parseError(f.bytes)), .malformed, "value type \(type)")
            var a = RawGGUF(); a.header(tensors: 0, keys: 1); a.string("k"); a.u32(9); a.u32(type); a.u64(1); a.u64(0)
            XCTAssertEqual(ErrorKind(parseError(a.bytes)), .malformed, "array element type \(type)")
        }
        var b = RawGGUF(); b.header(tensors: 0, keys: 1); b.string("k"); b.u32(7); b.u8(2)
        XCTAssertEqual(ErrorKind(parseError(b.bytes)), .malformed)
        var ba = RawGGUF(); ba.header(tensors: 0, keys: 1); ba.string("k"); ba.u32(9); ba.u32(7); ba.u64(2); ba.u8(1); ba.u8(7)
        XCTAssertEqual(ErrorKind(parseError(ba.bytes)), .malformed)
    }

    /// Arrays nested 10,000 deep are refused, not recursed into (no stack overflow).
    func testDeeplyNestedArrays() {
        var f = RawGGUF(); f.header(tensors: 0, keys: 1); f.string("k"); f.u32(9)
        for _ in 0 ..< 10_000 { f.u32(9); f.u64(1) }
        f.u32(4); f.u64(0)
        XCTAssertEqual(ErrorKind(parseError(f.bytes)), .malformed)
        // Sixteen levels are fine.
        var ok = RawGGUF(); ok.header(tensors: 0, keys: 1); ok.string("k"); ok.u32(9)
        for _ in 0 ..< 15 { ok.u32(9); ok.u64(1) }
        ok.u32(4); ok.u64(0)
        XCTAssertNil(parseError(ok.bytes))
    }

    func testInvalidUTF8AndDuplicates() {
        var key = RawGGUF(); key.header(tensors: 0, keys: 1); key.raw([0x6B, 0xC3, 0x28]); key.u32(4); key.u32(1)
        XCTAssertEqual(ErrorKind(parseError(key.bytes)), .malformed)

        var name = RawGGUF(); name.header(tensors: 1, keys: 0); name.tensorInfo([0xFF, 0xFE], dims: [4], type: 0, offset: 0); name.data(16)
        XCTAssertEqual(ErrorKind(parseError(name.bytes)), .malformed)

        var dupKey = RawGGUF(); dupKey.header(tensors: 0, keys: 2); dupKey.keyU32("a", 1); dupKey.keyU32("a", 2)
        XCTAssertEqual(ErrorKind(parseError(dupKey.bytes)), .malformed)

        var dupTensor = RawGGUF(); dupTensor.header(tensors: 2, keys: 0)
        dupTensor.tensorInfo(Array("t".utf8), dims: [4], type: 0, offset: 0)
        dupTensor.tensorInfo(Array("t".utf8), dims: [4], type: 0, offset: 32)
        dupTensor.data(64)
        XCTAssertEqual(ErrorKind(parseError(dupTensor.bytes)), .malformed)
    }

    // MARK: alignment

    func testBadAlignment() {
        for a: UInt32 in [0, 3, 48, 1 << 31] {
            var f = RawGGUF(); f.header(tensors: 0, keys: 1); f.keyU32("general.alignment", a)
            XCTAssertEqual(ErrorKind(parseError(f.bytes)), .malformed, "alignment \(a)")
        }
        var s = RawGGUF(); s.header(tensors: 0, keys: 1); s.string("general.alignment"); s.u32(8); s.string("32")
        XCTAssertEqual(ErrorKind(parseError(s.bytes)), .malformed)
    }

    func testMisalignedTensorData() {
        for offset: UInt64 in [1, 16, 31] {
            var f = RawGGUF(); f.header(tensors: 1, keys: 0); f.tensorInfo(Array("t".utf8), dims: [4], type: 0, offset: offset); f.data(64)
            XCTAssertEqual(ErrorKind(parseError(f.bytes)), .malformed, "offset \(offset)")
        }
        // With general.alignment 8, offset 8 is fine.
        var ok = RawGGUF(); ok.header(tensors: 1, keys: 1); ok.keyU32("general.alignment", 8)
        ok.tensorInfo(Array("t".utf8), dims: [4], type: 0, offset: 8); ok.data(24, alignment: 8)
        XCTAssertNil(parseError(ok.bytes))
    }

    // MARK: tensors

    func testTensorDataOutOfRange() {
        let cases: [(dims: [UInt64], offset: UInt64, kind: ErrorKind)] = [
            ([4], 32, .truncated), // just past the end
            ([5], 0, .truncated), // one float too many
            ([4], 1 << 40, .truncated),
            ([4], UInt64(Int.max) - 31, .malformed), // overflows when added to the data offset
            ([4], UInt64.max - 31, .malformed),
            ([1 << 40], 0, .truncated),
        ]
        for c in cases {
            var f = RawGGUF(); f.header(tensors: 1, keys: 0); f.tensorInfo(Array("t".utf8), dims: c.dims, type: 0, offset: c.offset); f.data(16)
            XCTAssertEqual(ErrorKind(parseError(f.bytes)), c.kind, "dims \(c.dims) offset \(c.offset)")
        }
    }

    func testOverflowingAndInvalidShapes() {
        let cases: [(dims: [UInt64], type: UInt32)] = [
            ([1 << 32, 1 << 32], 0), // element count overflows
            ([1 << 62, 4], 0), // byte count overflows
            ([32, 1 << 62], 2), // Q4_0 rows overflow the byte count
            ([1 << 63], 0), // dimension does not fit Int
            ([UInt64.max], 0),
            ([33], 2), // row not a whole number of Q4_0 blocks
            ([1, 1, 1, 1, 1], 0), // five dimensions
        ]
        for c in cases {
            var f = RawGGUF(); f.header(tensors: 1, keys: 0); f.tensorInfo(Array("t".utf8), dims: c.dims, type: c.type, offset: 0); f.data(64)
            XCTAssertEqual(ErrorKind(parseError(f.bytes)), .malformed, "dims \(c.dims) type \(c.type)")
        }
        var manyDims = RawGGUF(); manyDims.header(tensors: 1, keys: 0); manyDims.string("t"); manyDims.u32(.max); manyDims.data(64)
        XCTAssertEqual(ErrorKind(parseError(manyDims.bytes)), .malformed)
    }

    func testUnknownTensorTypes() {
        for type: UInt32 in [4, 5, 31, 99, .max] {
            var f = RawGGUF(); f.header(tensors: 1, keys: 0); f.tensorInfo(Array("t".utf8), dims: [32], type: type, offset: 0); f.data(256)
            let error = parseError(f.bytes)
            XCTAssertEqual(ErrorKind(error), .unsupportedType, "type \(type): \(String(describing: error))")
        }
    }

    /// Random byte edits of a valid file: typed errors or a valid parse, nothing else.
    func testRandomByteEdits() throws {
        let full = [UInt8](try GGUFPythonInteropTests.sampleWriter(alignment: nil).serialized())
        let headerEnd = try GGUFFile(bytes: full).dataOffset
        var rng = SplitMix64(seed: 7)
        for _ in 0 ..< 5000 {
            var mutated = full
            for _ in 0 ..< 1 + Int(rng.next() % 4) {
                let at = Int(rng.next() % UInt64(headerEnd))
                switch rng.next() % 3 {
                case 0: mutated[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: mutated[at] ^= 1 << (rng.next() % 8)
                default: mutated[at] = [0, 0xFF, 0x7F, 0x80][Int(rng.next() % 4)]
                }
            }
            _ = parseError(mutated)
        }
    }
}

/// Failure messages collected from concurrent work.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var list: [String] = []
    func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
}
