import SwiftletTensor
import SwiftletFormats
import Foundation

/// The decoder-only transformer architectures Swiftlet runs, named as in GGUF's
/// `general.architecture`.
public enum Architecture: String, CaseIterable, Sendable {
    /// Llama family (SmolLM2, Llama 2/3): RMSNorm, GQA, interleaved RoPE, SwiGLU.
    case llama
    /// Gemma 3: QK-norm, sandwich norms, GeGLU, sliding-window / global attention, NeoX RoPE.
    case gemma3
    /// Qwen2 / Qwen2.5: the Llama block with biases on Q/K/V, NeoX RoPE.
    case qwen2
    /// Qwen3 (dense): the Llama block with RMSNorm on each query / key head, NeoX RoPE.
    case qwen3
    /// Phi-3: the Llama block with fused QKV and gate/up projections, NeoX RoPE.
    case phi3

    /// Resolves a GGUF architecture name, throwing `unsupportedArchitecture` for anything else.
    public init(gguf name: String) throws {
        guard let arch = Architecture(rawValue: name) else {
            throw SwiftletError.unsupportedArchitecture(name, supported: Architecture.allCases.map(\.rawValue))
        }
        self = arch
    }
}

/// Every hyperparameter the forward pass needs, read once from the model file's metadata.
///
/// A plain value: the forward pass never looks anything up by name.
public struct TransformerConfig: Sendable, Equatable {
    public var architecture: Architecture
    /// Width of the residual stream (`embedding_length`).
    public var dim: Int
    /// Hidden width of the feed-forward block (`feed_forward_length`).
    public var ffnDim: Int
    public var layerCount: Int
    public var headCount: Int
    /// Key/value heads (grouped-query attention when fewer than `headCount`).
    public var kvHeadCount: Int
    /// Width of one attention head (`key_length`, default `dim / headCount`).
    public var headDim: Int
    public var vocabSize: Int
    /// Context length the model was trained for.
    public var trainedContext: Int
    public var normEpsilon: Float
    /// Number of leading head dimensions RoPE rotates.
    public var ropeDim: Int
    public var ropeConvention: RoPEConvention
    /// RoPE frequency base of global-attention layers.
    public var ropeBase: Float
    /// RoPE frequency base of sliding-window layers (Gemma 3: 10 000).
    public var ropeBaseLocal: Float
    /// Context-extension scaling of the RoPE angles of global layers (linear, YaRN, Llama 3's
    /// frequency factors); none by default.
    public var ropeScaling = RoPE.Scaling()
    /// Sliding window (tokens a query may look back, itself included) for local layers; 0 = none.
    public var slidingWindow: Int
    /// Every `globalLayerPeriod`-th layer (1-based) attends globally; the others use the sliding
    /// window. 0 means every layer is global.
    public var globalLayerPeriod: Int
    /// Scale applied to the token embeddings (Gemma: √dim, Llama: 1).
    public var embeddingScale: Float
    /// Softmax scale of the attention scores (1/√key_length unless the model says otherwise).
    public var attentionScale: Float
    /// Final logits are `cap · tanh(logits / cap)` when set.
    public var finalLogitSoftcap: Float?

    /// Creates a configuration from explicit values (models built in memory; files use
    /// `init(metadata:)`).
    public init(architecture: Architecture, dim: Int, ffnDim: Int, layerCount: Int, headCount: Int,
                kvHeadCount: Int, headDim: Int, vocabSize: Int, trainedContext: Int, normEpsilon: Float,
                ropeDim: Int, ropeConvention: RoPEConvention, ropeBase: Float, ropeBaseLocal: Float,
                slidingWindow: Int, globalLayerPeriod: Int, embeddingScale: Float, attentionScale: Float,
                finalLogitSoftcap: Float?) {
        self.architecture = architecture; self.dim = dim; self.ffnDim = ffnDim; self.layerCount = layerCount
        self.headCount = headCount; self.kvHeadCount = kvHeadCount; self.headDim = headDim
        self.vocabSize = vocabSize; self.trainedContext = trainedContext; self.normEpsilon = normEpsilon
        self.ropeDim = ropeDim; self.ropeConvention = ropeConvention; self.ropeBase = ropeBase
        self.ropeBaseLocal = ropeBaseLocal; self.slidingWindow = slidingWindow
        self.globalLayerPeriod = globalLayerPeriod; self.embeddingScale = embeddingScale
        self.attentionScale = attentionScale; self.finalLogitSoftcap = finalLogitSoftcap
    }

