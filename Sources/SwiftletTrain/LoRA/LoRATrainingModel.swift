import Foundation
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import SwiftletModels

/// What a LoRA fine-tune trains: the rank and alpha of the adapters and the matrices they adapt.
public struct LoRASettings: Sendable, Equatable {
    /// Rows of A (columns of B).
    public var rank: Int
    /// The adapter's `alpha`: the update is scaled by alpha / rank.
    public var alpha: Float
    /// The adapted matrices of every block.
    public var targets: [MatmulWeight.Role]
    /// Seed of A's initialization (B starts at zero, so the adapted model starts as the base).
    public var seed: UInt64

    public init(rank: Int = 8, alpha: Float = 16, targets: [MatmulWeight.Role] = MatmulWeight.Role.allCases, seed: UInt64 = 1) {
        self.rank = rank; self.alpha = alpha; self.targets = targets; self.seed = seed
    }

    /// Parses `q,k,v,o,gate,up,down` (llama.cpp's short names).
    public static func targets(_ list: String) throws -> [MatmulWeight.Role] {
        let names: [String: MatmulWeight.Role] = ["q": .attentionQuery, "k": .attentionKey, "v": .attentionValue,
                                                  "o": .attentionOutput, "gate": .ffnGate, "up": .ffnUp, "down": .ffnDown]
        var roles: [MatmulWeight.Role] = []
        for item in list.split(separator: ",") {
            guard let role = names[item.trimmingCharacters(in: .whitespaces)] else {
                throw SwiftletError.invalidArgument("unknown LoRA target '\(item)' (use q, k, v, o, gate, up, down)")
            }
            if !roles.contains(role) { roles.append(role) }
        }
        guard !roles.isEmpty else { throw SwiftletError.invalidArgument("no LoRA targets given") }
        return MatmulWeight.Role.allCases.filter(roles.contains)
    }

    func validate() throws {
        guard rank > 0, rank <= 1024 else { throw SwiftletError.invalidArgument("LoRA rank \(rank) must be in 1...1024") }
        guard alpha.isFinite, alpha > 0 else { throw SwiftletError.invalidArgument("LoRA alpha \(alpha) must be positive") }
        guard !targets.isEmpty else { throw SwiftletError.invalidArgument("no LoRA targets given") }
    }
}

/// A frozen decoder (its weights stay in the model file's quantized format, read in place)
/// with trainable LoRA factors, recorded as a training graph over `batch` sequences of
/// `sequenceLength` tokens ending in the mean next-token cross-entropy of the scored positions.
///
/// The frozen products run forward through the quantized kernels and backward through blocks of
/// dequantized rows (``FrozenWeightScratch``); each adapted product adds
/// `(alpha / rank) · (x·Aᵀ)·Bᵀ`. Llama, Gemma 3, Qwen2, Qwen3 and Phi-3 blocks.
public final class LoRATrainingModel: @unchecked Sendable {  // mutable; used by one training task at a time
    public let config: TransformerConfig
    public let weights: TransformerWeights
    public let settings: LoRASettings
    public let batch: Int
    public let sequenceLength: Int
    /// The trainable factors, `blk.N.ROLE.weight.lora_a` (`[rank, in]`) and `.lora_b` (`[out, rank]`).
    public let parameters: ParameterStore
    /// The norm weights as f32 constants.
    let constants: ParameterStore
    public let tape: Tape
    public let scratch: FrozenWeightScratch
    public let inputs: TokenBuffer
    /// Next token of each position; negative = not scored.
    public let targets: TokenBuffer
    public let logits: Variable
    public let loss: Variable

    /// The architectures fine-tuning accepts (every one the runtime runs).
    public static let supportedArchitectures: [Architecture] = [.llama, .gemma3, .qwen2, .qwen3, .phi3]

