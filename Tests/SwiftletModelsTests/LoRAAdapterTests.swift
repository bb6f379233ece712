import XCTest
import Foundation
import Swiftlet
import SwiftletTestSupport
import CSwiftletKernels

/// LoRA adapters at inference: llama-perplexity's figures with the same adapters
/// (Tests/Fixtures/lora, see its SOURCE.md), the float order of the adapter products, and the
/// errors for adapters that do not fit the base.
final class LoRAAdapterTests: XCTestCase {
    static let fixtures = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/lora")

    func adapter(_ name: String) throws -> LoRAAdapter {
        try LoRAAdapter(url: Self.fixtures.appendingPathComponent(name))
    }

    /// `llama-perplexity --lora smollm2-rank8-f32.gguf --lora-scaled smollm2-rank16-f16.gguf:0.5`,
    /// chunk by chunk to the printed precision (F32 factors through ggml_vec_dot_f32 and tinyBLAS,
    /// F16 factors on f16-rounded activations).
    func testPerplexityEqualsLlamaCpp() throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("perplexity.json"))) as! [String: Any]
        let text = try String(contentsOf: Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/texts/GPL-3"), encoding: .utf8)
        let nCtx = (json["n_ctx"] as! NSNumber).intValue, chunks = (json["chunks"] as! NSNumber).intValue
        for run in json["runs"] as! [[String: Any]] {
            let adapters = try (run["adapters"] as! [[String: Any]]).map {
                ScaledAdapter(try adapter($0["file"] as! String), scale: ($0["scale"] as! NSNumber).floatValue)
            }
            let expected = (run["per_chunk"] as! [NSNumber]).map(\.doubleValue)
            let file = try GGUFFile(url: RealModel.smollm2.url())
            let transformer = try Transformer.load(gguf: file, contextLength: nCtx)
            try transformer.setAdapters(adapters)
            let tokenizer = try Tokenizers.load(gguf: file)
            let tokens = Array(tokenizer.encode(text, addSpecial: true, parseSpecial: false).prefix(nCtx * chunks))
            var estimates: [Double] = []
            let result = try Perplexity.measure(transformer, tokens: tokens, contextSize: nCtx,
                                                bos: tokenizer.addsBOS ? tokenizer.bosID : nil) { estimates.append($0.perplexity) }
            print("LORA PERPLEXITY \(run["name"]!): \(result.perplexity) (llama.cpp \(expected.last!))")
            XCTAssertEqual(estimates.count, expected.count)
            for (i, (ours, theirs)) in zip(estimates, expected).enumerated() {
                XCTAssertEqual(ours, theirs, accuracy: 5.1e-5, "\(run["name"]!) chunk \(i + 1)")
            }
        }
    }

    /// The adapters change the logits (the test above would otherwise only check the base).
    func testAdapterChangesLogitsAndCanBeRemoved() throws {
        let transformer = try Transformer.load(url: RealModel.smollm2.url(), contextLength: 64)
        let tokens: [TokenID] = [1, 504, 3458, 282, 4649, 314]
        func logits() throws -> [Float] {
            return try tokens.withUnsafeBufferPointer { try transformer.evaluate($0, at: 0); return Array(transformer.lastLogits) }
        }
        let base = try logits()
        try transformer.setAdapters([ScaledAdapter(adapter("smollm2-rank8-f32.gguf"))])
        let adapted = try logits()
        XCTAssertGreaterThan(zip(base, adapted).map { abs($0 - $1) }.max()!, 0.05)
        try transformer.setAdapters([ScaledAdapter(adapter("smollm2-rank8-f32.gguf"), scale: 0)])
        XCTAssertEqual(try logits(), base, "scale 0 adds exact zeros")
        try transformer.setAdapters([])
        XCTAssertEqual(try logits(), base)
    }

    /// The SIMD paths of the adapter products equal their portable oracle bit for bit, in both
    /// of llama.cpp's orders (tinyBLAS, vec_dot) and both factor types.
    func testMulMatFloatSIMDEqualsPortable() {
        var rng = SplitMix64(seed: 7)
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float(Int64(bitPattern: rng.next() >> 11) % 2001 - 1000) / 997 } }
        for (k, rows, tokens) in [(576, 8, 5), (8, 12, 3), (16, 20, 7), (1536, 4, 1), (100, 6, 2)] {
            let w = random(k * rows)
            var x = random(k * tokens)
            let w16 = w.map { Float16($0).bitPattern }
            for f16 in [0, 1] {
                if f16 == 1 { x = x.map { Float(Float16($0)) } }
                func run(portable: Int32) -> [Float] {
                    swiftlet_gc_select(portable)
                    defer { swiftlet_gc_select(0) }
                    var y = [Float](repeating: 0, count: rows * tokens)
                    if f16 == 1 {
                        swiftlet_gc_mul_mat_float(1, w16, k, rows, 0, rows, x, tokens, &y, rows)
                    } else {
                        swiftlet_gc_mul_mat_float(0, w, k, rows, 0, rows, x, tokens, &y, rows)
                    }
                    return y
                }
                let portable = run(portable: 1), simd = run(portable: 0)
                XCTAssertEqual(portable.map(\.bitPattern), simd.map(\.bitPattern), "k \(k) rows \(rows) tokens \(tokens) f16 \(f16)")
                // And both are the dot products to float accuracy.
                for r in 0..<rows {
                    var exact = 0.0
                    for i in 0..<k { exact += Double(f16 == 1 ? Float(Float16(w[r * k + i])) : w[r * k + i]) * Double(x[i]) }
                    XCTAssertEqual(Double(portable[r]), exact, accuracy: 1e-3 * max(1, abs(exact)))
                }
            }
        }
    }

    func testNonAdapterFileIsRefusedByName() throws {
        let url = try RealModel.smollm2.url()
        XCTAssertThrowsError(try LoRAAdapter(url: url)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(url.path) && message.contains("not a LoRA adapter"), message)
        }
    }

    func testAdapterForAnotherArchitectureIsRefused() throws {
        let transformer = try Transformer.load(url: RealModel.gemma3.url(), contextLength: 32)
        XCTAssertThrowsError(try transformer.setAdapters([ScaledAdapter(adapter("smollm2-rank8-f32.gguf"))])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("smollm2-rank8-f32.gguf") && message.contains("'llama'"), message)
        }
    }

    /// `--lora-scaled FILE:nan` (or inf) would make every adapted weight NaN: applying or merging
    /// such a scale is refused, naming the file.
    func testNonFiniteScaleIsRefused() throws {
        let transformer = try Transformer.load(url: RealModel.smollm2.url(), contextLength: 32)
        let base = try GGUFFile(url: RealModel.smollm2.url())
        for scale in [Float.nan, .infinity, -.infinity] {
            let scaled = [ScaledAdapter(try adapter("smollm2-rank16-f16.gguf"), scale: scale)]
            for attempt in [{ try transformer.setAdapters(scaled) }, { _ = try LoRAAdapter.merge(scaled, into: base) }] {
                XCTAssertThrowsError(try attempt()) { error in
                    let message = "\(error)"
                    XCTAssertTrue(message.contains("smollm2-rank16-f16.gguf") && message.contains("finite"), message)
                }
            }
        }
    }

    /// An adapter of the right architecture made for another model: wrong widths, or a block the
    /// base does not have.
    func testAdapterForAnotherBaseIsRefused() throws {
        let transformer = try Transformer.load(url: RealModel.smollm2.url(), contextLength: 32)
        func makeAdapter(target: String, inputs: Int, outputs: Int) throws -> LoRAAdapter {
            var w = GGUFWriter()
            w.set("general.architecture", .string("llama"))
            w.set("general.type", .string("adapter"))
            w.set("adapter.type", .string("lora"))
            w.set("adapter.lora.alpha", .float32(8))
            try w.addTensor(name: target + ".lora_a", shape: [inputs, 4], float32: [Float](repeating: 0.01, count: inputs * 4))
            try w.addTensor(name: target + ".lora_b", shape: [4, outputs], float32: [Float](repeating: 0.01, count: outputs * 4))
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("lora-\(UUID().uuidString).gguf")
            try w.write(to: url)
            addTeardownBlock { try? FileManager.default.removeItem(at: url) }
            return try LoRAAdapter(url: url)
        }
        let wide = try makeAdapter(target: "blk.0.attn_q.weight", inputs: 896, outputs: 896)
        XCTAssertThrowsError(try transformer.setAdapters([ScaledAdapter(wide)])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(wide.path) && message.contains("blk.0.attn_q.weight") && message.contains("[576, 576]"), message)
        }
        let deep = try makeAdapter(target: "blk.40.attn_q.weight", inputs: 576, outputs: 576)
        XCTAssertThrowsError(try transformer.setAdapters([ScaledAdapter(deep)])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(deep.path) && message.contains("does not exist in the base"), message)
        }
        XCTAssertTrue(transformer.adapters.isEmpty, "a refused adapter leaves the model as it was")
    }
}

