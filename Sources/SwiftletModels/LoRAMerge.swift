import Foundation
import CSwiftletKernels
import SwiftletTensor
import SwiftletQuant
import SwiftletFormats

extension LoRAAdapter {
    /// A copy of `base` with `adapters` merged into its weights, as llama.cpp's
    /// `llama-export-lora` writes it: every adapted tensor becomes `W + Σ scale·B·A` (the base
    /// dequantized to f32, the product in ggml's float order), stored F16 (F32 when the base
    /// tensor is F32); the other tensors are copied as they are; tensors in name order;
    /// `general.file_type` set to F16 (moved last, as gguf's setter does). The result can be requantized with `Quantizer`.
    ///
    /// - Throws: what applying the adapters to `base` throws (another architecture, a tensor
    ///   the base lacks or of another shape), and ``SwiftletError/invalidArgument(_:)`` when the
    ///   adapters do not adapt the same tensors (llama-export-lora merges only such sets).
    public static func merge(_ adapters: [ScaledAdapter], into base: GGUFFile) throws -> GGUFWriter {
        guard let first = adapters.first else { throw SwiftletError.invalidArgument("no adapter to merge") }
        try ScaledAdapter.checkScales(adapters)
        let basePath = base.url?.path ?? "<memory>"
        let architecture = try base.string("general.architecture")
        var pairs: [String: [(LoRAAdapter.Pair, ScaledAdapter)]] = [:]
        for scaled in adapters {
            guard scaled.adapter.architecture == architecture else {
                throw SwiftletError.invalidArgument(
                    "\(scaled.adapter.path): LoRA adapter made for a '\(scaled.adapter.architecture)' model, \(basePath) is '\(architecture)'")
            }
            guard Set(scaled.adapter.pairs.map(\.target)) == Set(first.adapter.pairs.map(\.target)) else {
                throw SwiftletError.invalidArgument("the adapters do not adapt the same tensors; merge them one at a time")
            }
            for pair in scaled.adapter.pairs { pairs[pair.target, default: []].append((pair, scaled)) }
        }
        var writer = GGUFWriter()
        writer.version = base.version
        for key in base.metadataKeys { writer.set(key, base.metadata[key]!) }
        // gguf_set_val on an existing key moves it last.
        writer.removeValue(forKey: "general.file_type")
        writer.set("general.file_type", .uint32(1))
        let byName = Dictionary(base.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for target in pairs.keys where byName[target] == nil {
            throw SwiftletError.invalidArgument(
                "\(first.adapter.path): LoRA tensor '\(target)' does not exist in \(basePath) (an adapter for another model?)")
        }
        for name in byName.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let info = byName[name]!
            let data = base.data(for: info)
            guard let list = pairs[name] else {
                try writer.addTensor(name: name, type: info.type, shape: info.shape, data: Data(data))
                continue
            }
            guard info.shape.count == 2 else {
                throw SwiftletError.shapeMismatch(op: "merge \(name)", detail: "base tensor has shape \(info.shape)")
            }
            let cols = info.shape[0], rows = info.shape[1], count = rows * cols
            var merged = [Float](repeating: 0, count: count)
            let matrix = try QuantizedMatrix(type: info.type, rows: rows, cols: cols, data: data)
            merged.withUnsafeMutableBufferPointer { out in
                for r in 0..<rows { matrix.dequantizeRow(r, into: out.baseAddress! + r * cols) }
            }
            for (pair, scaled) in list {
                guard pair.inputs == cols, pair.outputs == rows else {
                    throw SwiftletError.shapeMismatch(
                        op: "LoRA adapter \(scaled.adapter.path)",
                        detail: "'\(name)' is [\(cols), \(rows)] in \(basePath), the adapter's factors give [\(pair.inputs), \(pair.outputs)] (an adapter for another model?)")
                }
                let rank = pair.rank
                // Aᵀ (`cols` rows of `rank`) and B (`rows` rows of `rank`) as f32, as ggml_cast does.
                let a = scaled.adapter.factor(pair.a), b = scaled.adapter.factor(pair.b)
                var aT = [Float](repeating: 0, count: cols * rank)
                for r in 0..<rank { for c in 0..<cols { aT[c * rank + r] = a[r * cols + c] } }
                var delta = [Float](repeating: 0, count: count)
                aT.withUnsafeBufferPointer { w in
                    b.withUnsafeBufferPointer { x in
                        delta.withUnsafeMutableBufferPointer { y in
                            swiftlet_gc_mul_mat_float(0, w.baseAddress!, rank, cols, 0, cols, x.baseAddress!, rows, y.baseAddress!, cols)
                        }
                    }
                }
                let scale = scaled.adapter.scale(userScale: scaled.scale, rank: rank)
                for i in 0..<count {
                    let d = delta[i] * scale
                    merged[i] = d + merged[i]
                }
            }
            if info.type == .f32 {
                try writer.addTensor(name: name, shape: info.shape, float32: merged)
            } else {
                var half = Data(count: count * 2)
                half.withUnsafeMutableBytes { raw in
                    merged.withUnsafeBufferPointer {
                        HalfPrecision.convertFloatToF16($0.baseAddress!, raw.bindMemory(to: UInt16.self).baseAddress!, count: count)
                    }
                }
                try writer.addTensor(name: name, type: .f16, shape: info.shape, data: half)
            }
        }
        return writer
    }

    /// A factor's values as f32.
    func factor(_ info: GGUFTensorInfo) -> [Float] {
        let bytes = file.data(for: info)
        var out = [Float](repeating: 0, count: info.elementCount)
        out.withUnsafeMutableBufferPointer { o in
            if info.type == .f16 {
                HalfPrecision.convertF16ToFloat(bytes.baseAddress!.assumingMemoryBound(to: UInt16.self), o.baseAddress!, count: o.count)
            } else {
                UnsafeMutableRawBufferPointer(o).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0 ..< o.count * 4]))
            }
        }
        return out
    }
}
