import XCTest
import Foundation
import SwiftletTensor
import SwiftletFormats
import SwiftletTokenizers
import SwiftletModels
import SwiftletTestSupport
@testable import SwiftletTrain

/// The LoRA training graph with B = 0 computes the base model: its logits equal the inference
/// runtime's (which equals llama.cpp) position by position, on the real files.
final class LoRAForwardTests: XCTestCase {
    struct Agreement {
        /// max over positions of max |Δ logit| / max |logit| of the row.
        var worstRelative: Double
        /// Mean next-token NLL of the training graph and of the runtime.
        var trainingNLL: Double, runtimeNLL: Double
    }

    /// Evaluates `text` (with BOS) in both and compares; with `layers` set, also reports the
    /// first diverging residual stream.
    func compare(_ url: URL, text: String, length: Int, file: StaticString = #filePath, line: UInt = #line) throws -> Agreement {
        let gguf = try GGUFFile(url: url)
        let transformer = try Transformer.load(gguf: gguf, contextLength: length, maxBatch: length, cacheType: .f32)
        let tokenizer = try Tokenizers.load(gguf: gguf)
        let ids = Array(tokenizer.encode(text, addSpecial: true, parseSpecial: false).prefix(length))
        XCTAssertEqual(ids.count, length, "text too short", file: file, line: line)
        let model = try LoRATrainingModel(config: transformer.config, weights: transformer.weights,
                                          settings: LoRASettings(rank: 4, alpha: 8), batch: 1, sequenceLength: length)
        try model.inputs.set(ids)
        try model.targets.set((0..<length).map { $0 + 1 < length ? ids[$0 + 1] : -1 })
        let trainingLoss = model.forward()

        var residuals: [String: [Float]] = [:]
        transformer.activationTap = { name, values in
            if name.hasPrefix("l_out-") { residuals[name] = Array(values) }
        }
        let vocab = transformer.config.vocabSize
        var worst = 0.0, nll = 0.0
        try ids.withUnsafeBufferPointer { buffer in
            try transformer.evaluate(buffer, at: 0, logits: .all) { i, logits in
                let trained = model.logits.value + i * vocab
                var diff: Float = 0, scale: Float = 0
                for j in 0..<vocab {
                    diff = max(diff, abs(trained[j] - logits[j]))
                    scale = max(scale, abs(logits[j]))
                }
                worst = max(worst, Double(diff / scale))
                if i + 1 < ids.count {
                    let m = logits.max()!
                    nll += Double(m) + log(logits.reduce(0.0) { $0 + exp(Double($1 - m)) }) - Double(logits[Int(ids[i + 1])])
                }
            }
        }
        let byName = Dictionary(model.tape.activations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for l in 0..<transformer.config.layerCount {
            guard let want = residuals["l_out-\(l)"], let got = byName["blk.\(l).ffn_residual"] else { continue }
            var diff: Float = 0, scale: Float = 0
            for j in 0..<want.count {
                diff = max(diff, abs(got.value[j] - want[j])); scale = max(scale, abs(want[j]))
            }
            print("FORWARD \(url.lastPathComponent) layer \(l): max |Δ| / max = \(diff / scale)")
        }
        let agreement = Agreement(worstRelative: worst, trainingNLL: Double(trainingLoss), runtimeNLL: nll / Double(length - 1))
        print("FORWARD \(url.lastPathComponent): worst relative logit difference \(agreement.worstRelative), NLL training \(agreement.trainingNLL) runtime \(agreement.runtimeNLL)")
        return agreement
    }

    static var text: String {
        (try? String(contentsOf: Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/train-corpus/Apache-2.0.txt"), encoding: .utf8)) ?? ""
    }

    func testGemma3ForwardEqualsInference() throws {
        let a = try compare(RealModel.gemma3.url(), text: Self.text, length: 64)
        XCTAssertLessThan(a.worstRelative, 0.15)
        XCTAssertEqual(a.trainingNLL, a.runtimeNLL, accuracy: 1e-2 * a.runtimeNLL)
    }

    /// The synthetic Qwen3 and Phi-3 files of `scripts/make_synthetic_models.py` (small random
    /// weights; the runtime equals llama.cpp on them, see SyntheticModelTests).
    static func syntheticModel(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-lora-synthetic-\(getpid())")
        let url = dir.appendingPathComponent(name + ".gguf")
        if FileManager.default.fileExists(atPath: url.path) { return url }
        try Python.requireGGUFPy()
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/make_synthetic_models.py").path
        let (status, _, err) = try Python.run([script, try RealModel.smollm2.url().path, dir.path])
        guard status == 0 else { throw Python.skipOrFail("make_synthetic_models.py failed: \(err)") }
        return url
    }

    func testQwen2ForwardEqualsInference() throws {
        let a = try compare(RealModel.qwen2.url(), text: Self.text, length: 48)
        XCTAssertLessThan(a.worstRelative, 0.15)
        XCTAssertEqual(a.trainingNLL, a.runtimeNLL, accuracy: 1e-2 * a.runtimeNLL)
    }

    func testQwen3ForwardEqualsInference() throws {
        let a = try compare(Self.syntheticModel("qwen3"), text: Self.text, length: 24)
        XCTAssertLessThan(a.worstRelative, 0.15)
        XCTAssertEqual(a.trainingNLL, a.runtimeNLL, accuracy: 1e-2 * a.runtimeNLL)
    }

    func testPhi3ForwardEqualsInference() throws {
        let a = try compare(Self.syntheticModel("phi3"), text: Self.text, length: 24)
        XCTAssertLessThan(a.worstRelative, 0.15)
        XCTAssertEqual(a.trainingNLL, a.runtimeNLL, accuracy: 1e-2 * a.runtimeNLL)
    }

    func testSmolLM2ForwardEqualsInference() throws {
        let a = try compare(RealModel.smollm2.url(), text: Self.text, length: 64)
        XCTAssertLessThan(a.worstRelative, 0.15)
        XCTAssertEqual(a.trainingNLL, a.runtimeNLL, accuracy: 1e-2 * a.runtimeNLL)
    }
}
