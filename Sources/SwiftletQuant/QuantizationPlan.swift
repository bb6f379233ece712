import SwiftletCore
import SwiftletTensor

/// A whole-model quantization type as llama-quantize names it ("Q4_K_M", …), numbered as
/// llama.cpp's `llama_ftype` (the value written to `general.file_type`).
public enum QuantizationMix: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 7, q5_0 = 8, q5_1 = 9
    case q2_K = 10, q3_K_S = 11, q3_K_M = 12, q3_K_L = 13, q4_K_S = 14, q4_K_M = 15
    case q5_K_S = 16, q5_K_M = 17, q6_K = 18, q2_K_S = 21, iq4_nl = 25, iq4_xs = 30, bf16 = 32

    /// llama-quantize's name.
    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q2_K: return "Q2_K"
        case .q2_K_S: return "Q2_K_S"
        case .q3_K_S: return "Q3_K_S"
        case .q3_K_M: return "Q3_K_M"
        case .q3_K_L: return "Q3_K_L"
        case .q4_K_S: return "Q4_K_S"
        case .q4_K_M: return "Q4_K_M"
        case .q5_K_S: return "Q5_K_S"
        case .q5_K_M: return "Q5_K_M"
        case .q6_K: return "Q6_K"
        case .iq4_nl: return "IQ4_NL"
        case .iq4_xs: return "IQ4_XS"
        }
    }

    /// The mix named `name` as llama-quantize parses it: a name (case-insensitive, with the
    /// aliases Q3_K, Q4_K, Q5_K for their _M mixes) or the `llama_ftype` number.
    public init?(name: String) {
        let upper = name.uppercased()
        switch upper {
        case "Q3_K": self = .q3_K_M; return
        case "Q4_K": self = .q4_K_M; return
        case "Q5_K": self = .q5_K_M; return
        default: break
        }
        if let m = QuantizationMix.allCases.first(where: { $0.description == upper }) { self = m; return }
        if let n = UInt32(name), let m = QuantizationMix(rawValue: n) { self = m; return }
        return nil
    }

    /// The type most tensors get (`llama_ftype_get_default_type`).
    public var defaultType: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .q5_0: return .q5_0
        case .q5_1: return .q5_1
        case .q8_0: return .q8_0
        case .q2_K, .q2_K_S: return .q2_K
        case .q3_K_S, .q3_K_M, .q3_K_L: return .q3_K
        case .q4_K_S, .q4_K_M: return .q4_K
        case .q5_K_S, .q5_K_M: return .q5_K
        case .q6_K: return .q6_K
        case .iq4_nl: return .iq4_nl
        case .iq4_xs: return .iq4_xs
        }
    }
}

