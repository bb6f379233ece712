import Foundation
import SwiftletTensor

/// The contents of an importance-matrix file as llama-imatrix writes and llama-quantize reads it:
/// per weight tensor, the sum over the text of each input column's squared activation, and how
/// many activation rows were summed.
///
/// Two layouts are read and written:
/// - **GGUF** (llama-imatrix's default): `general.type = "imatrix"`, `imatrix.datasets`,
///   `imatrix.chunk_count`, `imatrix.chunk_size`, and per tensor two F32 tensors,
///   `NAME.in_sum2` (`[columns, matrices]`, the raw sums) and `NAME.counts` (`[1, matrices]`).
/// - **Legacy `.dat`**: entry count, then per entry the name, the number of chunks and the
///   *mean* squared activations scaled by that number of chunks; then the chunk count and the
///   dataset name. Reading it gives sums and counts in that scaled form (as llama.cpp's loader does).
///
/// Entries are kept sorted by name, the order llama-imatrix writes them in.
public struct ImportanceMatrixFile: Sendable, Equatable {
    /// One weight tensor's statistics. `counts` has one element per matrix (experts of a
    /// mixture-of-experts tensor); `sums` is `counts.count` rows of the tensor's column count.
    public struct Entry: Sendable, Equatable {
        public var sums: [Float]
        public var counts: [Int64]

        public init(sums: [Float], counts: [Int64]) {
            self.sums = sums; self.counts = counts
        }

        /// Input columns of the tensor.
        public var columns: Int { counts.isEmpty ? 0 : sums.count / counts.count }

        /// Mean squared activation of each column (sum / count; 1 where a matrix saw no rows,
        /// as llama-quantize and the legacy writer treat missing data), `counts.count` rows.
        public var meanSquares: [Float] {
            let n = columns
            var out = [Float](repeating: 1, count: sums.count)
            for m in 0..<counts.count where counts[m] > 0 {
                let c = Float(counts[m])
                for j in 0..<n { out[m * n + j] = sums[m * n + j] / c }
            }
            return out
        }
    }

    /// Statistics by weight tensor name (`blk.0.attn_q.weight`).
    public var entries: [String: Entry]
    /// The text files the statistics were collected on.
    public var datasets: [String]
    /// Chunks of `chunkSize` tokens evaluated.
    public var chunkCount: Int
    /// Tokens per chunk; 0 when unknown (legacy files).
    public var chunkSize: Int
    /// Read from a legacy `.dat` file (sums are means × chunk count, counts the chunk count).
    public var isLegacy: Bool

    public init(entries: [String: Entry] = [:], datasets: [String] = [], chunkCount: Int = 0, chunkSize: Int = 0,
                isLegacy: Bool = false) {
        self.entries = entries; self.datasets = datasets
        self.chunkCount = chunkCount; self.chunkSize = chunkSize; self.isLegacy = isLegacy
    }

    /// The two layouts.
    public enum Format: String, Sendable, CaseIterable {
        case gguf, dat
    }

    // MARK: - Reading

