import Foundation
import SwiftletTensor
import SwiftletFormats
import SwiftletQuant

/// Accumulates an importance matrix as llama-imatrix does: for every block weight, the sum over
/// all evaluated tokens of each input column's squared activation (`Σ x²`, summed in f32 row by
/// row in token order), and the number of rows summed.
///
/// Like llama-imatrix, products over fewer than 16 rows (decode steps, short tails) are ignored.
/// Install it with `transformer.matmulInputObserver = collector`.
public final class ImportanceMatrixCollector: MatmulInputObserver {
    /// llama-imatrix skips products with fewer rows than this.
    public static let minimumRows = 16

    private struct Accumulator {
        var sums: [Float]
        var count: Int
    }
    private var accumulators: [MatmulWeight: Accumulator] = [:]
    /// Rows seen by the most-used tensor, for the chunk count.
    private(set) var maxCount = 0

    /// Rows of the whole product llama.cpp runs when the rows seen here are one sequence's part
    /// of a multi-sequence micro-batch (the 16-row rule applies to the whole); nil: `rows`.
    public var productRows: Int?

    public init() {}

    public func observe(_ weight: MatmulWeight, input: UnsafeBufferPointer<Float>, rows: Int) {
        guard (productRows ?? rows) >= Self.minimumRows, rows > 0 else { return }
        let cols = input.count / rows
        var a = accumulators[weight] ?? Accumulator(sums: [Float](repeating: 0, count: cols), count: 0)
        accumulators[weight] = nil   // keep the array uniquely referenced while it is updated
        a.sums.withUnsafeMutableBufferPointer { acc in
            for r in 0..<rows {
                let x = input.baseAddress! + r * cols
                for j in 0..<cols { acc[j] += x[j] * x[j] }
            }
        }
        a.count += rows
        maxCount = max(maxCount, a.count)
        accumulators[weight] = a
    }

    /// Whether every sum is finite (llama-imatrix aborts otherwise).
    public var allFinite: Bool {
        accumulators.values.allSatisfy { $0.sums.allSatisfy(\.isFinite) }
    }

    /// The statistics gathered so far; `chunkSize` tokens per chunk.
    public func matrix(datasets: [String], chunkSize: Int) -> ImportanceMatrix {
        var entries: [String: ImportanceMatrix.Entry] = [:]
        for (weight, a) in accumulators {
            entries[weight.tensorName] = .init(sums: a.sums, counts: [a.count])
        }
        return ImportanceMatrix(entries: entries, datasets: datasets,
                                chunkCount: chunkSize > 0 ? maxCount / chunkSize : 0, chunkSize: chunkSize)
    }
}

/// llama-imatrix's measurement over a text: chunks of `contextSize` tokens, each from an empty
/// cache with its first token replaced by BOS when the model adds one; the input of every block
/// product accumulated; and, as llama-imatrix prints it, the perplexity of each chunk's second half.
///
/// llama-imatrix evaluates `batchSize / contextSize` chunks at once (4 with its defaults), and
/// llama.cpp splits such a batch into micro-batches holding an equal slice of every chunk, one
/// chunk after another. The sums are f32 additions in that row order, so the run reproduces it:
/// the chunks of a group are evaluated side by side on their own caches, slice by slice.
public enum ImportanceMatrixRun {
    /// Running state after each chunk.
    public struct Progress: Sendable {
        public var chunk: Int
        public var chunkCount: Int
        /// exp(mean NLL) so far, or nil when perplexity is not computed.
        public var perplexity: Double?
    }

    /// What a run produced.
    public struct Result: Sendable {
        public var matrix: ImportanceMatrix
        public var chunkCount: Int
        /// Final perplexity estimate and its standard error (nil without perplexity).
        public var perplexity: Double?
        public var perplexityError: Double?
    }

