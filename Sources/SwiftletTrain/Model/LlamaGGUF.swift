import Foundation
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats

/// Element type of exported weights.
public enum ExportPrecision: String, Sendable, CaseIterable, Codable {
    case f32, f16
}

/// Writing a Llama parameter set as a `llama` GGUF, and reading one back.
public enum LlamaGGUF {
    /// A writer holding the architecture keys, `vocabulary`'s tokenizer keys and the weights.
    /// Matrices take `precision`; norm weights (one row) stay F32, as llama.cpp's converter does.
    public static func writer(shape: LlamaShape, parameters: ParameterStore, vocabulary: TrainingVocabulary,
                              precision: ExportPrecision = .f32, name: String = "swiftlet-trained") throws -> GGUFWriter {
        guard vocabulary.size == shape.vocabSize else {
            throw SwiftletError.shapeMismatch(op: "export", detail: "vocabulary of \(vocabulary.size) tokens, model of \(shape.vocabSize)")
        }
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.name", .string(name))
        w.set("general.file_type", .uint32(precision == .f32 ? 0 : 1))
        setShape(shape, in: &w)
        for (key, value) in vocabulary.metadata { w.set(key, value) }
        for p in parameters.parameters {
            try addTensor(p, precision: p.rows == 1 ? .f32 : precision, to: &w)
        }
        return w
    }

    static func setShape(_ shape: LlamaShape, in w: inout GGUFWriter) {
        w.set("llama.vocab_size", .uint32(UInt32(shape.vocabSize)))
        w.set("llama.context_length", .uint32(UInt32(shape.contextLength)))
        w.set("llama.embedding_length", .uint32(UInt32(shape.dim)))
        w.set("llama.block_count", .uint32(UInt32(shape.layerCount)))
        w.set("llama.feed_forward_length", .uint32(UInt32(shape.ffnDim)))
        w.set("llama.rope.dimension_count", .uint32(UInt32(shape.headDim)))
        w.set("llama.attention.head_count", .uint32(UInt32(shape.headCount)))
        w.set("llama.attention.head_count_kv", .uint32(UInt32(shape.kvHeadCount)))
        w.set("llama.attention.layer_norm_rms_epsilon", .float32(shape.normEpsilon))
        w.set("llama.rope.freq_base", .float32(shape.ropeBase))
    }

    /// Appends `variable` (GGUF shape: columns first) as F32 or F16.
    static func addTensor(_ v: Variable, name: String? = nil, precision: ExportPrecision, to w: inout GGUFWriter) throws {
        let shape = v.rows == 1 ? [v.columns] : [v.columns, v.rows]
        switch precision {
        case .f32:
            try w.addTensor(name: name ?? v.name, type: .f32, shape: shape,
                            data: Data(bytes: v.value, count: v.count * MemoryLayout<Float>.size))
        case .f16:
            var data = Data(count: v.count * 2)
            data.withUnsafeMutableBytes { raw in
                HalfPrecision.convertFloatToF16(v.value, raw.bindMemory(to: UInt16.self).baseAddress!, count: v.count)
            }
            try w.addTensor(name: name ?? v.name, type: .f16, shape: shape, data: data)
        }
    }

    /// The shape stored in a `llama` GGUF's metadata.
    public static func shape(of file: GGUFFile) throws -> LlamaShape {
        guard file.architecture == "llama" else {
            throw SwiftletError.unsupportedArchitecture(file.architecture ?? "none", supported: ["llama"])
        }
        let heads = try file.int("llama.attention.head_count")
        guard let embd = file.tensor(named: "token_embd.weight"), embd.shape.count == 2 else {
            throw SwiftletError.missingTensor("token_embd.weight")
        }
        let shape = LlamaShape(
            vocabSize: embd.shape[1], dim: try file.int("llama.embedding_length"),
            layerCount: try file.int("llama.block_count"), headCount: heads,
            kvHeadCount: try file.intIfPresent("llama.attention.head_count_kv") ?? heads,
            ffnDim: try file.int("llama.feed_forward_length"),
            contextLength: try file.int("llama.context_length"),
            normEpsilon: try file.float("llama.attention.layer_norm_rms_epsilon"),
            ropeBase: try file.floatIfPresent("llama.rope.freq_base") ?? 10_000)
        try shape.validate()
        return shape
    }

    /// Copies the tensor `name` (F32 or F16) of `file` into `variable`.
    static func load(_ v: Variable, from file: GGUFFile, name: String? = nil) throws {
        let tensorName = name ?? v.name
        guard let info = file.tensor(named: tensorName) else { throw SwiftletError.missingTensor(tensorName) }
        guard info.shape.reduce(1, *) == v.count else {
            throw SwiftletError.shapeMismatch(op: "load \(tensorName)", detail: "file has \(info.shape), expected \(v.rows)×\(v.columns)")
        }
        let bytes = file.data(for: info)
        switch info.type {
        case .f32:
            guard bytes.count == v.count * 4 else { throw SwiftletError.malformedFile(path: file.url?.path ?? "", reason: "\(tensorName) size") }
            memcpy(v.value, bytes.baseAddress!, v.count * 4)
        case .f16:
            guard bytes.count == v.count * 2 else { throw SwiftletError.malformedFile(path: file.url?.path ?? "", reason: "\(tensorName) size") }
            HalfPrecision.convertF16ToFloat(bytes.baseAddress!.assumingMemoryBound(to: UInt16.self), v.value, count: v.count)
        default:
            throw SwiftletError.unsupportedTensorType("\(info.type) for \(tensorName) (training loads F32 or F16)")
        }
    }

    /// Loads every parameter from a `llama` GGUF with matching names and shapes.
    public static func loadParameters(_ parameters: ParameterStore, from file: GGUFFile) throws {
        for p in parameters.parameters { try load(p, from: file) }
    }
}
