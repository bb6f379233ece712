import Foundation
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import SwiftletTokenizers

/// Converts a Hugging Face safetensors checkpoint (a folder with `config.json`,
/// `model.safetensors` or a sharded index, `tokenizer.json`) to GGUF, writing the metadata keys
/// and values, tensor names, types, order and layout that llama.cpp's `convert_hf_to_gguf.py`
/// writes — for BERT encoders (`bert`, WordPiece vocabulary) and the Llama family (`llama`,
/// byte-level BPE vocabulary, Q/K rows permuted for ggml's RoPE).
///
/// ```swift
/// let converter = try HFConverter(directory: URL(fileURLWithPath: "all-MiniLM-L6-v2"))
/// try converter.convert(to: URL(fileURLWithPath: "minilm.f16.gguf"), outputType: .f16)
/// ```
///
/// Errors are `SwiftletError`s: a folder without `config.json` (`io`), an architecture other
/// than those above (`unsupportedArchitecture`), a checkpoint lacking a tensor the architecture
/// needs (`missingTensor`) or holding one it cannot map (`unexpectedTensor`), an output that
/// cannot be written (`io`; the file is written beside the target and renamed, so no partial
/// output is left behind).
public struct HFConverter {
    /// Tensor encodings of the output (`--outtype`): matrices take this type; vectors, norms and
    /// position / token-type embeddings stay F32, as in llama.cpp's converter.
    public enum OutputType: String, CaseIterable, Sendable {
        case f32, f16, bf16, q8_0

        /// `general.file_type` (llama.cpp's `llama_ftype`).
        var fileType: UInt32 {
            switch self {
            case .f32: return 0
            case .f16: return 1
            case .q8_0: return 7
            case .bf16: return 32
            }
        }

        var tensorType: GGMLType {
            switch self {
            case .f32: return .f32
            case .f16: return .f16
            case .bf16: return .bf16
            case .q8_0: return .q8_0
            }
        }
    }

    /// The GGUF architectures the converter writes.
    public enum Architecture: String, Sendable {
        case bert, llama
    }

    /// Progress of ``makeWriter(outputType:progress:)``: tensors converted so far, and in all.
    public typealias Progress = (_ done: Int, _ total: Int) -> Void

    /// The checkpoint folder.
    public let directory: URL
    /// The GGUF architecture chosen from `config.json`'s `architectures`.
    public let architecture: Architecture
    /// The first entry of `config.json`'s `architectures`.
    public let huggingFaceArchitecture: String
    private let config: HFJSON
    private let hparams: [String: HFJSON]

    /// Hugging Face architecture names and the GGUF architecture each converts to.
    public static let supportedArchitectures: [String: Architecture] = [
        "BertModel": .bert, "BertForMaskedLM": .bert, "BertForSequenceClassification": .bert,
        "LlamaForCausalLM": .llama, "LLaMAForCausalLM": .llama, "MistralForCausalLM": .llama, "LlamaModel": .llama,
    ]