    /// Whether layer `layer` (0-based) is a sliding-window layer.
    @inlinable
    public func isSlidingWindowLayer(_ layer: Int) -> Bool {
        guard slidingWindow > 0 else { return false }
        guard globalLayerPeriod > 0 else { return true }
        return (layer + 1) % globalLayerPeriod != 0
    }

    /// Query width (`headCount · headDim`).
    public var qDim: Int { headCount * headDim }
    /// Key / value width (`kvHeadCount · headDim`).
    public var kvDim: Int { kvHeadCount * headDim }

    /// Checks the relations the forward pass relies on, so a hostile file cannot make it read
    /// out of bounds.
    public func validate() throws {
        func need(_ ok: Bool, _ what: String) throws {
            if !ok { throw SwiftletError.invalidArgument("model hyperparameters: \(what)") }
        }
        try need(dim > 0 && ffnDim > 0 && layerCount > 0 && vocabSize > 0, "sizes must be positive")
        try need(headCount > 0 && kvHeadCount > 0 && headCount % kvHeadCount == 0,
                 "head_count \(headCount) must be a multiple of head_count_kv \(kvHeadCount)")
        try need(headDim > 0 && headDim % 2 == 0, "head dimension \(headDim) must be even and positive")
        try need(ropeDim > 0 && ropeDim <= headDim && ropeDim % 2 == 0, "rope dimension \(ropeDim) must be even and ≤ \(headDim)")
        try need(normEpsilon >= 0 && normEpsilon.isFinite, "norm epsilon")
        try need(ropeBase > 0 && ropeBaseLocal > 0, "rope base")
        try need(slidingWindow >= 0 && globalLayerPeriod >= 0, "sliding window")
        try need(dim <= 1 << 20 && ffnDim <= 1 << 22 && headDim <= 1 << 14 && layerCount <= 4096
                 && headCount <= 4096 && vocabSize <= 1 << 24, "sizes out of range")
    }
}

extension TransformerConfig {
    /// Reads the configuration of the architecture named by `general.architecture`.
    public init(metadata: GGUFMetadataContainer, vocabSize: Int) throws {
        switch try Architecture(gguf: metadata.string("general.architecture")) {
        case .llama: self = try Llama.config(metadata)
        case .gemma3: self = try Gemma3.config(metadata)
        case .qwen2: self = try Qwen2.config(metadata)
        case .qwen3: self = try Qwen3.config(metadata)
        case .phi3: self = try Phi3.config(metadata)
        }
        if let declared = try metadata.intIfPresent(architecture.rawValue + ".vocab_size"), declared != vocabSize {
            throw SwiftletError.shapeMismatch(op: "load", detail: "vocab_size \(declared) but token_embd has \(vocabSize) rows")
        }
        self.vocabSize = vocabSize
        try validate()
    }

    /// The `<architecture>.*` keys every llama-like architecture may carry and the runtime
    /// implements (or, like `context_length`, only informs).
    static let commonKeys: Set<String> = [
        "context_length", "embedding_length", "feed_forward_length", "block_count", "vocab_size",
        "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
        "attention.layer_norm_rms_epsilon", "rope.dimension_count", "rope.freq_base",
        "rope.scaling.type", "rope.scaling.factor", "rope.scale_linear", "rope.scaling.original_context_length",
        "rope.scaling.attn_factor", "rope.scaling.finetuned",
    ]

    /// Throws `unsupportedMetadata` for a key under the architecture's prefix that is neither in
    /// `commonKeys` nor in `extra`: an unknown hyperparameter is refused, never dropped.
    static func rejectUnknownKeys(_ arch: Architecture, _ m: GGUFMetadataContainer, extra: Set<String> = []) throws {
        let p = arch.rawValue + "."
        for key in m.metadata.keys.sorted() where key.hasPrefix(p) {
            let suffix = String(key.dropFirst(p.count))
            if !commonKeys.contains(suffix) && !extra.contains(suffix) {
                throw SwiftletError.unsupportedMetadata(key: key, value: "\(m.metadata[key]!)")
            }
        }
    }

