import Foundation
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats

/// A low-rank adapter (LoRA, Hu et al. 2021) in llama.cpp's GGUF format: `general.type = adapter`,
/// `adapter.type = lora`, `adapter.lora.alpha`, and for each adapted weight `W` of the base a pair
/// `W.lora_a` (GGUF shape `[in, rank]`) and `W.lora_b` (`[rank, out]`), in F32 or F16.
///
/// Applied to a base model, each adapted product becomes `W·x + scale · B·(A·x)` with
/// `scale = userScale · alpha / rank` (just `userScale` when alpha is 0), as llama.cpp's
/// `build_lora_mm`. The file stays memory-mapped; the adapter reads its tensors in place.
public final class LoRAAdapter: @unchecked Sendable {  // immutable after init; reads a read-only mapping
    /// One adapted weight: the base tensor's name and the two factors.
    public struct Pair: Sendable {
        /// Name of the base tensor (`blk.3.attn_q.weight`).
        public let target: String
        public let a: GGUFTensorInfo
        public let b: GGUFTensorInfo
        /// The inner dimension (rows of A).
        public var rank: Int { a.shape[1] }
        /// Columns of the base weight (the input width).
        public var inputs: Int { a.shape[0] }
        /// Rows of the base weight (the output width).
        public var outputs: Int { b.shape[1] }
    }

    /// The file, kept open (its mapping backs the factors).
    public let file: GGUFFile
    /// The path shown in errors.
    public let path: String
    /// `general.architecture` of the base the adapter was made for.
    public let architecture: String
    /// `adapter.lora.alpha` (0 when absent: the user scale is used as is).
    public let alpha: Float
    /// The adapted weights, sorted by target name.
    public let pairs: [Pair]

    /// Maps and validates the adapter at `url`.
    public convenience init(url: URL) throws {
        try self.init(gguf: GGUFFile(url: url))
    }

    /// Validates `file` as a LoRA adapter on its own (the base is checked when it is applied).
    ///
    /// - Throws: ``SwiftletError/invalidArgument(_:)`` naming the file when it is not an adapter
    ///   (`general.type` other than `adapter`, `adapter.type` other than `lora`), and
    ///   ``SwiftletError/malformedFile(path:reason:)`` for a tensor that is not a `lora_a` /
    ///   `lora_b` factor, a factor without its partner, factors whose shapes do not chain, or a
    ///   factor type other than F32 / F16.
    public init(gguf file: GGUFFile) throws {
        let path = file.url?.path ?? "<memory>"
        self.file = file
        self.path = path
        let generalType = try file.stringIfPresent("general.type") ?? ""
        guard generalType == "adapter" else {
            throw SwiftletError.invalidArgument(
                "\(path) is not a LoRA adapter: general.type is \(generalType.isEmpty ? "missing" : "'\(generalType)'") (expected 'adapter'); pass the base model with -m")
        }
        let adapterType = try file.stringIfPresent("adapter.type") ?? ""
        guard adapterType == "lora" else {
            throw SwiftletError.invalidArgument("\(path): adapter.type is '\(adapterType)', only 'lora' adapters are supported")
        }
        architecture = try file.string("general.architecture")
        alpha = try file.floatIfPresent("adapter.lora.alpha") ?? 0

        var halves: [String: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        for info in file.tensors {
            if info.name.hasSuffix(".lora_a") {
                halves[String(info.name.dropLast(7)), default: (nil, nil)].a = info
            } else if info.name.hasSuffix(".lora_b") {
                halves[String(info.name.dropLast(7)), default: (nil, nil)].b = info
            } else if info.name.hasSuffix("_norm.weight") {
                continue  // llama.cpp ignores norm vectors in adapters too
            } else {
                throw SwiftletError.malformedFile(path: path, reason: "tensor '\(info.name)' is neither a .lora_a nor a .lora_b factor")
            }
        }
        var pairs: [Pair] = []
        for (target, half) in halves.sorted(by: { $0.key < $1.key }) {
            guard let a = half.a, let b = half.b else {
                throw SwiftletError.malformedFile(path: path, reason: "LoRA pair for '\(target)' lacks its \(half.a == nil ? "lora_a" : "lora_b") tensor")
            }
            for f in [a, b] where f.type != .f32 && f.type != .f16 {
                throw SwiftletError.unsupportedTensorType("\(f.type) for LoRA factor \(f.name) in \(path) (F32 or F16 only)")
            }
            guard a.shape.count == 2, b.shape.count == 2, a.shape[1] == b.shape[0], a.shape[1] > 0 else {
                throw SwiftletError.malformedFile(path: path, reason: "LoRA factors of '\(target)' do not chain: lora_a \(a.shape), lora_b \(b.shape)")
            }
            guard file.data(for: a).count == a.byteCount, file.data(for: b).count == b.byteCount else {
                throw SwiftletError.malformedFile(path: path, reason: "LoRA factors of '\(target)' lie outside the file")
            }
            pairs.append(Pair(target: target, a: a, b: b))
        }
        guard !pairs.isEmpty else { throw SwiftletError.malformedFile(path: path, reason: "the adapter has no lora_a / lora_b tensors") }
        self.pairs = pairs
    }

    /// The factor `scale · alpha / rank` llama.cpp multiplies `B·(A·x)` by (float order as its
    /// `get_scale`).
    public func scale(userScale: Float, rank: Int) -> Float {
        alpha != 0 ? userScale * alpha / Float(rank) : userScale
    }
}

/// An adapter with the strength it is applied at (`--lora` is 1, `--lora-scaled FILE S` is S).
public struct ScaledAdapter: Sendable {
    public let adapter: LoRAAdapter
    public let scale: Float