    /// Reads a GGUF or legacy importance-matrix file (the layout is recognized by its magic).
    ///
    /// - Throws: ``SwiftletError/io(path:reason:)`` when it cannot be read; `malformedFile` /
    ///   `truncatedFile` when its contents are not an importance matrix.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw SwiftletError.io(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        if data.count >= 4, data.prefix(4).elementsEqual("GGUF".utf8) {
            try self.init(gguf: GGUFFile(url: url))
        } else {
            try self.init(legacy: data, path: url.path)
        }
    }

    /// The statistics held by a GGUF importance-matrix file.
    public init(gguf file: GGUFFile) throws {
        let path = file.url?.path ?? "<memory>"
        self.init()
        datasets = try file.stringArrayIfPresent(Self.datasetsKey) ?? []
        chunkCount = try file.intIfPresent(Self.chunkCountKey) ?? 0
        chunkSize = try file.intIfPresent(Self.chunkSizeKey) ?? 0
        var sums: [String: GGUFTensorInfo] = [:], counts: [String: GGUFTensorInfo] = [:]
        for info in file.tensors {
            if info.name.hasSuffix(".in_sum2") {
                sums[String(info.name.dropLast(8))] = info
            } else if info.name.hasSuffix(".counts") {
                counts[String(info.name.dropLast(7))] = info
            }
        }
        guard !sums.isEmpty || !counts.isEmpty else {
            throw SwiftletError.malformedFile(path: path, reason: "no importance-matrix tensors (NAME.in_sum2 / NAME.counts)")
        }
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
            let sumValues = Self.floats(file.data(for: s), count: s.elementCount)
            let countValues = Self.floats(file.data(for: c), count: c.elementCount)
            guard countValues.allSatisfy({ $0.isFinite && $0 >= 0 && $0 < 9.0e18 }) else {
                throw SwiftletError.malformedFile(path: path, reason: "\(name): counts must be finite and non-negative")
            }
            entries[name] = Entry(sums: sumValues, counts: countValues.map { Int64($0.rounded(.toNearestOrAwayFromZero)) })
        }
    }

    private static func floats(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, n in
            UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(count * 4)))
            n = count
        }
    }

    /// Parses a legacy `.dat` file.
    public init(legacy data: Data, path: String) throws {
        self.init(isLegacy: true)
        var offset = 0
        func int32(_ what: String) throws -> Int32 {
            guard offset + 4 <= data.count else { throw SwiftletError.truncatedFile(path: path, what: what) }
            defer { offset += 4 }
            return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int32.self) }
        }
        func bytes(_ n: Int, _ what: String) throws -> Data {
            guard n >= 0, n <= data.count - offset else { throw SwiftletError.truncatedFile(path: path, what: what) }
            defer { offset += n }
            return data.subdata(in: data.startIndex + offset ..< data.startIndex + offset + n)
        }
        let entryCount = try int32("entry count")
        guard entryCount >= 1 else { throw SwiftletError.malformedFile(path: path, reason: "no entries (count \(entryCount))") }
        for i in 0..<Int(entryCount) {
            let nameLength = try int32("name length of entry \(i + 1)")
            guard nameLength > 0, nameLength <= 4096 else {
                throw SwiftletError.malformedFile(path: path, reason: "entry \(i + 1): name length \(nameLength)")
            }
            guard let name = String(data: try bytes(Int(nameLength), "name of entry \(i + 1)"), encoding: .utf8) else {
                throw SwiftletError.malformedFile(path: path, reason: "entry \(i + 1): name is not UTF-8")
            }
            let calls = try int32("chunk count of \(name)")
            let valueCount = try int32("value count of \(name)")
            guard valueCount >= 1 else { throw SwiftletError.malformedFile(path: path, reason: "\(name): \(valueCount) values") }
            let raw = try bytes(Int(valueCount) * 4, "values of \(name)")
            let values = raw.withUnsafeBytes { Self.floats($0, count: Int(valueCount)) }
            entries[name] = Entry(sums: values, counts: [Int64(calls)])
        }
        // Chunk count and dataset name are optional trailers.
        if offset < data.count {
            chunkCount = Int(try int32("chunk count"))
            if offset + 4 <= data.count {
                let length = try int32("dataset name length")
                if length > 0, let d = try? bytes(Int(length), "dataset name"), let s = String(data: d, encoding: .utf8) {
                    datasets.append(s)
                }
            }
        }
    }

    // MARK: - Writing

    /// Metadata keys of the GGUF layout.
    public static let datasetsKey = "imatrix.datasets"
    public static let chunkCountKey = "imatrix.chunk_count"
    public static let chunkSizeKey = "imatrix.chunk_size"

    /// The GGUF layout llama-imatrix writes, tensors in name order.
    public func ggufWriter() throws -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.type", .string("imatrix"))
        w.set(Self.datasetsKey, .array(.string(datasets)))
        w.set(Self.chunkCountKey, .uint32(UInt32(clamping: chunkCount)))
        w.set(Self.chunkSizeKey, .uint32(UInt32(clamping: chunkSize)))
        for name in entries.keys.sorted() {
            let e = entries[name]!
            guard !e.counts.isEmpty, !e.sums.isEmpty, e.sums.count % e.counts.count == 0 else { continue }
            // ggml drops trailing dimensions of 1 when it writes a tensor's shape.
            let matrices = e.counts.count
            try w.addTensor(name: name + ".in_sum2", shape: matrices == 1 ? [e.columns] : [e.columns, matrices], float32: e.sums)
            try w.addTensor(name: name + ".counts", shape: matrices == 1 ? [1] : [1, matrices], float32: e.counts.map { Float($0) })
        }
        return w
    }

    /// The legacy `.dat` layout: per entry the mean squares × the number of chunks it covers
    /// (`chunkSize` must be known), then the chunk count and the first dataset name.
    public func legacyData() throws -> Data {
        guard chunkSize > 0 else { throw SwiftletError.invalidArgument("the legacy imatrix format needs a chunk size") }
        var out = Data()
        func append<T>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        let stored = entries.keys.sorted().filter { name in
            let e = entries[name]!
            return !e.counts.isEmpty && e.counts.contains { $0 != 0 }
        }
        append(Int32(stored.count))
        for name in stored {
            let e = entries[name]!
            let utf8 = Array(name.utf8)
            append(Int32(utf8.count)); out.append(contentsOf: utf8)
            // Ceiling division, so a tensor seen in part of a chunk does not get zero.
            let calls = Int32(clamping: (e.counts.max()! + Int64(chunkSize) - 1) / Int64(chunkSize))
            append(calls)
            append(Int32(e.sums.count))
            let perMatrix = e.sums.count / e.counts.count
            var values = [Float](repeating: 0, count: e.sums.count)
            for i in 0..<e.sums.count {
                var count = Float(e.counts[i / perMatrix]), value = e.sums[i]
                if count == 0 { value = 1; count = 1 }
                values[i] = (value / count) * Float(calls)
            }
            values.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        append(Int32(clamping: chunkCount))
        let dataset = Array((datasets.last ?? "").utf8)
        append(Int32(dataset.count)); out.append(contentsOf: dataset)
        return out
    }

    /// Writes the file in `format`, through a temporary file renamed into place.
    public func write(to url: URL, format: Format = .gguf) throws {
        switch format {
        case .gguf:
            try ggufWriter().write(to: url)
        case .dat:
            let data = try legacyData()
            let temporary = url.deletingLastPathComponent()
                .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
            do {
                try data.write(to: temporary)
                if FileManager.default.fileExists(atPath: url.path) {
                    _ = try FileManager.default.replaceItemAt(url, withItemAt: temporary)
                } else {
                    try FileManager.default.moveItem(at: temporary, to: url)
                }
            } catch {
                try? FileManager.default.removeItem(at: temporary)
                throw SwiftletError.io(path: url.path, reason: "cannot write: \(error.localizedDescription)")
            }
        }
    }
}