/// The per-tensor target types llama-quantize chooses for a model (`llama_tensor_get_type`):
/// which tensors stay as they are (norms, biases, 1-D tensors, …), the output / token-embedding
/// handling, the attention-V and FFN-down bumps of each mix, and the fallbacks when a row length
/// is not a whole number of blocks.
///
/// Entries come in llama-quantize's order — non-layer tensors first, then by layer number, by
/// name within a layer — which is also the order of the tensors in the file it writes.
public struct QuantizationPlan: Sendable, Equatable {
    /// One tensor of the source model.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        /// GGUF order: row length first.
        public var shape: [Int]
        public var type: GGMLType
        public init(name: String, shape: [Int], type: GGMLType) { self.name = name; self.shape = shape; self.type = type }
    }

    /// The model hyper-parameters the rules look at.
    public struct Model: Sendable, Equatable {
        public var architecture: String
        public var layerCount: Int
        public var headCount: Int
        public var headCountKV: Int
        public var expertCount: Int
        public init(architecture: String, layerCount: Int, headCount: Int, headCountKV: Int, expertCount: Int = 0) {
            self.architecture = architecture; self.layerCount = layerCount
            self.headCount = headCount; self.headCountKV = headCountKV; self.expertCount = expertCount
        }
        /// Query heads per key/value head (0 without key/value heads), as llama.cpp's `n_gqa()`.
        var gqa: Int { headCountKV == 0 ? 0 : headCount / headCountKV }
    }

    /// llama-quantize's options that change the plan.
    public struct Options: Sendable, Equatable {
        /// `--pure`: every quantizable tensor gets the mix's default type (still subject to the
        /// block-size fallback).
        public var pure = false
        /// `--leave-output-tensor`: `output.weight` keeps its type.
        public var leaveOutputTensor = false
        /// `--output-tensor-type`.
        public var outputTensorType: GGMLType?
        /// `--token-embedding-type`.
        public var tokenEmbeddingType: GGMLType?
        /// Whether an importance matrix is given (some mixes choose differently with one).
        public var hasImportanceMatrix = false
        public init(pure: Bool = false, leaveOutputTensor: Bool = false, outputTensorType: GGMLType? = nil,
                    tokenEmbeddingType: GGMLType? = nil, hasImportanceMatrix: Bool = false) {
            self.pure = pure; self.leaveOutputTensor = leaveOutputTensor
            self.outputTensorType = outputTensorType; self.tokenEmbeddingType = tokenEmbeddingType
            self.hasImportanceMatrix = hasImportanceMatrix
        }
    }

    /// A tensor's decision.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var sourceType: GGMLType
        public var targetType: GGMLType
        /// Whether the rules would have chosen a type whose block does not divide the row length.
        public var fellBack: Bool
        /// Whether the tensor is rewritten (its target type differs from its source type).
        public var isConverted: Bool { sourceType != targetType }
    }

    public let mix: QuantizationMix
    public let options: Options
    /// In output order.
    public let entries: [Entry]

    /// Chooses every tensor's type.
    ///
    /// - Throws: ``SwiftletError/invalidArgument(_:)`` for an FFN tensor of a mixture-of-experts
    ///   model whose layer cannot be read from its name.
    public init(tensors: [Tensor], mix: QuantizationMix, model: Model, options: Options = Options()) throws {
        self.mix = mix
        self.options = options
        let ordered = tensors.sorted { a, b in
            let la = Self.layerIndex(a.name) ?? -1, lb = Self.layerIndex(b.name) ?? -1
            return la != lb ? la < lb : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var state = State(model: model, mix: mix, options: options)
        state.attentionVCount = ordered.filter { Category(name: $0.name).isAttentionV }.count
        state.tiedEmbeddings = !ordered.contains { $0.name == "output.weight" }
        var entries: [Entry] = []
        entries.reserveCapacity(ordered.count)
        for t in ordered {
            var fellBack = false
            let target = try state.targetType(t, fellBack: &fellBack)
            entries.append(Entry(name: t.name, shape: t.shape, sourceType: t.type, targetType: target, fellBack: fellBack))
        }
        self.entries = entries
    }

    /// `N` of a `blk.N.` tensor name (sscanf "blk.%d." semantics).
    static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        let rest = name.utf8.dropFirst(4)
        var value = 0, digits = 0, negative = false
        var i = rest.startIndex
        if i < rest.endIndex, rest[i] == UInt8(ascii: "-") || rest[i] == UInt8(ascii: "+") {
            negative = rest[i] == UInt8(ascii: "-"); i = rest.index(after: i)
        }
        while i < rest.endIndex, rest[i] >= 48, rest[i] <= 57, digits < 10 {
            value = value * 10 + Int(rest[i] - 48); digits += 1; i = rest.index(after: i)
        }
        guard digits > 0, i < rest.endIndex, rest[i] == UInt8(ascii: ".") else { return nil }
        return negative ? -value : value
    }

    /// Whether llama-quantize quantizes a tensor at all (`tensor_allows_quantization`): 2-D or
    /// larger, named `…weight`, and not a norm, expert router, position/token-type embedding or
    /// one of the small special tensors it keeps.
    public static func allowsQuantization(name: String, dimensions: Int, leaveOutputTensor: Bool = false) -> Bool {
        guard dimensions >= 2, name.hasSuffix("weight") else { return false }
        if name.contains("_norm.weight") { return false }
        if leaveOutputTensor && name == "output.weight" { return false }
        if name == "position_embd.weight" || name == "token_types.weight" { return false }
        let kept = ["ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
                    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
                    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
                    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
                    "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
                    "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
                    "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
                    ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"]
        return !kept.contains { name.contains($0) }
    }
}