    public init(_ adapter: LoRAAdapter, scale: Float = 1) {
        self.adapter = adapter; self.scale = scale
    }

    /// Refuses a scale that is NaN or infinite: it would turn every adapted weight into NaN.
    static func checkScales(_ adapters: [ScaledAdapter]) throws {
        if let bad = adapters.first(where: { !$0.scale.isFinite }) {
            throw SwiftletError.invalidArgument("\(bad.adapter.path): LoRA scale \(bad.scale) is not a finite number")
        }
    }
}

/// One adapter's factors bound to one product of the forward pass.
struct LoRAProduct {
    let a: UnsafeRawPointer
    let aIsF16: Bool
    let b: UnsafeRawPointer
    let bIsF16: Bool
    /// Rows of B used (a row range of B when the base matrix is a slice of a fused tensor).
    let outputs: Int
    /// Rows of the whole B (its row count decides llama.cpp's kernel choice).
    let bRows: Int
    let rank: Int
    let inputs: Int
    let scale: Float
}

/// The adapters bound to a transformer: per block and matrix role, the products to add, and the
/// scratch they run in (allocated once).
final class LoRABinding {
    /// `products[layer][role]`.
    let products: [[[LoRAProduct]]]
    /// Applied to the unembedding.
    let output: [LoRAProduct]
    /// Keeps the adapters' mappings alive.
    let adapters: [ScaledAdapter]
    /// A·x `[maxBatch, maxRank]`, B·(A·x) `[maxBatch, maxOutputs]`, f16-rounded inputs `[maxBatch, maxInputs]`.
    let inner: UnsafeMutablePointer<Float>
    let delta: UnsafeMutablePointer<Float>
    let rounded: UnsafeMutablePointer<Float>

    static let roles = MatmulWeight.Role.allCases