    public init(config: TransformerConfig, weights: TransformerWeights, settings: LoRASettings, batch: Int,
                sequenceLength: Int, pool: ComputePool = .shared) throws {
        try settings.validate()
        let c = config
        guard Self.supportedArchitectures.contains(c.architecture) else {
            throw SwiftletError.unsupportedArchitecture(c.architecture.rawValue + " (LoRA fine-tuning)",
                                                        supported: Self.supportedArchitectures.map(\.rawValue))
        }
        guard c.ropeDim == c.headDim, c.ropeScaling == RoPE.Scaling(), weights.ropeFrequencyFactors == nil else {
            throw SwiftletError.unsupportedMetadata(key: "rope", value: "partial or scaled RoPE is not supported by fine-tuning")
        }
        guard abs(c.attentionScale * Float(c.headDim).squareRoot() - 1) < 1e-6 else {
            throw SwiftletError.unsupportedMetadata(key: "attention scale", value: "\(c.attentionScale) (fine-tuning uses 1/√head_dim)")
        }
        guard batch > 0, sequenceLength > 1 else {
            throw SwiftletError.invalidArgument("batch \(batch) × sequence \(sequenceLength)")
        }
        let (tokens, overflow) = batch.multipliedReportingOverflow(by: sequenceLength)
        guard !overflow, tokens <= 1 << 16 else { throw SwiftletError.invalidArgument("batch of \(batch) × \(sequenceLength) tokens is too large") }
        if c.architecture == .gemma3, c.slidingWindow > 0, sequenceLength > c.slidingWindow {
            throw SwiftletError.invalidArgument("sequences of \(sequenceLength) tokens exceed Gemma 3's sliding window of \(c.slidingWindow)")
        }
        self.config = config; self.weights = weights; self.settings = settings
        self.batch = batch; self.sequenceLength = sequenceLength
        tape = Tape(pool: pool)
        let inputs = try TokenBuffer(count: tokens), targets = try TokenBuffer(count: tokens)
        let parameters = ParameterStore(), constants = ParameterStore()
        let scratch = FrozenWeightScratch()
        self.inputs = inputs; self.targets = targets
        self.parameters = parameters; self.constants = constants; self.scratch = scratch

        var sampler = SplitMix64(seed: settings.seed)
        func uniform() -> Float { Float(sampler.next() >> 40) / Float(1 << 24) * 2 - 1 }
        let adapted = Self.adaptedTensors(c, targets: settings.targets)
        for l in 0..<c.layerCount {
            for tensor in adapted {
                let name = "blk.\(l).\(tensor.name)"
                let a = try parameters.add(name + ".lora_a", rows: settings.rank, columns: tensor.inputs)
                try parameters.add(name + ".lora_b", rows: tensor.outputs, columns: settings.rank)
                // As PEFT: A uniform in ±1/√in, B zero.
                let bound = 1 / Float(tensor.inputs).squareRoot()
                for i in 0..<a.count { a.value[i] = uniform() * bound }
            }
        }
        func constant(_ name: String, _ values: UnsafeMutableBufferPointer<Float>) throws -> Variable {
            let v = try constants.add(name, rows: 1, columns: values.count, requiresGrad: false)
            v.value.update(from: values.baseAddress!, count: values.count)
            return v
        }

        let t = tape, scale = settings.alpha / Float(settings.rank)
        let params = parameters
        // B·(A·x) of each adapted tensor of the current layer, by tensor name (a fused tensor's
        // product is shared by its parts).
        var deltas: [String: Variable] = [:]
        func project(_ x: Variable, _ layer: Int, _ role: MatmulWeight.Role) throws -> Variable {
            let name = MatmulWeight(layer: layer, role: role).tensorName
            let base = try t.frozenLinear(x, weight: Self.matrix(weights.layers[layer], role), scratch: scratch, name: name)
            guard let tensor = adapted.first(where: { $0.parts.contains { $0.role == role } }) else { return base }
            let tensorName = "blk.\(layer).\(tensor.name)"
            guard let a = params[tensorName + ".lora_a"], let b = params[tensorName + ".lora_b"] else { return base }
            let full: Variable
            if let d = deltas[tensorName] { full = d } else {
                let inner = try t.linear(x, weight: a, name: tensorName + ".lora_ax")
                full = try t.linear(inner, weight: b, name: tensorName + ".lora_bax")
                deltas[tensorName] = full
            }
            let part = tensor.parts.first { $0.role == role }!
            let delta = tensor.parts.count == 1 ? full
                : try t.sliceColumns(full, part.rows, name: name + ".lora_part")
            return try t.addScaled(base, delta, scale: scale, name: name + ".lora")
        }
        let eps = c.normEpsilon
        let arch = c.architecture
        let hasQKNorm = arch == .gemma3 || arch == .qwen3
        var x = try t.frozenEmbedding(weights.tokenEmbedding, tokens: inputs, scale: c.embeddingScale)
        for l in 0..<c.layerCount {
            let w = weights.layers[l]
            let n = { (s: String) in "blk.\(l).\(s)" }
            let gemma = arch == .gemma3
            deltas = [:]
            let ropeBase = c.isSlidingWindowLayer(l) ? c.ropeBaseLocal : c.ropeBase
            let h = try t.rmsNorm(x, weight: constant(n("attn_norm"), w.attentionNorm), eps: eps, name: n("attn_norm"))
            var q = try project(h, l, .attentionQuery)
            var k = try project(h, l, .attentionKey)
            var v = try project(h, l, .attentionValue)
            if let bq = w.queryBias, let bk = w.keyBias, let bv = w.valueBias {
                q = try t.addConstantBias(q, bias: bq, name: n("q_bias"))
                k = try t.addConstantBias(k, bias: bk, name: n("k_bias"))
                v = try t.addConstantBias(v, bias: bv, name: n("v_bias"))
            }
            if hasQKNorm {
                q = try t.headRMSNorm(q, weight: constant(n("attn_q_norm"), w.queryNorm!), eps: eps, name: n("q_norm"))
                k = try t.headRMSNorm(k, weight: constant(n("attn_k_norm"), w.keyNorm!), eps: eps, name: n("k_norm"))
            }
            let qr = try t.rope(q, heads: c.headCount, sequenceLength: sequenceLength, base: ropeBase,
                                convention: c.ropeConvention, name: n("q_rope"))
            let kr = try t.rope(k, heads: c.kvHeadCount, sequenceLength: sequenceLength, base: ropeBase,
                                convention: c.ropeConvention, name: n("k_rope"))
            let a = try t.attention(q: qr, k: kr, v: v, sequenceLength: sequenceLength, heads: c.headCount,
                                    kvHeads: c.kvHeadCount, name: n("attn"))
            var o = try project(a, l, .attentionOutput)
            if gemma {
                o = try t.rmsNorm(o, weight: constant(n("post_attention_norm"), w.postAttentionNorm!), eps: eps, name: n("post_attn_norm"))
            }
            x = try t.add(x, o, name: n("attn_residual"))
            let h2 = try t.rmsNorm(x, weight: constant(n("ffn_norm"), w.ffnNorm), eps: eps, name: n("ffn_norm"))
            let g = try project(h2, l, .ffnGate)
            let u = try project(h2, l, .ffnUp)
            let s = gemma ? try t.geglu(gate: g, up: u, name: n("geglu")) : try t.swiglu(gate: g, up: u, name: n("swiglu"))
            var d = try project(s, l, .ffnDown)
            if gemma {
                d = try t.rmsNorm(d, weight: constant(n("post_ffw_norm"), w.postFFNNorm!), eps: eps, name: n("post_ffn_norm"))
            }
            x = try t.add(x, d, name: n("ffn_residual"))
        }
        let final = try t.rmsNorm(x, weight: constant("output_norm", weights.outputNorm), eps: eps, name: "output_norm")
        var out = try t.frozenLinear(final, weight: weights.output, scratch: scratch, name: "logits")
        if let cap = c.finalLogitSoftcap { out = try t.softcap(out, cap: cap, name: "logits_softcap") }
        logits = out
        loss = try t.crossEntropy(logits, targets: targets, name: "loss")
    }