    /// Reads `config.json` of `directory` and picks the architecture.
    public init(directory: URL) throws {
        self.directory = directory
        let configURL = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw SwiftletError.io(path: configURL.path, reason: "no config.json: not a Hugging Face checkpoint folder")
        }
        config = try HFJSON.load(configURL)
        guard let object = config.object else {
            throw SwiftletError.malformedFile(path: configURL.path, reason: "not a JSON object")
        }
        var names = (object["architectures"]?.array ?? []).compactMap(\.string)
        if names.isEmpty, let type = object["model_type"]?.string {
            names = [["bert": "BertModel", "llama": "LlamaForCausalLM"][type] ?? type]
        }
        guard let hfArch = names.first, let arch = Self.supportedArchitectures[hfArch] else {
            throw SwiftletError.unsupportedArchitecture(names.first ?? "(no architectures in config.json)",
                                                        supported: Self.supportedArchitectures.keys.sorted())
        }
        huggingFaceArchitecture = hfArch
        architecture = arch
        hparams = Self.withDefaults(object, architecture: arch)
        for key in ["num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size"] {
            guard let v = hparams[key]?.int, v > 0, v <= 1 << 24 else {
                throw SwiftletError.malformedFile(path: configURL.path, reason: "\(key) missing or out of range")
            }
        }
        guard hparams["hidden_size"]!.int! % hparams["num_attention_heads"]!.int! == 0 else {
            throw SwiftletError.malformedFile(path: configURL.path, reason: "hidden_size is not a multiple of num_attention_heads")
        }
    }

    /// `config.json` completed with the defaults `transformers`' config class fills in
    /// (llama.cpp's converter reads the config through `AutoConfig`).
    private static func withDefaults(_ c: [String: HFJSON], architecture: Architecture) -> [String: HFJSON] {
        var h = c
        func setDefault(_ key: String, _ value: HFJSON) { if h[key] == nil || h[key] == .null { h[key] = value } }
        switch architecture {
        case .bert:
            setDefault("vocab_size", .int(30522)); setDefault("hidden_size", .int(768))
            setDefault("num_hidden_layers", .int(12)); setDefault("num_attention_heads", .int(12))
            setDefault("intermediate_size", .int(3072)); setDefault("max_position_embeddings", .int(512))
            setDefault("type_vocab_size", .int(2)); setDefault("layer_norm_eps", .double(1e-12))
        case .llama:
            setDefault("vocab_size", .int(32000)); setDefault("hidden_size", .int(4096))
            setDefault("intermediate_size", .int(11008)); setDefault("num_hidden_layers", .int(32))
            setDefault("num_attention_heads", .int(32)); setDefault("max_position_embeddings", .int(2048))
            setDefault("rms_norm_eps", .double(1e-6)); setDefault("rope_theta", .double(10000))
            if h["num_key_value_heads"] == nil || h["num_key_value_heads"] == .null { h["num_key_value_heads"] = h["num_attention_heads"] }
            if let hidden = h["hidden_size"]?.int, let heads = h["num_attention_heads"]?.int, heads > 0 {
                setDefault("head_dim", .int(hidden / heads))
            }
        }
        return h
    }

    private func hparam(_ keys: [String]) -> HFJSON? {
        for k in keys { if let v = hparams[k], v != .null { return v } }
        return nil
    }

    private var blockCount: Int { hparams["num_hidden_layers"]!.int! }

    /// llama.cpp's `--outtype auto`: BF16 or F16 after the first matrix (2-D or more) stored in
    /// that type, F16 when every matrix is F32.
    public func automaticOutputType() throws -> OutputType {
        for source in try sourceTensors() {
            guard filteredName(source.name) != nil else { continue }
            let info = try source.file.info(source.name)
            guard info.shape.count >= 2 else { continue }
            if info.dtype == .bf16 { return .bf16 }
            if info.dtype == .f16 { return .f16 }
        }
        return .f16
    }

    // MARK: - Conversion

    /// Converts the checkpoint and writes the GGUF file to `url` (through a temporary file beside
    /// it, renamed into place).
    public func convert(to url: URL, outputType: OutputType, progress: Progress? = nil) throws {
        let directoryOfOutput = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directoryOfOutput.path, isDirectory: &isDirectory), isDirectory.boolValue,
              FileManager.default.isWritableFile(atPath: directoryOfOutput.path) else {
            throw SwiftletError.io(path: url.path, reason: "cannot write: \(directoryOfOutput.path) is not a writable folder")
        }
        let writer = try makeWriter(outputType: outputType, progress: progress)
        try writer.write(to: url)
    }

    /// The GGUF file as a writer (metadata and converted tensors), without writing it.
    public func makeWriter(outputType: OutputType, progress: Progress? = nil) throws -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", .string(architecture.rawValue))
        try addTensors(to: &w, outputType: outputType, progress: progress)
        w.set("general.type", .string("model"))
        let total = w.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var authorship = HFAuthorshipMetadata(directory: directory, config: config, totalParameters: total)
        if authorship.sizeLabel == nil, total > 0 { authorship.sizeLabel = HFAuthorshipMetadata.sizeLabel(parameters: total) }
        authorship.write(to: &w)
        try addParameters(to: &w, outputType: outputType)
        w.set("general.quantization_version", .uint32(2))
        try addVocabulary(to: &w)
        return w
    }

    private struct SourceTensor {
        let name: String
        let file: SafetensorsFile
    }

    /// The checkpoint's tensors in the converter's order: shard files by name, each shard's
    /// tensors by name.
    private func sourceTensors() throws -> [SourceTensor] {
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        let files = checkpoint.files.sorted { $0.path < $1.path }
        return files.flatMap { file in
            file.tensors.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                .map { SourceTensor(name: $0, file: file) }
        }
    }

    private func addTensors(to w: inout GGUFWriter, outputType: OutputType, progress: Progress?) throws {
        let sources = try sourceTensors()
        var written = Set<String>()
        for (index, source) in sources.enumerated() {
            defer { progress?(index + 1, sources.count) }
            guard let hfName = filteredName(source.name) else { continue }
            if hfName.hasSuffix(".attention.masked_bias") || hfName.hasSuffix(".attention.bias") || hfName.hasSuffix(".rotary_emb.inv_freq") {
                continue
            }
            guard let ggufName = mappedName(hfName) else { throw SwiftletError.unexpectedTensor(source.name) }
            let info = try source.file.info(source.name)
            guard info.dtype.isFloatConvertible else {
                throw SwiftletError.unsupportedTensorType("\(info.dtype.rawValue) for tensor '\(source.name)'")
            }
            let tensor = try source.file.floats(source.name)
            var values = tensor.values
            if architecture == .llama, let heads = permutedHeads(hfName) {
                values = try Self.permuteRoPERows(values, shape: info.shape, heads: heads, name: source.name)
            }
            let shape = Array(info.shape.reversed())
            let type = tensorType(ggufName, dimensions: info.shape.count, rowLength: shape.first ?? 1, outputType: outputType)
            try w.addTensor(name: ggufName, type: type, shape: shape, data: Self.encode(values, as: type))
            written.insert(ggufName)
        }
        if let missing = requiredTensorNames().first(where: { !written.contains($0) }) {
            throw SwiftletError.missingTensor("\(missing) (from \(directory.lastPathComponent))")
        }
    }

    /// The name after the architecture's renames, or nil for a tensor the converter skips.
    private func filteredName(_ original: String) -> String? {
        var name = original
        if name.hasSuffix("e_score_correction_bias") { name = name.replacingOccurrences(of: "e_score_correction_bias", with: "e_score_correction.bias") }
        switch architecture {
        case .bert:
            if name.hasPrefix("bert.") { name.removeFirst(5) }
            if name.hasSuffix(".gamma") { name = String(name.dropLast(6)) + ".weight" }
            if name.hasSuffix(".beta") { name = String(name.dropLast(5)) + ".bias" }
            if ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"].contains(name)
                || name.hasPrefix("cls.predictions") || name.hasPrefix("cls.seq_relationship") {
                return nil
            }
        case .llama:
            name = name.replacingOccurrences(of: "text_model.", with: "")
            if huggingFaceArchitecture == "LlamaModel" { name = "model." + name }
        }
        return name.replacingOccurrences(of: "language_model.", with: "")
    }

    /// llama.cpp's tensor name for a Hugging Face name (suffix `.weight` / `.bias` kept).
    private func mappedName(_ name: String) -> String? {
        var base = name, suffix = ""
        for s in [".weight", ".bias"] where name.hasSuffix(s) { base = String(name.dropLast(s.count)); suffix = s }
        let parts = base.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        switch architecture {
        case .bert:
            let global = ["embeddings.word_embeddings": "token_embd", "embeddings.position_embeddings": "position_embd",
                          "embeddings.token_type_embeddings": "token_types", "embeddings.LayerNorm": "token_embd_norm"]
            if let g = global[base] { return g + suffix }
            guard parts.count > 3, parts[0] == "encoder", parts[1] == "layer", let layer = Int(parts[2]), layer < blockCount else { return nil }
            let local = ["attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
                         "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
                         "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"]
            return local[parts[3...].joined(separator: ".")].map { "blk.\(layer).\($0)\(suffix)" }
        case .llama:
            let global = ["model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"]
            if let g = global[base] { return g + suffix }
            guard parts.count > 3, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]), layer < blockCount else { return nil }
            let local = ["input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                         "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
                         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"]
            return local[parts[3...].joined(separator: ".")].map { "blk.\(layer).\($0)\(suffix)" }
        }
    }

    /// The tensors a runnable file of this architecture needs.
    private func requiredTensorNames() -> [String] {
        let perLayer: [String]
        var global: [String]
        switch architecture {
        case .bert:
            global = ["token_embd.weight", "position_embd.weight", "token_types.weight", "token_embd_norm.weight", "token_embd_norm.bias"]
            perLayer = ["attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight", "attn_v.bias",
                        "attn_output.weight", "attn_output.bias", "attn_output_norm.weight", "attn_output_norm.bias",
                        "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias",
                        "layer_output_norm.weight", "layer_output_norm.bias"]
        case .llama:
            global = ["token_embd.weight", "output_norm.weight"]
            perLayer = ["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                        "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"]
        }
        for l in 0..<blockCount { global += perLayer.map { "blk.\(l).\($0)" } }
        return global
    }

    /// Heads whose rows `name` interleaves for ggml's RoPE: all query heads for Q, the key/value
    /// heads for K.
    private func permutedHeads(_ name: String) -> Int? {
        let heads = hparam(["n_heads", "num_attention_heads"])?.int
        if name.hasSuffix("q_proj.weight") || name.hasSuffix("q_proj.bias") { return heads }
        if name.hasSuffix("k_proj.weight") || name.hasSuffix("k_proj.bias") {
            return hparam(["n_kv_heads", "num_key_value_heads"])?.int ?? heads
        }
        return nil
    }

    /// Reorders the rows of each head from Hugging Face's half-split rotary layout to ggml's
    /// interleaved pairs: row `i` of the first half and row `i` of the second become rows
    /// `2i` and `2i+1`.
    static func permuteRoPERows(_ values: [Float], shape: [Int], heads: Int, name: String) throws -> [Float] {
        let rows = shape.first ?? 0
        let rowLength = shape.dropFirst().reduce(1, *)
        guard heads > 0, rows % (2 * heads) == 0 else {
            throw SwiftletError.shapeMismatch(op: "permute \(name)", detail: "\(rows) rows do not split into \(heads) heads of pairs")
        }
        let half = rows / heads / 2
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for i in 0..<half {
                        for j in 0..<2 {
                            let from = (h * 2 * half + j * half + i) * rowLength
                            let to = (h * 2 * half + 2 * i + j) * rowLength
                            for k in 0..<rowLength { dst[to + k] = src[from + k] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The converter's type rule: 1-D tensors, norms, biases, position and token-type embeddings
    /// stay F32; a Q8_0 matrix whose rows are not whole blocks falls back to F16.
    private func tensorType(_ name: String, dimensions: Int, rowLength: Int, outputType: OutputType) -> GGMLType {
        if dimensions <= 1 || name.hasSuffix("_norm.weight") { return .f32 }
        if name == "position_embd.weight" || name == "token_types.weight" || !name.hasSuffix(".weight") { return .f32 }
        let type = outputType.tensorType
        if type.traits.blockSize > 1 && rowLength % type.traits.blockSize != 0 { return .f16 }
        return type
    }

    /// `values` encoded as `type` (rows of `type`'s blocks for Q8_0).
    static func encode(_ values: [Float], as type: GGMLType) throws -> Data {
        switch type {
        case .f32:
            return values.withUnsafeBytes { Data($0) }
        case .f16, .bf16:
            var half = [UInt16](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { src in
                half.withUnsafeMutableBufferPointer { dst in
                    if type == .f16 {
                        HalfPrecision.convertFloatToF16(src.baseAddress!, dst.baseAddress!, count: values.count)
                    } else {
                        HalfPrecision.convertFloatToBF16(src.baseAddress!, dst.baseAddress!, count: values.count)
                    }
                }
            }
            return half.withUnsafeBytes { Data($0) }
        default:
            guard let bytes = type.rowBytes(values.count) else {
                throw SwiftletError.invalidArgument("\(values.count) values are not whole \(type) blocks")
            }
            var data = Data(count: bytes)
            try values.withUnsafeBufferPointer { src in
                try data.withUnsafeMutableBytes { out in
                    try quantize(type, src: src.baseAddress!, count: values.count, into: out)
                }
            }
            return data
        }
    }

    // MARK: - Metadata

    private func addParameters(to w: inout GGUFWriter, outputType: OutputType) throws {
        let a = architecture.rawValue
        func u32(_ key: String, _ v: HFJSON?) throws {
            guard let v else { return }
            guard let i = v.int, let u = UInt32(exactly: i) else {
                throw SwiftletError.malformedFile(path: directory.appendingPathComponent("config.json").path, reason: "\(key) = \(v) is not an unsigned integer")
            }
            w.set(key, .uint32(u))
        }
        func f32(_ key: String, _ v: HFJSON?) {
            if let d = v?.number { w.set(key, .float32(Float(d))) }
        }
        try u32("\(a).block_count", .int(blockCount))
        try u32("\(a).context_length", hparam(["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"]))
        try u32("\(a).embedding_length", hparam(["hidden_size", "n_embd", "dim"]))
        try u32("\(a).feed_forward_length", hparam(["prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim"]))
        try u32("\(a).attention.head_count", hparam(["num_attention_heads", "n_head", "n_heads"]))
        try u32("\(a).attention.head_count_kv", hparam(["num_key_value_heads", "n_kv_heads"]))
        if hparams["is_causal"] == .bool(false) { w.set("\(a).attention.causal", .bool(false)) }
        let rope = hparams["rope_parameters"]?.object ?? hparams["rope_scaling"]?.object
        if let ropeType = (rope?["rope_type"] ?? rope?["type"])?.string {
            let factor = rope?["factor"]?.number
            switch ropeType {
            case "linear" where factor != nil:
                w.set("\(a).rope.scaling.type", .string("linear")); w.set("\(a).rope.scaling.factor", .float32(Float(factor!)))
            case "dynamic", "default": break
            default:
                throw SwiftletError.unsupportedArchitecture("\(huggingFaceArchitecture) with rope_type \(ropeType)", supported: ["none", "linear"])
            }
        }
        f32("\(a).rope.freq_base", rope?["rope_theta"] ?? hparam(["global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"]))
        f32("\(a).attention.layer_norm_rms_epsilon", hparam(["rms_norm_eps", "norm_eps"]))
        f32("\(a).attention.layer_norm_epsilon", hparam(["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"]))
        if let headDim = hparams["head_dim"], headDim != .null {
            try u32("\(a).attention.key_length", headDim); try u32("\(a).attention.value_length", headDim)
        }
        w.set("general.file_type", .uint32(outputType.fileType))
        switch architecture {
        case .bert:
            w.set("\(a).attention.causal", .bool(false))
            if let pooling = try poolingType() { w.set("\(a).pooling_type", .uint32(pooling)) }
        case .llama:
            try u32("\(a).vocab_size", hparams["vocab_size"])
            let ropeDim = hparams["head_dim"]?.int ?? hparams["hidden_size"]!.int! / hparams["num_attention_heads"]!.int!
            try u32("\(a).rope.dimension_count", .int(ropeDim))
        }
    }

    /// llama.cpp's pooling type from the sentence-transformers `Pooling` module (1 mean, 2 CLS,
    /// 3 last token), or nil without one.
    private func poolingType() throws -> UInt32? {
        let modulesURL = directory.appendingPathComponent("modules.json")
        guard FileManager.default.fileExists(atPath: modulesURL.path) else { return nil }
        guard let modules = try HFJSON.load(modulesURL).array,
              let path = modules.first(where: { $0["type"]?.string?.hasSuffix("Pooling") == true })?["path"]?.string else { return nil }
        guard !path.contains(".."), !path.hasPrefix("/") else {
            throw SwiftletError.malformedFile(path: modulesURL.path, reason: "pooling path '\(path)' leaves the model folder")
        }
        let pooling = try HFJSON.load(directory.appendingPathComponent(path).appendingPathComponent("config.json"))
        if pooling["pooling_mode_mean_tokens"]?.isTruthy == true { return 1 }
        if pooling["pooling_mode_cls_token"]?.isTruthy == true { return 2 }
        if pooling["pooling_mode_lasttoken"]?.isTruthy == true { return 3 }
        switch pooling["pooling_mode"]?.string {
        case "mean": return 1
        case "cls": return 2
        case "lasttoken": return 3
        default: throw SwiftletError.unsupportedArchitecture("pooling mode of \(path)", supported: ["mean", "cls", "lasttoken"])
        }
    }

    private func addVocabulary(to w: inout GGUFWriter) throws {
        let vocabSize = hparams["vocab_size"]?.int
        var vocabulary = try HFVocabulary(directory: directory, vocabSize: vocabSize)
        let pre = try vocabulary.preTokenizerName()
        switch architecture {
        case .bert:
            guard vocabulary.modelType == "WordPiece" else {
                throw SwiftletError.unsupportedTokenizer("\(directory.path): a BERT checkpoint with a \(vocabulary.modelType) tokenizer")
            }
            w.set("tokenizer.ggml.token_type_count", .uint32(UInt32(hparams["type_vocab_size"]?.int ?? 1)))
            // llama.cpp's WordPiece vocabulary marks word starts with U+2581 instead of
            // continuations with "##".
            for i in vocabulary.tokens.indices where vocabulary.tokenTypes[i] != TokenKind.control.rawValue {
                // Code points, not characters: "##" followed by a combining mark is one Character.
                let t = vocabulary.tokens[i].utf8
                vocabulary.tokens[i] = t.starts(with: "##".utf8) ? String(decoding: t.dropFirst(2), as: UTF8.self) : "\u{2581}" + vocabulary.tokens[i]
            }
            w.set("tokenizer.ggml.model", .string("bert"))
            w.set("tokenizer.ggml.pre", .string(pre))
            w.set("tokenizer.ggml.tokens", .array(.string(vocabulary.tokens)))
            w.set("tokenizer.ggml.token_type", .array(.int32(vocabulary.tokenTypes)))
            try vocabulary.writeSpecialVocabulary(to: &w, config: config, loadMerges: false, tokenCount: vocabulary.tokens.count)
        case .llama:
            guard vocabulary.modelType == "BPE" else {
                throw SwiftletError.unsupportedTokenizer("\(directory.path): a Llama checkpoint with a \(vocabulary.modelType) tokenizer.json (SentencePiece tokenizer.model is not converted)")
            }
            if let space = vocabulary.addPrefixSpace { w.set("tokenizer.ggml.add_space_prefix", .bool(space)) }
            w.set("tokenizer.ggml.model", .string("gpt2"))
            w.set("tokenizer.ggml.pre", .string(pre))
            w.set("tokenizer.ggml.tokens", .array(.string(vocabulary.tokens)))
            w.set("tokenizer.ggml.token_type", .array(.int32(vocabulary.tokenTypes)))
            try vocabulary.writeSpecialVocabulary(to: &w, config: config, loadMerges: true, tokenCount: nil)
            if vocabSize == 49152 { w.set("tokenizer.ggml.add_bos_token", .bool(false)) }
        }
    }
}