    init(adapters: [ScaledAdapter], config c: TransformerConfig, maxBatch: Int, logitRows: Int) throws {
        self.adapters = adapters
        // Where each base tensor sits: (role or output, layer, first row of the slice, rows, cols).
        struct Slot { var layer: Int; var role: MatmulWeight.Role?; var firstRow: Int; var rows: Int; var cols: Int }
        var slots: [String: [Slot]] = [:]
        let names = c.architecture.tensorNames
        for l in 0..<c.layerCount {
            func put(_ name: String, _ role: MatmulWeight.Role, first: Int = 0, rows: Int, cols: Int) {
                slots["blk.\(l).\(name)", default: []].append(Slot(layer: l, role: role, firstRow: first, rows: rows, cols: cols))
            }
            if c.architecture == .phi3 {
                put("attn_qkv.weight", .attentionQuery, rows: c.qDim, cols: c.dim)
                put("attn_qkv.weight", .attentionKey, first: c.qDim, rows: c.kvDim, cols: c.dim)
                put("attn_qkv.weight", .attentionValue, first: c.qDim + c.kvDim, rows: c.kvDim, cols: c.dim)
            } else {
                put("attn_q.weight", .attentionQuery, rows: c.qDim, cols: c.dim)
                put("attn_k.weight", .attentionKey, rows: c.kvDim, cols: c.dim)
                put("attn_v.weight", .attentionValue, rows: c.kvDim, cols: c.dim)
            }
            put("attn_output.weight", .attentionOutput, rows: c.dim, cols: c.qDim)
            if names.fusedGateUp {
                put("ffn_up.weight", .ffnGate, rows: c.ffnDim, cols: c.dim)
                put("ffn_up.weight", .ffnUp, first: c.ffnDim, rows: c.ffnDim, cols: c.dim)
            } else {
                put("ffn_gate.weight", .ffnGate, rows: c.ffnDim, cols: c.dim)
                put("ffn_up.weight", .ffnUp, rows: c.ffnDim, cols: c.dim)
            }
            put("ffn_down.weight", .ffnDown, rows: c.dim, cols: c.ffnDim)
        }
        slots["output.weight"] = [Slot(layer: -1, role: nil, firstRow: 0, rows: c.vocabSize, cols: c.dim)]

        var products = [[[LoRAProduct]]](repeating: [[LoRAProduct]](repeating: [], count: Self.roles.count), count: c.layerCount)
        var output: [LoRAProduct] = []
        var maxRank = 1, maxOutputs = 1, maxInputs = 1
        for scaled in adapters {
            let adapter = scaled.adapter
            guard adapter.architecture == c.architecture.rawValue else {
                throw SwiftletError.invalidArgument(
                    "\(adapter.path): LoRA adapter made for a '\(adapter.architecture)' model, the base is '\(c.architecture.rawValue)'")
            }
            for pair in adapter.pairs {
                if pair.target == names.tokenEmbedding {
                    throw SwiftletError.invalidArgument("\(adapter.path): adapters on \(pair.target) are not supported")
                }
                guard let targets = slots[pair.target] else {
                    throw SwiftletError.invalidArgument(
                        "\(adapter.path): LoRA tensor '\(pair.target)' does not exist in the base model (an adapter for another model?)")
                }
                let fusedRows = targets.reduce(0) { max($0, $1.firstRow + $1.rows) }
                guard pair.inputs == targets[0].cols, pair.outputs == fusedRows else {
                    throw SwiftletError.shapeMismatch(
                        op: "LoRA adapter \(adapter.path)",
                        detail: "'\(pair.target)' is [\(targets[0].cols), \(fusedRows)] in the base, the adapter's factors give [\(pair.inputs), \(pair.outputs)] (an adapter for another model?)")
                }
                let a = adapter.file.data(for: pair.a).baseAddress!, b = adapter.file.data(for: pair.b).baseAddress!
                let bRowBytes = pair.rank * (pair.b.type == .f16 ? 2 : 4)
                let scale = adapter.scale(userScale: scaled.scale, rank: pair.rank)
                for slot in targets {
                    let product = LoRAProduct(a: a, aIsF16: pair.a.type == .f16, b: b + slot.firstRow * bRowBytes,
                                              bIsF16: pair.b.type == .f16, outputs: slot.rows, bRows: pair.outputs,
                                              rank: pair.rank, inputs: pair.inputs, scale: scale)
                    if let role = slot.role {
                        products[slot.layer][Self.roles.firstIndex(of: role)!].append(product)
                    } else {
                        output.append(product)
                    }
                    maxRank = max(maxRank, pair.rank)
                    maxOutputs = max(maxOutputs, slot.rows)
                    maxInputs = max(maxInputs, pair.inputs)
                }
            }
        }
        self.products = products
        self.output = output
        let batch = max(maxBatch, logitRows)
        func buffer(_ width: Int) throws -> UnsafeMutablePointer<Float> {
            let (n, overflow) = batch.multipliedReportingOverflow(by: width)
            guard !overflow, n <= 1 << 34 else { throw SwiftletError.invalidArgument("LoRA scratch of \(batch) × \(width) floats") }
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        inner = try buffer(maxRank)
        delta = try buffer(maxOutputs)
        rounded = try buffer(max(maxInputs, maxRank))
    }

    deinit {
        inner.deallocate(); delta.deallocate(); rounded.deallocate()
    }
}

extension MatmulWeight.Role {
    /// Position in `allCases` (a switch, for the forward pass).
    var index: Int {
        switch self {
        case .attentionQuery: 0
        case .attentionKey: 1
        case .attentionValue: 2
        case .attentionOutput: 3
        case .ffnGate: 4
        case .ffnUp: 5
        case .ffnDown: 6
        }
    }
}