    /// Evaluates `tokens` (the whole text, tokenized with special tokens added) in chunks.
    ///
    /// - Parameters:
    ///   - chunks: most chunks to evaluate (nil: all whole chunks).
    ///   - skipChunks: chunks dropped from the start of the text first (llama-imatrix `--chunk`).
    ///   - batchSize, microBatchSize: llama.cpp's `-b` and `-ub` (defaults 2048 and 512), which
    ///     set the order the rows are summed in.
    ///   - computePerplexity: score the second half of each chunk (llama-imatrix's default).
    /// - Throws: `invalidArgument` when the text has fewer than 2 × `contextSize` tokens (as
    ///   llama-imatrix requires), or a non-finite activation sum appears.
    public static func measure(_ transformer: Transformer, tokens allTokens: [TokenID], contextSize: Int, bos: TokenID?,
                               chunks: Int? = nil, skipChunks: Int = 0, batchSize: Int = 2048, microBatchSize: Int = 512,
                               computePerplexity: Bool = true, datasets: [String] = [],
                               progress: (Progress) -> Void = { _ in }) throws -> Result {
        guard contextSize >= 2, contextSize <= transformer.contextLength else {
            throw SwiftletError.invalidArgument("imatrix context \(contextSize) must be in 2...\(transformer.contextLength)")
        }
        guard batchSize > 0, microBatchSize > 0, batchSize < contextSize || batchSize % contextSize == 0 else {
            throw SwiftletError.invalidArgument("batch size \(batchSize) must be below the context \(contextSize) or a multiple of it")
        }
        var tokens = allTokens
        if skipChunks > 0 {
            let (needed, overflow) = (skipChunks + 2).multipliedReportingOverflow(by: contextSize)
            guard !overflow, needed < tokens.count else {
                throw SwiftletError.invalidArgument("there will be not enough tokens left after removing \(skipChunks) chunks")
            }
            tokens.removeFirst(skipChunks * contextSize)
        }
        guard tokens.count >= 2 * contextSize else {
            throw SwiftletError.invalidArgument("you need at least \(2 * contextSize) tokens for a context of \(contextSize) tokens; the text tokenizes to only \(tokens.count) tokens")
        }
        let maxChunks = tokens.count / contextSize
        let chunkCount = chunks.map { min(max($0, 0), maxChunks) } ?? maxChunks
        let sequences = max(1, batchSize / contextSize)
        let microBatch = min(microBatchSize, batchSize)
        let collector = ImportanceMatrixCollector()

        // Lane 0 is the caller's transformer; the others share its weights and pool.
        var lanes = [transformer]
        for _ in 1..<min(sequences, max(chunkCount, 1)) {
            lanes.append(try Transformer(config: transformer.config, weights: transformer.weights, contextLength: contextSize,
                                         maxBatch: min(microBatch, transformer.maxBatch), cacheType: transformer.cache.keyType,
                                         valueCacheType: transformer.cache.valueType, flashAttention: transformer.flashAttention,
                                         cacheBudget: transformer.cacheBudget, pool: transformer.pool))
        }
        let previous = lanes.map(\.matmulInputObserver)
        for lane in lanes { lane.matmulInputObserver = collector }
        defer { for (lane, observer) in zip(lanes, previous) { lane.matmulInputObserver = observer } }

        let first = contextSize / 2
        var nll = 0.0, nll2 = 0.0, count = 0
        var chunkTokens = [[TokenID]](repeating: [TokenID](repeating: 0, count: contextSize), count: lanes.count)
        var laneNLL = [[Double]](repeating: [], count: lanes.count)
        var group = 0
        while group < chunkCount {
            let inGroup = min(sequences, chunkCount - group)
            for s in 0..<inGroup {
                let start = (group + s) * contextSize
                for i in 0..<contextSize { chunkTokens[s][i] = tokens[start + i] }
                if let bos { chunkTokens[s][0] = bos }
                laneNLL[s].removeAll(keepingCapacity: true)
            }
            // llama.cpp's batches of `batchSize` tokens, each split into micro-batches holding
            // an equal slice of every chunk of the group.
            let perBatch = sequences > 1 ? contextSize : min(batchSize, contextSize)
            var batchStart = 0
            while batchStart < contextSize {
                let batchEnd = min(contextSize, batchStart + perBatch)
                let slice = max(1, microBatch / inGroup)
                var sliceStart = batchStart
                while sliceStart < batchEnd {
                    let n = min(slice, batchEnd - sliceStart)
                    collector.productRows = n * inGroup
                    for s in 0..<inGroup {
                        let chunkStart = (group + s) * contextSize
                        try chunkTokens[s].withUnsafeBufferPointer { p in
                            let piece = UnsafeBufferPointer(rebasing: p[sliceStart ..< sliceStart + n])
                            let wanted = max(0, first - sliceStart)
                            try lanes[s].evaluate(piece, at: sliceStart, logits: computePerplexity && wanted < n ? .from(wanted) : .last) { index, logits in
                                let position = sliceStart + index
                                guard computePerplexity, position >= first, position < contextSize - 1 else { return }
                                let target = tokens[chunkStart + position + 1]
                                laneNLL[s].append(Double(Perplexity.negativeLogLikelihood(logits, target: Int(target))))
                            }
                        }
                    }
                    sliceStart += n
                }
                batchStart = batchEnd
            }
            guard collector.allFinite else {
                throw SwiftletError.invalidArgument("non-finite activation sums in chunks \(group + 1)...\(group + inGroup)")
            }
            for s in 0..<inGroup {
                for v in laneNLL[s] { nll += v; nll2 += v * v; count += 1 }
                progress(Progress(chunk: group + s + 1, chunkCount: chunkCount,
                                  perplexity: computePerplexity && count > 0 ? exp(nll / Double(count)) : nil))
            }
            group += inGroup
        }
        var ppl: Double?, error: Double?
        if computePerplexity, count > 1 {
            let mean = nll / Double(count)
            let variance = nll2 / Double(count) - mean * mean
            ppl = exp(mean)
            error = variance > 0 ? exp(mean) * (variance / Double(count - 1)).squareRoot() : nil
        }
        return Result(matrix: collector.matrix(datasets: datasets, chunkSize: contextSize), chunkCount: chunkCount,
                      perplexity: ppl, perplexityError: error)
    }
}
