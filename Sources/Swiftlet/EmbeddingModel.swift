import Foundation

/// A sentence-embedding model (BERT encoders such as all-MiniLM-L6-v2) loaded from a
/// sentence-transformers / Hugging Face folder: `config.json`, `model.safetensors` (or a sharded
/// index), `tokenizer.json` / `vocab.txt`, and optionally `modules.json`,
/// `1_Pooling/config.json`, `sentence_bert_config.json`.
///
/// ```swift
/// let model = try await EmbeddingModel.load(directory)
/// let vectors = try await model.embed(["A cat sits.", "A dog runs."])
/// let similarity = EmbeddingModel.cosineSimilarity(vectors[0], vectors[1])
/// ```
///
/// The model is immutable and can be shared between tasks; concurrent calls each use their own
/// scratch memory.
public final class EmbeddingModel: Sendable {
    /// Encoder, pooling and normalization.
    public let pipeline: EmbeddingPipeline
    private let tokenizer: WordPieceTokenizer

    /// Loads the model at `url`: a model folder (see the type's documentation for the files it
    /// reads) or a `bert` GGUF file. `precision` `.bfloat16` opts into bf16 products (see
    /// ``EncoderPrecision``; needs AVX-512 BF16).
    public static func load(_ url: URL, precision: EncoderPrecision = .float32) async throws -> EmbeddingModel {
        try EmbeddingModel(url: url).with(precision: precision)
    }

    private init(pipeline: EmbeddingPipeline, tokenizer: WordPieceTokenizer) {
        self.pipeline = pipeline
        self.tokenizer = tokenizer
    }

    /// This model with its encoder's Linear layers in `precision` (shares the f32 weights).
    public func with(precision: EncoderPrecision) throws -> EmbeddingModel {
        precision == pipeline.encoder.precision ? self : EmbeddingModel(pipeline: try pipeline.with(precision: precision), tokenizer: tokenizer)
    }

    /// Loads a model folder or a `bert` GGUF file synchronously.
    public convenience init(url: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            try self.init(gguf: url)
        } else {
            try self.init(directory: url)
        }
    }

    /// Loads the model in `directory` synchronously.
    public init(directory: URL) throws {
        pipeline = try EmbeddingPipeline(directory: directory)
        tokenizer = try WordPieceTokenizer(directory: directory)
    }

    /// Loads a `bert` GGUF file (written by `swiftlet convert` or llama.cpp's converter): the
    /// encoder, its WordPiece vocabulary, mean or CLS pooling by `bert.pooling_type`, and L2
    /// normalization, as `llama-embedding` runs it.
    public init(gguf url: URL) throws {
        let file = try GGUFFile(url: url)
        pipeline = try EmbeddingPipeline(gguf: file)
        tokenizer = try WordPieceTokenizer(gguf: file)
    }

    /// Width of the embeddings (384 for all-MiniLM-L6-v2).
    public var dimension: Int { pipeline.dimension }

    /// Longest token sequence the encoder sees; longer texts are truncated to it.
    public var maxSequenceLength: Int { pipeline.maxSequenceLength }

    /// The token ids the encoder runs on for `text`: `[CLS] … [SEP]`, truncated to
    /// ``maxSequenceLength``.
    public func tokenize(_ text: String) throws -> [TokenID] {
        pipeline.truncated(tokenizer.encode(text, maxLength: pipeline.maxSequenceLength))
    }

    /// Embeddings of `texts`, in order (L2-normalized when the model's pipeline says so).
    ///
    /// - Parameter texts: the texts to embed.
    /// - Parameter batchSize: how many texts run through the encoder at once.
    public func embed(_ texts: [String], batchSize: Int = 32) async throws -> [[Float]] {
        try embeddings(for: texts, batchSize: batchSize)
    }

    /// The synchronous form of ``embed(_:batchSize:)``.
    public func embeddings(for texts: [String], batchSize: Int = 32) throws -> [[Float]] {
        try pipeline.embed(tokenized: texts.map(tokenize), batchSize: batchSize)
    }

    /// Embeddings of already tokenized inputs (each with `[CLS]`/`[SEP]`), in order.
    public func embeddings(forTokenIDs ids: [[TokenID]], batchSize: Int = 32) throws -> [[Float]] {
        try pipeline.embed(tokenized: ids, batchSize: batchSize)
    }

    /// Cosine of the angle between `a` and `b` (0 when either is zero or their lengths differ).
    public static func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            dot += Double(a[i]) * Double(b[i])
            na += Double(a[i]) * Double(a[i])
            nb += Double(b[i]) * Double(b[i])
        }
        guard na > 0, nb > 0 else { return 0 }
        return Float(dot / (na.squareRoot() * nb.squareRoot()))
    }
}