/// llama-quantize's broad tensor roles.
enum Category {
    case tokenEmbedding, attentionQ, attentionV, attentionK, attentionQKV, attentionKVB, attentionOutput
    case ffnUp, ffnGate, ffnDown, output, other

    init(name: String) {
        if name == "output.weight" { self = .output }
        else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { self = .tokenEmbedding }
        else if name.contains("attn_qkv.weight") { self = .attentionQKV }
        else if name.contains("attn_kv_b.weight") { self = .attentionKVB }
        else if name.contains("attn_v.weight") { self = .attentionV }
        else if name.contains("attn_k.weight") { self = .attentionK }
        else if name.contains("attn_q.weight") { self = .attentionQ }
        else if name.contains("attn_output.weight") { self = .attentionOutput }
        else if name.contains("ffn_up") { self = .ffnUp }
        else if name.contains("ffn_gate") { self = .ffnGate }
        else if name.contains("ffn_down") { self = .ffnDown }
        else { self = .other }
    }

    var isAttentionV: Bool { self == .attentionV || self == .attentionQKV || self == .attentionKVB }
}

/// The counters llama-quantize carries from tensor to tensor.
private struct State {
    let model: QuantizationPlan.Model
    let mix: QuantizationMix
    let options: QuantizationPlan.Options
    var attentionVCount = 0
    var attentionVIndex = 0
    var ffnDownIndex = 0, ffnGateIndex = 0, ffnUpIndex = 0
    var tiedEmbeddings = true

    init(model: QuantizationPlan.Model, mix: QuantizationMix, options: QuantizationPlan.Options) {
        self.model = model; self.mix = mix; self.options = options
    }

    mutating func targetType(_ t: QuantizationPlan.Tensor, fellBack: inout Bool) throws -> GGMLType {
        guard QuantizationPlan.allowsQuantization(name: t.name, dimensions: t.shape.count, leaveOutputTensor: options.leaveOutputTensor) else {
            return t.type
        }
        let category = Category(name: t.name)
        if let e = options.tokenEmbeddingType, category == .tokenEmbedding { return e }
        if let o = options.outputTensorType, category == .output { return o }
        var type = mix.defaultType
        guard type.isBlockQuantized else { return type }
        if !options.pure { type = try mixType(t, type, category) }
        let columns = t.shape.first ?? 0
        if columns % type.traits.blockSize != 0 {
            fellBack = true
            switch type {
            case .iq4_xs: type = .iq4_nl
            case .q2_K, .q3_K: type = .q4_0
            case .q4_K: type = .q5_0
            case .q5_K: type = .q5_1
            case .q6_K: type = .q8_0
            default: break
            }
            if columns % type.traits.blockSize != 0 { type = .f16 }
        }
        return type
    }

    private func useMoreBits(_ layer: Int, _ layers: Int) -> Bool {
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
    }

    private func layer(_ index: Int, _ name: String) throws -> Int {
        guard Swift.max(1, model.expertCount) > 1 else { return index }
        guard let l = QuantizationPlan.layerIndex(name) else {
            throw SwiftletError.invalidArgument("failed to determine layer for tensor \(name)")
        }
        guard l >= 0, l < model.layerCount else {
            throw SwiftletError.invalidArgument("bad layer \(l) for tensor \(name): must be in [0, \(model.layerCount))")
        }
        return l
    }