extension ImportanceMatrixFile {
    /// This matrix with `other` added, as llama-imatrix combines `--in-file` matrices: GGUF sums
    /// and counts add as they are; a legacy file's scaled means count `chunkSize` rows per chunk.
    /// The result is in the GGUF form with `chunkSize` tokens per chunk.
    ///
    /// - Throws: `invalidArgument` when a tensor's sizes differ between the two.
    public func adding(_ other: ImportanceMatrixFile, chunkSize: Int) throws -> ImportanceMatrixFile {
        guard chunkSize > 0 else { throw SwiftletError.invalidArgument("chunk size \(chunkSize) must be positive") }
        var result = self
        result.isLegacy = false
        result.chunkSize = chunkSize
        for (name, entry) in other.entries {
            var e = result.entries[name] ?? Entry(sums: [], counts: [])
            if other.isLegacy {
                if e.sums.isEmpty { e.sums = [Float](repeating: 0, count: entry.sums.count); e.counts = [0] }
                guard e.sums.count == entry.sums.count else {
                    throw SwiftletError.invalidArgument("mismatched sums size for \(name): \(entry.sums.count) != \(e.sums.count)")
                }
                for j in e.sums.indices { e.sums[j] += entry.sums[j] * Float(chunkSize) }
                for j in e.counts.indices { e.counts[j] += (entry.counts.first ?? 0) * Int64(chunkSize) }
            } else {
                if e.sums.isEmpty { e.sums = [Float](repeating: 0, count: entry.sums.count) }
                guard e.sums.count == entry.sums.count else {
                    throw SwiftletError.invalidArgument("mismatched sums size for \(name): \(entry.sums.count) != \(e.sums.count)")
                }
                if e.counts.isEmpty {
                    e.counts = [Int64](repeating: 0, count: entry.counts.count)
                } else if e.counts.count == 1, entry.counts.count > 1 {
                    e.counts = [Int64](repeating: e.counts[0], count: entry.counts.count)
                }
                guard e.counts.count == entry.counts.count else {
                    throw SwiftletError.invalidArgument("mismatched counts size for \(name): \(entry.counts.count) != \(e.counts.count)")
                }
                for j in e.sums.indices { e.sums[j] += entry.sums[j] }
                for j in e.counts.indices { e.counts[j] += entry.counts[j] }
            }
            result.entries[name] = e
        }
        result.datasets += other.datasets
        let maxCount = result.entries.values.lazy.flatMap(\.counts).max() ?? 0
        result.chunkCount = Int(maxCount / Int64(chunkSize))
        return result
    }
}
