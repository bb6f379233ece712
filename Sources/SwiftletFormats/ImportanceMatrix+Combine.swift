import SwiftletCore

extension ImportanceMatrix {
    /// This matrix with `other` added, as llama-imatrix combines `--in-file` matrices: sums and
    /// counts of GGUF-format statistics add as they are (a single count is spread over the
    /// experts of the other side); a legacy file's scaled means count `chunkSize` rows per call.
    /// The result is in the GGUF form, `chunkSize` tokens per chunk, its chunk count the busiest
    /// matrix's rows / `chunkSize`.
    ///
    /// - Throws: ``SwiftletError/invalidArgument(_:)`` when a tensor's sizes differ between the two.
    public func adding(_ other: ImportanceMatrix, chunkSize: Int) throws -> ImportanceMatrix {
        guard chunkSize > 0 else { throw SwiftletError.invalidArgument("chunk size \(chunkSize) must be positive") }
        var result = self
        result.isLegacy = false
        result.chunkSize = chunkSize
        for (name, entry) in other.entries {
            var e = result.entries[name] ?? Entry(sums: [], counts: [])
            if e.sums.isEmpty { e.sums = [Float](repeating: 0, count: entry.sums.count) }
            guard e.sums.count == entry.sums.count else {
                throw SwiftletError.invalidArgument("mismatched sums size for \(name): \(entry.sums.count) != \(e.sums.count)")
            }
            if other.isLegacy {
                if e.counts.isEmpty { e.counts = [0] }
                for j in e.sums.indices { e.sums[j] += entry.sums[j] * Float(chunkSize) }
                for j in e.counts.indices { e.counts[j] += (entry.counts.first ?? 0) * chunkSize }
            } else {
                if e.counts.isEmpty {
                    e.counts = [Int](repeating: 0, count: entry.counts.count)
                } else if e.counts.count == 1, entry.counts.count > 1 {
                    e.counts = [Int](repeating: e.counts[0], count: entry.counts.count)
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
        result.chunkCount = (result.entries.values.lazy.flatMap(\.counts).max() ?? 0) / chunkSize
        return result
    }
}
