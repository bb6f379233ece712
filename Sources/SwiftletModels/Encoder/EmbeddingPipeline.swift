import Foundation
import SwiftletTensor
import SwiftletFormats

/// A sentence-embedding pipeline over token ids: truncation, BERT encoder, pooling and
/// optional L2 normalization — sentence-transformers' `Transformer → Pooling → Normalize`.
///
/// Inputs are sorted by length and run in batches, each batch packed without padding (see
/// ``BERTEncoder``); results come back in input order.
public final class EmbeddingPipeline: @unchecked Sendable {  // `idleWorkspaces` is guarded by `lock`; the rest is immutable
    /// The encoder.
    public let encoder: BERTEncoder
    /// Pooling, normalization and truncation settings.
    public let config: EmbeddingPipelineConfig
    /// Longest sequence fed to the encoder (special tokens included).
    public let maxSequenceLength: Int

    // Workspaces are reused across calls; concurrent callers each get their own.
    private let lock = NSLock()
    private var idleWorkspaces: [BERTWorkspace] = []

    /// A pipeline of `encoder` and `config`.
    public init(encoder: BERTEncoder, config: EmbeddingPipelineConfig) {
        self.encoder = encoder
        self.config = config
        maxSequenceLength = min(config.maxSequenceLength ?? encoder.config.maxPositionEmbeddings,
                                encoder.config.maxPositionEmbeddings)
    }

    /// Loads the encoder and the pipeline configuration of a sentence-transformers (or plain
    /// Hugging Face BERT) folder.
    public convenience init(directory: URL) throws {
        try self.init(encoder: BERTEncoder(directory: directory), config: EmbeddingPipelineConfig(directory: directory))
    }

    /// This pipeline with its encoder's Linear layers in `precision` (see ``EncoderPrecision``).
    public func with(precision: EncoderPrecision) throws -> EmbeddingPipeline {
        precision == encoder.precision ? self : EmbeddingPipeline(encoder: try encoder.with(precision: precision), config: config)
    }

    /// Width of the embeddings.
    public var dimension: Int { config.pooling.outputDimension(hidden: encoder.config.hiddenSize) }

    /// `ids` cut to ``maxSequenceLength`` the way the reference tokenizer truncates: the first
    /// `max − 1` tokens, then the final token (`[SEP]`) re-appended.
    public func truncated(_ ids: [Int32]) -> [Int32] {
        guard ids.count > maxSequenceLength else { return ids }
        guard maxSequenceLength >= 2 else { return Array(ids.prefix(maxSequenceLength)) }
        return Array(ids.prefix(maxSequenceLength - 1)) + [ids.last!]
    }

    /// Embeddings of tokenized inputs (each with its special tokens), in input order.
    ///
    /// Inputs longer than ``maxSequenceLength`` are truncated; at most `batchSize` inputs run
    /// through the encoder at once.
    public func embed(tokenized inputs: [[Int32]], batchSize: Int = 32) throws -> [[Float]] {
        guard batchSize >= 1 else { throw SwiftletError.invalidArgument("batchSize \(batchSize) must be at least 1") }
        let sequences = inputs.map(truncated)
        // Longest first (as sentence-transformers does): batches hold similar lengths, which
        // keeps the per-sequence attention work even across threads.
        let order = sequences.indices.sorted { sequences[$0].count > sequences[$1].count }
        let hidden = encoder.config.hiddenSize
        let dim = dimension
        var results = [[Float]](repeating: [], count: inputs.count)
        let ws = takeWorkspace()
        defer { returnWorkspace(ws) }
        var start = 0
        while start < order.count {
            let batchIndices = order[start..<min(start + batchSize, order.count)]
            try encoder.forward(batchIndices.map { sequences[$0] }, workspace: ws)
            for (k, index) in batchIndices.enumerated() {
                let first = ws.rowOffsets[k], count = ws.rowOffsets[k + 1] - first
                results[index] = [Float](unsafeUninitializedCapacity: dim) { buffer, initialized in
                    config.pooling.pool(states: ws.hidden + first * hidden, tokens: count, hidden: hidden, out: buffer.baseAddress!)
                    if config.normalize { L2Normalize.apply(buffer.baseAddress!, count: dim) }
                    initialized = dim
                }
            }
            start += batchSize
        }
        return results
    }

    private func takeWorkspace() -> BERTWorkspace {
        lock.lock(); defer { lock.unlock() }
        return idleWorkspaces.popLast() ?? BERTWorkspace()
    }

    private func returnWorkspace(_ ws: BERTWorkspace) {
        lock.lock(); defer { lock.unlock() }
        idleWorkspaces.append(ws)
    }
}