    /// A tensor of a block that gets a LoRA pair, as llama.cpp names it, and the roles it serves
    /// (Phi-3's fused QKV and gate|up serve several, by row ranges of their output).
    struct AdaptedTensor {
        struct Part { var role: MatmulWeight.Role; var rows: Range<Int> }
        var name: String
        var inputs: Int
        var parts: [Part]
        var outputs: Int { parts.map(\.rows.upperBound).max() ?? 0 }
    }

    /// The adapted tensors of every block for `targets`; a fused tensor is adapted whole when any
    /// of its parts is targeted.
    static func adaptedTensors(_ c: TransformerConfig, targets: [MatmulWeight.Role]) -> [AdaptedTensor] {
        typealias Part = AdaptedTensor.Part
        var tensors: [AdaptedTensor] = []
        let fused = c.architecture == .phi3
        for role in MatmulWeight.Role.allCases where targets.contains(role) {
            let attentionInput = [MatmulWeight.Role.attentionQuery, .attentionKey, .attentionValue].contains(role)
            if fused, attentionInput {
                if !tensors.contains(where: { $0.name == "attn_qkv.weight" }) {
                    tensors.append(AdaptedTensor(name: "attn_qkv.weight", inputs: c.dim, parts: [
                        Part(role: .attentionQuery, rows: 0 ..< c.qDim),
                        Part(role: .attentionKey, rows: c.qDim ..< c.qDim + c.kvDim),
                        Part(role: .attentionValue, rows: c.qDim + c.kvDim ..< c.qDim + 2 * c.kvDim)]))
                }
                continue
            }
            if fused, role == .ffnGate || role == .ffnUp {
                if !tensors.contains(where: { $0.name == "ffn_up.weight" }) {
                    tensors.append(AdaptedTensor(name: "ffn_up.weight", inputs: c.dim, parts: [
                        Part(role: .ffnGate, rows: 0 ..< c.ffnDim), Part(role: .ffnUp, rows: c.ffnDim ..< 2 * c.ffnDim)]))
                }
                continue
            }
            let (rows, cols) = switch role {
            case .attentionQuery: (c.qDim, c.dim)
            case .attentionKey, .attentionValue: (c.kvDim, c.dim)
            case .attentionOutput: (c.dim, c.qDim)
            case .ffnGate, .ffnUp: (c.ffnDim, c.dim)
            case .ffnDown: (c.dim, c.ffnDim)
            }
            tensors.append(AdaptedTensor(name: role.rawValue + ".weight", inputs: cols, parts: [Part(role: role, rows: 0 ..< rows)]))
        }
        return tensors
    }