    /// The keys shared by the llama-like architectures, prefixed by the architecture name, after
    /// refusing any key of the architecture outside `commonKeys` and `extraKeys`.
    static func common(_ arch: Architecture, _ m: GGUFMetadataContainer, rope: RoPEConvention,
                       extraKeys: Set<String> = []) throws -> TransformerConfig {
        try rejectUnknownKeys(arch, m, extra: extraKeys)
        let p = arch.rawValue + "."
        let dim = try m.int(p + "embedding_length")
        let heads = try m.int(p + "attention.head_count")
        let kvHeads = try m.intIfPresent(p + "attention.head_count_kv") ?? heads
        guard heads > 0 else { throw SwiftletError.invalidArgument("attention.head_count must be positive") }
        let headDim = try m.intIfPresent(p + "attention.key_length") ?? dim / heads
        if let valueLength = try m.intIfPresent(p + "attention.value_length"), valueLength != headDim {
            throw SwiftletError.unsupportedMetadata(key: p + "attention.value_length",
                                                    value: "\(valueLength) (differs from key_length \(headDim))")
        }
        var config = TransformerConfig(
            architecture: arch, dim: dim, ffnDim: try m.int(p + "feed_forward_length"),
            layerCount: try m.int(p + "block_count"), headCount: heads, kvHeadCount: kvHeads,
            headDim: headDim, vocabSize: 0,
            trainedContext: try m.intIfPresent(p + "context_length") ?? 2048,
            normEpsilon: try m.float(p + "attention.layer_norm_rms_epsilon"),
            ropeDim: try m.intIfPresent(p + "rope.dimension_count") ?? headDim,
            ropeConvention: rope,
            ropeBase: try m.floatIfPresent(p + "rope.freq_base") ?? 10_000,
            ropeBaseLocal: try m.floatIfPresent(p + "rope.freq_base") ?? 10_000,
            slidingWindow: 0, globalLayerPeriod: 0, embeddingScale: 1,
            attentionScale: 1 / Float(headDim).squareRoot(), finalLogitSoftcap: nil)
        config.ropeScaling = try ropeScaling(p, m, ropeDim: config.ropeDim, base: config.ropeBase,
                                             trainedContext: config.trainedContext)
        return config
    }

    /// RoPE context extension as llama.cpp reads it (`llama_model::load_hparams`,
    /// `llama_context`'s YaRN set-up, default context parameters): `rope.scaling.type` none,
    /// linear (angles × 1 / `rope.scaling.factor`) or yarn (ramp between the YaRN correction
    /// dimensions, β_fast 32, β_slow 1, magnitude cancelling ggml's own `1 + 0.1 ln s`), times
    /// `rope.scaling.attn_factor`. Other types throw `unsupportedMetadata`.
    static func ropeScaling(_ p: String, _ m: GGUFMetadataContainer, ropeDim: Int, base: Float,
                            trainedContext: Int) throws -> RoPE.Scaling {
        let type = try m.stringIfPresent(p + "rope.scaling.type") ?? "linear"
        let factor = try m.floatIfPresent(p + "rope.scaling.factor") ?? m.floatIfPresent(p + "rope.scale_linear") ?? 0
        var scaling = RoPE.Scaling()
        switch type {
        case "none": break
        case "linear", "yarn":
            scaling.frequencyScale = factor == 0 ? 1 : 1 / factor
        default:
            throw SwiftletError.unsupportedMetadata(key: p + "rope.scaling.type", value: type)
        }
        guard scaling.frequencyScale.isFinite, scaling.frequencyScale > 0 else {
            throw SwiftletError.invalidArgument("\(p)rope.scaling.factor \(factor) must be positive")
        }
        if type == "yarn" {
            let original = try m.intIfPresent(p + "rope.scaling.original_context_length") ?? trainedContext
            scaling.extrapolation = 1
            scaling.correctionDims = RoPE.Scaling.yarnCorrectionDims(ropeDim: ropeDim, originalContext: original, base: base)
            let s = 1 / scaling.frequencyScale
            let magnitude: Float = s <= 1 ? 1 : fmaf(0.1, logf(s), 1)   // GCC contracts these to FMAs
            scaling.magnitude = magnitude * (1 / fmaf(0.1, logf(s), 1))
        }
        scaling.magnitude *= try m.floatIfPresent(p + "rope.scaling.attn_factor") ?? 1
        return scaling
    }
}