    /// `llama_tensor_get_type_impl` for the mixes Swiftlet offers.
    private mutating func mixType(_ t: QuantizationPlan.Tensor, _ defaultType: GGMLType, _ category: Category) throws -> GGMLType {
        var type = defaultType
        let arch = model.architecture
        let falcon = arch == "falcon"
        let gqa = model.gqa
        let layers = model.layerCount
        if category == .output || (tiedEmbeddings && category == .tokenEmbedding) {
            if let o = options.outputTensorType { return o }
            let columns = t.shape.first ?? 0
            if falcon || columns % type.traits.blockSize != 0 { type = .q8_0 }
            else if type != .q8_0 { type = .q6_K }
            return type
        }
        switch category {
        case .tokenEmbedding:
            if let e = options.tokenEmbeddingType { type = e }
        case .attentionV, .attentionQKV, .attentionKVB:
            switch mix {
            case .q2_K: type = gqa >= 4 ? .q4_K : .q3_K
            case .q2_K_S where gqa >= 4: type = .q4_K
            case .q3_K_M: type = attentionVIndex < 2 ? .q5_K : .q4_K
            case .q3_K_L: type = .q5_K
            case .iq4_nl where gqa >= 4, .iq4_xs where gqa >= 4: type = .q5_K
            case .q4_K_M where useMoreBits(attentionVIndex, attentionVCount),
                 .q5_K_M where useMoreBits(attentionVIndex, attentionVCount): type = .q6_K
            case .q4_K_S where attentionVIndex < 4: type = .q5_K
            default: break
            }
            if arch == "llama", layers == 80, model.headCount != model.headCountKV, type == .q3_K || type == .q4_K { type = .q5_K }
            if model.expertCount == 8 { type = .q8_0 }
            attentionVIndex += 1
        case .attentionK:
            if model.expertCount == 8 { type = .q8_0 }
        case .attentionQ:
            break
        case .ffnDown:
            let l = try layer(ffnDownIndex, t.name)
            switch mix {
            case .q2_K: type = .q3_K
            case .q2_K_S: if l < layers / 8 { type = .q4_K }
            case .q3_K_M:
                type = l < layers / 16 ? .q5_K : (!falcon || useMoreBits(l, layers)) ? .q4_K : .q3_K
            case .q3_K_L: type = falcon ? .q4_K : .q5_K
            case .q4_K_M:
                if falcon { type = l < layers / 16 ? .q6_K : useMoreBits(l, layers) ? .q5_K : .q4_K }
                else if useMoreBits(l, layers) { type = .q6_K }
            case .iq4_nl where l < layers / 8 && !options.hasImportanceMatrix,
                 .iq4_xs where l < layers / 8 && !options.hasImportanceMatrix:
                type = .q5_K
            case .q5_K_M where useMoreBits(l, layers): type = .q6_K
            case .q4_K_S where !falcon && l < layers / 8: type = .q5_K
            case .q4_0 where options.hasImportanceMatrix && l < layers / 8: type = .q4_1
            case .q5_0 where options.hasImportanceMatrix && l < layers / 8: type = .q5_1
            default: break
            }
            ffnDownIndex += 1
        case .attentionOutput:
            if !falcon {
                if model.expertCount == 8 {
                    if [.q2_K, .q3_K_S, .q3_K_M, .iq4_nl, .q4_K_S, .q4_K_M, .iq4_xs].contains(mix) { type = .q5_K }
                } else {
                    switch mix {
                    case .q2_K: type = .q3_K
                    case .q3_K_M: type = .q4_K
                    case .q3_K_L: type = .q5_K
                    default: break
                    }
                }
            } else if mix == .q3_K_L {
                type = .q4_K
            }
        case .ffnGate:
            _ = try layer(ffnGateIndex, t.name)
            ffnGateIndex += 1
        case .ffnUp:
            _ = try layer(ffnUpIndex, t.name)
            ffnUpIndex += 1
        case .output, .other:
            break
        }
        return type
    }
}

extension GGMLType {
    /// Whether the type is a block quantization (ggml's `ggml_is_quantized`): not F32, F16, BF16
    /// or an integer type.
    public var isBlockQuantized: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: return false
        default: return true
        }
    }
}