    static func matrix(_ w: LayerWeights, _ role: MatmulWeight.Role) -> QuantizedMatrix {
        switch role {
        case .attentionQuery: w.wq
        case .attentionKey: w.wk
        case .attentionValue: w.wv
        case .attentionOutput: w.wo
        case .ffnGate: w.wGate
        case .ffnUp: w.wUp
        case .ffnDown: w.wDown
        }
    }

    /// Runs the graph forward and returns the loss.
    @discardableResult
    public func forward() -> Float {
        tape.forward()
        return loss.value[0]
    }

    /// Back-propagates the loss into the factors' gradients (added to, as accumulation).
    public func backward(seed: Float = 1) {
        tape.backward(from: loss, seed: seed)
    }

    /// Bytes of the trainable factors (f32).
    public var adapterBytes: Int { 4 * parameters.count }

    /// The factors as a llama.cpp LoRA adapter GGUF (F32 tensors).
    public func adapterWriter(name: String = "swiftlet-lora") throws -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", .string(config.architecture.rawValue))
        w.set("general.type", .string("adapter"))
        w.set("general.name", .string(name))
        w.set("adapter.type", .string("lora"))
        w.set("adapter.lora.alpha", .float32(settings.alpha))
        for p in parameters.parameters {
            try w.addTensor(name: p.name, type: .f32, shape: [p.columns, p.rows],
                            data: Data(bytes: p.value, count: p.count * MemoryLayout<Float>.size))
        }
        return w
    }
}
