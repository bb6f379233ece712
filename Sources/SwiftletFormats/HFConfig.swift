import Foundation
import SwiftletCore

/// Reading Hugging Face `config.json` files.
public enum HFConfig {
    /// Decodes `type` from the JSON file at `url`, mapping failures to ``SwiftletError``.
    public static func load<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data = try MappedFile.readRegularFile(url, limit: maxConfigBytes)
        return try decode(type, from: data, path: url.path)
    }

    /// Largest config file read (real ones are a few kB).
    public static let maxConfigBytes = 16 << 20

    /// Decodes `type` from JSON `data`; `path` names the file in errors, which say which key
    /// has which problem (a wrong type, a missing value) or where the JSON syntax breaks.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as SwiftletError {
            throw error
        } catch let error as DecodingError {
            throw SwiftletError.malformedFile(path: path, reason: describe(error))
        } catch {
            throw SwiftletError.malformedFile(path: path, reason: "not a valid config: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func key(_ context: DecodingError.Context) -> String {
            context.codingPath.isEmpty ? "top level" : context.codingPath.map { k in
                k.intValue.map { "[\($0)]" } ?? k.stringValue
            }.joined(separator: ".")
        }
        switch error {
        case let .typeMismatch(type, context):
            return "\(key(context)): expected \(typeName(type)) (\(context.debugDescription))"
        case let .valueNotFound(type, context):
            return "\(key(context)): expected \(typeName(type)), found null"
        case let .keyNotFound(missing, context):
            return "\(key(context)): missing key '\(missing.stringValue)'"
        case let .dataCorrupted(context) where context.codingPath.isEmpty:
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "not valid JSON" + (underlying.map { ": " + $0 } ?? "")
        case let .dataCorrupted(context):
            return "\(key(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int32.Type, is Int64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is [Any].Type: return "an array"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object" : name
        }
    }

    /// The fields every Hugging Face model config carries (used to pick an architecture).
    public struct Header: Decodable, Sendable, Equatable {
        /// `model_type` (e.g. `bert`), empty when absent.
        public var modelType: String
        /// `architectures` (e.g. `["BertModel"]`), empty when absent.
        public var architectures: [String]

        enum CodingKeys: String, CodingKey {
            case modelType = "model_type", architectures
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? ""
            architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? []
        }
    }
}

/// A BERT-family encoder's `config.json` (`model_type` `bert`), with the defaults of
/// `transformers.BertConfig` for absent keys.
public struct BERTConfig: Codable, Sendable, Equatable {
    /// `model_type`.
    public var modelType: String = "bert"
    /// Vocabulary size (rows of the word embedding).
    public var vocabSize: Int = 30522
    /// Width of the hidden states.
    public var hiddenSize: Int = 768
    /// Number of encoder layers.
    public var numHiddenLayers: Int = 12
    /// Attention heads per layer (`hiddenSize` must be a multiple).
    public var numAttentionHeads: Int = 12
    /// Width of the feed-forward layer.
    public var intermediateSize: Int = 3072
    /// Activation of the feed-forward layer (`gelu` is the exact erf form).
    public var hiddenAct: String = "gelu"
    /// Rows of the absolute position embedding: the longest input.
    public var maxPositionEmbeddings: Int = 512
    /// Rows of the token-type (segment) embedding.
    public var typeVocabSize: Int = 2
    /// Epsilon of every LayerNorm.
    public var layerNormEps: Float = 1e-12
    /// Id of the padding token.
    public var padTokenId: Int = 0
    /// `absolute` is the only kind implemented.
    public var positionEmbeddingType: String = "absolute"

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", typeVocabSize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps", padTokenId = "pad_token_id"
        case positionEmbeddingType = "position_embedding_type"
    }

    /// A config with `transformers`' defaults (BERT-base sizes).
    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BERTConfig()
        // Integers are read as numbers and checked here: Foundation's decoder reports a
        // fractional number for an Int as invalid JSON without naming the key.
        func integer(_ key: CodingKeys, _ fallback: Int) throws -> Int {
            let number: Double?
            do { number = try c.decodeIfPresent(Double.self, forKey: key) } catch DecodingError.typeMismatch(_, let context) {
                throw DecodingError.typeMismatch(Int.self, context)
            }
            guard let value = number else { return fallback }
            guard let exact = Int(exactly: value) else {
                throw DecodingError.typeMismatch(Int.self, .init(codingPath: c.codingPath + [key], debugDescription: "found \(value)"))
            }
            return exact
        }
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        vocabSize = try integer(.vocabSize, d.vocabSize)
        hiddenSize = try integer(.hiddenSize, d.hiddenSize)
        numHiddenLayers = try integer(.numHiddenLayers, d.numHiddenLayers)
        numAttentionHeads = try integer(.numAttentionHeads, d.numAttentionHeads)
        intermediateSize = try integer(.intermediateSize, d.intermediateSize)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        maxPositionEmbeddings = try integer(.maxPositionEmbeddings, d.maxPositionEmbeddings)
        typeVocabSize = try integer(.typeVocabSize, d.typeVocabSize)
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
        padTokenId = try integer(.padTokenId, d.padTokenId)
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType) ?? d.positionEmbeddingType
    }

    /// Width of one attention head.
    public var headDim: Int { hiddenSize / max(numAttentionHeads, 1) }

    /// Multiply-add work (2 FLOPs each) of one forward pass over a sequence of `tokens`:
    /// the Linear layers plus the attention score and weighted-sum products.
    public func forwardFLOPs(tokens: Int) -> Double {
        let n = Double(tokens), h = Double(hiddenSize), i = Double(intermediateSize)
        let linear = 2 * n * (4 * h * h + 2 * h * i)
        let attention = 2 * 2 * n * n * h
        return Double(numHiddenLayers) * (linear + attention)
    }

    /// Checks the sizes are positive and consistent and the variant is one Swiftlet runs.
    public func validate(path: String = "config.json") throws {
        let sizes = [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
                     ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize),
                     ("max_position_embeddings", maxPositionEmbeddings), ("type_vocab_size", typeVocabSize)]
        for (key, value) in sizes where value <= 0 || value > 1 << 24 {
            throw SwiftletError.malformedFile(path: path, reason: "\(key) = \(value) is out of range")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw SwiftletError.malformedFile(path: path, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard layerNormEps.isFinite, layerNormEps >= 0 else {
            throw SwiftletError.malformedFile(path: path, reason: "layer_norm_eps \(layerNormEps) is invalid")
        }
        guard positionEmbeddingType == "absolute" else {
            throw SwiftletError.unsupportedArchitecture("bert with position_embedding_type \(positionEmbeddingType)", supported: ["absolute"])
        }
        guard hiddenAct == "gelu" else {
            throw SwiftletError.unsupportedArchitecture("bert with hidden_act \(hiddenAct)", supported: ["gelu"])
        }
    }
}
