import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SwiftletCore

// llama-imatrix's two file formats. GGUF (its default): metadata `general.type = "imatrix"`,
// `imatrix.datasets` (strings), `imatrix.chunk_count`, `imatrix.chunk_size` (u32), and per
// weight matrix two F32 tensors, `NAME.in_sum2` [columns, matrices] and `NAME.counts`
// [1, matrices], in name order. Legacy `.dat`: see `ImportanceMatrix.init(legacyBytes:path:)`.

extension ImportanceMatrix {
    /// Metadata keys of llama-imatrix's GGUF format.
    public static let datasetsKey = "imatrix.datasets"
    public static let chunkCountKey = "imatrix.chunk_count"
    public static let chunkSizeKey = "imatrix.chunk_size"

    /// Reads an importance matrix file in either of llama-imatrix's formats (GGUF when it starts
    /// with the GGUF magic, the legacy `.dat` layout otherwise), as llama-quantize loads it.
    ///
    /// - Throws: ``SwiftletError/io(path:reason:)`` when the file cannot be read;
    ///   ``SwiftletError/truncatedFile(path:what:)`` or ``SwiftletError/malformedFile(path:reason:)``
    ///   when it is not a valid importance matrix (no entries, sums without counts, non-F32
    ///   tensors, a GGUF file without llama-imatrix's metadata).
    public init(contentsOf url: URL) throws {
        let storage = try MappedFile(url: url)
        let bytes = storage.bytes
        if bytes.count >= 4, bytes.loadUnaligned(as: UInt32.self) == UInt32(littleEndian: 0x4655_4747) {
            try self.init(gguf: GGUFFile(storage: storage))
        } else {
            try self.init(legacyBytes: bytes, path: storage.displayPath)
        }
    }

    /// Reads llama-imatrix's GGUF format from a parsed file.
    public init(gguf file: GGUFFile) throws {
        let path = file.url?.path ?? "<memory>"
        var sums: [String: GGUFTensorInfo] = [:], counts: [String: GGUFTensorInfo] = [:]
        for info in file.tensors {
            if info.name.hasSuffix(".in_sum2") {
                sums[String(info.name.dropLast(8))] = info
            } else if info.name.hasSuffix(".counts") {
                counts[String(info.name.dropLast(7))] = info
            }
        }
        guard !file.tensors.isEmpty else { throw SwiftletError.malformedFile(path: path, reason: "no imatrix entries") }
        var entries: [String: Entry] = [:]
        for name in Set(sums.keys).union(counts.keys) {
            guard let s = sums[name], let c = counts[name] else {
                throw SwiftletError.malformedFile(path: path, reason: "mismatched sums and counts for \(name)")
            }
            guard s.type == .f32, c.type == .f32 else {
                throw SwiftletError.malformedFile(path: path, reason: "sums and counts for \(name) must be F32")
            }
            guard c.elementCount > 0, s.elementCount % c.elementCount == 0 else {
                throw SwiftletError.malformedFile(path: path, reason: "\(name): \(s.elementCount) sums do not split into \(c.elementCount) matrices")
            }
            let sumValues = Self.floats(file.data(for: s))
            let countValues = Self.floats(file.data(for: c)).map { v -> Int in
                guard v.isFinite, abs(v) < 9e18 else { return 0 }
                return Int(v.rounded(.toNearestOrAwayFromZero))
            }
            entries[name] = Entry(sums: sumValues, counts: countValues)
        }
        let datasets = try file.stringArrayIfPresent(Self.datasetsKey)
        let chunkCount = try file.intIfPresent(Self.chunkCountKey)
        let chunkSize = try file.intIfPresent(Self.chunkSizeKey)
        guard datasets != nil, chunkCount != nil, chunkSize != nil else {
            throw SwiftletError.malformedFile(path: path, reason: "missing imatrix metadata (\(Self.datasetsKey), \(Self.chunkCountKey), \(Self.chunkSizeKey))")
        }
        self.init(entries: entries, datasets: datasets ?? [], chunkCount: chunkCount ?? 0, chunkSize: chunkSize ?? 0, isLegacy: false)
    }

    /// The GGUF file llama-imatrix writes for these statistics (byte for byte, given the same
    /// values): entries in name order, `general.type`, datasets, chunk count and size.
    public func ggufWriter() throws -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.type", .string("imatrix"))
        w.set(Self.datasetsKey, .array(.string(datasets)))
        w.set(Self.chunkCountKey, .uint32(UInt32(truncatingIfNeeded: chunkCount)))
        w.set(Self.chunkSizeKey, .uint32(UInt32(truncatingIfNeeded: chunkSize)))
        for name in entries.keys.sorted() {
            let e = entries[name]!
            guard !e.sums.isEmpty, !e.counts.isEmpty else { continue }
            // ggml writes a shape without its trailing dimensions of 1 (`ggml_n_dims`).
            let matrices = e.counts.count
            try w.addTensor(name: name + ".in_sum2", shape: matrices == 1 ? [e.sums.count] : [e.sums.count / matrices, matrices],
                            float32: e.sums)
            try w.addTensor(name: name + ".counts", shape: matrices == 1 ? [1] : [1, matrices], float32: e.counts.map { Float($0) })
        }
        return w
    }

    /// Writes the statistics in llama-imatrix's GGUF format, or in the legacy format when
    /// `legacy` says so (by default: when `url` ends in `.dat`), through a temporary file and a rename.
    public func write(to url: URL, legacy: Bool? = nil) throws {
        if legacy ?? (url.pathExtension == "dat") {
            let bytes = legacyBytes()
            try GGUFRawFile(url: url).write(Data(bytes))
        } else {
            try ggufWriter().write(to: url)
        }
    }

    private static func floats(_ raw: UnsafeRawBufferPointer) -> [Float] {
        var out = [Float](repeating: 0, count: raw.count / 4)
        for i in 0..<out.count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        return out
    }
}

/// A whole file written through a temporary file beside it and one rename.
struct GGUFRawFile {
    let url: URL

    func write(_ data: Data) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        do {
            try data.write(to: temporary)
        } catch {
            throw SwiftletError.io(path: url.path, reason: "write failed: \(error.localizedDescription)")
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw SwiftletError.io(path: url.path, reason: "cannot replace: \(reason)")
        }
    }
}
