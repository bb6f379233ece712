import Foundation
import SwiftletTensor
import SwiftletFormats

/// The sentence-transformers pipeline around an encoder, read from a model folder:
/// `modules.json` (which modules run), `1_Pooling/config.json` (how tokens are pooled),
/// `sentence_bert_config.json` (where inputs are truncated).
///
/// A folder without `modules.json` is a plain Hugging Face encoder: mean pooling, no
/// normalization, truncation at the encoder's position limit.
public struct EmbeddingPipelineConfig: Sendable, Equatable {
    /// Pooling of the token states.
    public var pooling: PoolingConfig
    /// Whether the pooled vector is L2-normalized (`Normalize` listed in `modules.json`).
    public var normalize: Bool
    /// Longest token sequence (special tokens included) fed to the encoder; longer inputs are
    /// truncated to it, keeping the final `[SEP]`. `nil`: the encoder's position limit.
    public var maxSequenceLength: Int?
    /// Whether the tokenizer should lower-case (`do_lower_case` of `sentence_bert_config.json`),
    /// when the file says so.
    public var doLowerCase: Bool?

    /// A pipeline of the given parts.
    public init(pooling: PoolingConfig = PoolingConfig(), normalize: Bool = false, maxSequenceLength: Int? = nil, doLowerCase: Bool? = nil) {
        self.pooling = pooling
        self.normalize = normalize
        self.maxSequenceLength = maxSequenceLength
        self.doLowerCase = doLowerCase
    }

    private struct Module: Decodable {
        var path: String?
        var type: String
    }

    private struct SentenceBERTConfig: Decodable {
        var maxSeqLength: Int?
        var doLowerCase: Bool?
        enum CodingKeys: String, CodingKey { case maxSeqLength = "max_seq_length", doLowerCase = "do_lower_case" }
    }

    /// Reads the pipeline of the model folder `directory`.
    ///
    /// Throws ``SwiftletError/unsupportedArchitecture(_:supported:)`` for modules Swiftlet does
    /// not run (e.g. `Dense`), and malformed-file errors for bad JSON.
    public init(directory: URL) throws {
        let fm = FileManager.default
        var pooling = PoolingConfig()
        var normalize = false
        let modulesURL = directory.appendingPathComponent("modules.json")
        if fm.fileExists(atPath: modulesURL.path) {
            let modules = try HFConfig.load([Module].self, from: modulesURL)
            var sawTransformer = false
            for module in modules {
                let kind = module.type.split(separator: ".").last.map(String.init) ?? module.type
                switch kind {
                case "Transformer":
                    sawTransformer = true
                case "Pooling":
                    let path = module.path ?? ""
                    guard !path.contains(".."), !path.hasPrefix("/") else {
                        throw SwiftletError.malformedFile(path: modulesURL.path, reason: "pooling path '\(path)' leaves the model folder")
                    }
                    let url = directory.appendingPathComponent(path).appendingPathComponent("config.json")
                    if fm.fileExists(atPath: url.path) {
                        pooling = try HFConfig.load(PoolingConfig.self, from: url)
                    }
                case "Normalize":
                    // Parameter-free: its folder may be absent (as in all-MiniLM-L6-v2).
                    normalize = true
                default:
                    throw SwiftletError.unsupportedArchitecture("sentence-transformers module \(module.type)", supported: ["Transformer", "Pooling", "Normalize"])
                }
            }
            guard sawTransformer else {
                throw SwiftletError.missingMetadata("modules.json lists no Transformer module")
            }
        }
        var maxLength: Int?
        var lowerCase: Bool?
        let sbertURL = directory.appendingPathComponent("sentence_bert_config.json")
        if fm.fileExists(atPath: sbertURL.path) {
            let sbert = try HFConfig.load(SentenceBERTConfig.self, from: sbertURL)
            if let m = sbert.maxSeqLength {
                guard m >= 2 else {
                    throw SwiftletError.malformedFile(path: sbertURL.path, reason: "max_seq_length \(m) leaves no room for [CLS] and [SEP]")
                }
                maxLength = m
            }
            lowerCase = sbert.doLowerCase
        }
        self.init(pooling: pooling, normalize: normalize, maxSequenceLength: maxLength, doLowerCase: lowerCase)
    }
}
