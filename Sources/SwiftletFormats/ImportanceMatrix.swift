import SwiftletCore

/// Per-tensor importance of each input column, as llama-imatrix collects it: for every weight
/// matrix, the sum over the calibration tokens of the squared activation entering each column,
/// and how many tokens were summed.
///
/// Quantizers weigh each column's rounding error by ``weights(for:)`` — `sums / count` — exactly
/// as llama-quantize does. Files in llama-imatrix's GGUF format and its legacy `.dat` format are
/// read and written by `ImportanceMatrix(contentsOf:)` / `write(to:)` in SwiftletFormats; the
/// legacy byte format alone is here (``init(legacyBytes:path:)``, ``legacyBytes()``).
public struct ImportanceMatrix: Sendable, Equatable {
    /// One weight matrix's statistics.
    public struct Entry: Sendable, Equatable {
        /// Sums of squared activations: `counts.count` matrices (experts) of `sums.count /
        /// counts.count` columns each, column fastest.
        public var sums: [Float]
        /// Tokens summed, per matrix (expert).
        public var counts: [Int]

        public init(sums: [Float], counts: [Int]) {
            self.sums = sums
            self.counts = counts
        }

        /// Columns per matrix.
        public var columns: Int { counts.isEmpty ? sums.count : sums.count / counts.count }
    }

    /// Entries by tensor name (`blk.0.attn_q.weight`, …).
    public var entries: [String: Entry]
    /// Calibration text files the statistics came from.
    public var datasets: [String]
    /// Chunks of text evaluated.
    public var chunkCount: Int
    /// Tokens per chunk (0 when unknown, as in a legacy file).
    public var chunkSize: Int
    /// Whether the statistics came from a legacy `.dat` file, whose values are already averages
    /// scaled by the call count (llama-quantize divides them by the count instead of normalizing
    /// per expert).
    public var isLegacy: Bool

    public init(entries: [String: Entry] = [:], datasets: [String] = [], chunkCount: Int = 0, chunkSize: Int = 0, isLegacy: Bool = false) {
        self.entries = entries
        self.datasets = datasets
        self.chunkCount = chunkCount
        self.chunkSize = chunkSize
        self.isLegacy = isLegacy
    }

    /// The importance weights llama-quantize hands the quantizer for tensor `name`: per matrix,
    /// `sums / count` (1 where a matrix saw no token); for a legacy file, `sums / ncall`.
    public func weights(for name: String) -> [Float]? {
        guard let e = entries[name] else { return nil }
        var w = [Float](repeating: 0, count: e.sums.count)
        if isLegacy {
            let ncall = e.counts.first ?? 0
            for i in 0..<w.count { w[i] = ncall > 0 ? e.sums[i] / Float(ncall) : e.sums[i] }
            return w
        }
        guard !e.counts.isEmpty, e.sums.count % e.counts.count == 0 else { return nil }
        let ne0 = e.sums.count / e.counts.count
        for (j, c) in e.counts.enumerated() {
            let count = Float(c)
            for i in 0..<ne0 { w[j * ne0 + i] = count > 0 ? e.sums[j * ne0 + i] / count : 1 }
        }
        return w
    }

    /// Reads llama-imatrix's legacy `.dat` layout: entry count, then per entry name, call count,
    /// value count and values (already `sums / count * ncall`), then optionally the chunk count
    /// and the dataset name.
    ///
    /// - Throws: ``SwiftletError/truncatedFile(path:what:)`` or ``SwiftletError/malformedFile(path:reason:)``.
    public init(legacyBytes bytes: UnsafeRawBufferPointer, path: String) throws {
        var reader = LegacyReader(bytes: bytes, path: path)
        let n = try reader.int32("entry count")
        guard n >= 1 else { throw SwiftletError.malformedFile(path: path, reason: "no imatrix entries") }
        var entries: [String: Entry] = [:]
        for i in 0..<n {
            let len = try reader.int32("name length of entry \(i)")
            guard len >= 0, len <= reader.remaining else { throw SwiftletError.truncatedFile(path: path, what: "name of entry \(i)") }
            let name = try reader.string(len)
            let ncall = try reader.int32("call count of \(name)")
            let nval = try reader.int32("value count of \(name)")
            guard nval >= 1 else { throw SwiftletError.malformedFile(path: path, reason: "entry \(name) has \(nval) values") }
            guard nval <= reader.remaining / 4 else { throw SwiftletError.truncatedFile(path: path, what: "values of \(name)") }
            let values = try reader.floats(nval)
            entries[name] = Entry(sums: values, counts: [ncall])
        }
        var chunkCount = 0
        var datasets: [String] = []
        if reader.remaining >= 4 {
            chunkCount = try reader.int32("chunk count")
            if reader.remaining >= 4 {
                let len = try reader.int32("dataset name length")
                if len > 0, len <= reader.remaining { datasets.append(try reader.string(len)) }
            }
        }
        self.init(entries: entries, datasets: datasets, chunkCount: chunkCount, chunkSize: 0, isLegacy: true)
    }

    /// The legacy `.dat` bytes llama-imatrix writes with `--output-format dat`: entries sorted by
    /// name, each value stored as `sums / count * ncall` with `ncall` the chunks the busiest
    /// matrix saw (a matrix without tokens stores 1s).
    public func legacyBytes() -> [UInt8] {
        var out: [UInt8] = []
        func put(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func put(_ s: String) { put(Int32(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        let stored = entries.filter { !$0.value.counts.isEmpty && $0.value.counts.contains { $0 != 0 } }
        put(Int32(stored.count))
        let chunk = Swift.max(1, chunkSize)
        for name in stored.keys.sorted() {
            let e = stored[name]!
            put(name)
            let ncall: Int
            if isLegacy { ncall = e.counts[0] } else { ncall = (e.counts.max()! + chunk - 1) / chunk }
            put(Int32(truncatingIfNeeded: ncall))
            put(Int32(e.sums.count))
            let ne0 = e.columns
            for i in 0..<e.sums.count {
                let v: Float
                if isLegacy {
                    v = e.sums[i]
                } else {
                    var count = Float(e.counts[i / ne0]), value = e.sums[i]
                    if count == 0 { value = 1; count = 1 }
                    v = (value / count) * Float(ncall)
                }
                put(Int32(bitPattern: v.bitPattern))
            }
        }
        put(Int32(truncatingIfNeeded: chunkCount))
        put(datasets.last ?? "")
        return out
    }
}

private struct LegacyReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0
    var remaining: Int { bytes.count - offset }

    mutating func int32(_ what: String) throws -> Int {
        guard remaining >= 4 else { throw SwiftletError.truncatedFile(path: path, what: what) }
        let v = Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        offset += 4
        return Int(v)
    }

    mutating func string(_ count: Int) throws -> String {
        guard count <= remaining else { throw SwiftletError.truncatedFile(path: path, what: "string") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
        offset += count
        return s
    }

    mutating func floats(_ count: Int) throws -> [Float] {
        guard count <= remaining / 4 else { throw SwiftletError.truncatedFile(path: path, what: "values") }
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count {
            out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self)))
        }
        offset += 4 * count
        return out
    }
}
