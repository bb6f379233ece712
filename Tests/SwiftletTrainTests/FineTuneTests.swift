import XCTest
import Foundation
import SwiftletTensor
import SwiftletFormats
import SwiftletTokenizers
import SwiftletModels
import SwiftletTestSupport
@testable import SwiftletTrain

/// LoRA fine-tuning of the real SmolLM2 Q4_1 file on a few fortune-chat conversations: the
/// held-out loss falls, the adapter written loads in the inference runtime (which then scores the
/// held-out examples as the training graph does), and bad data is refused by file and line.
final class FineTuneTests: XCTestCase {
    static let data = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/fortune-chat/fortune-chat.jsonl")

    func loadBase() throws -> (GGUFFile, Transformer, any Tokenizer, ChatTemplate) {
        let file = try GGUFFile(url: RealModel.smollm2.url())
        return (file, try Transformer.load(gguf: file, contextLength: 96, maxBatch: 96), try Tokenizers.load(gguf: file),
                try ChatTemplate(gguf: file))
    }

    func testFineTuneLowersHeldOutLossAndTheAdapterLoads() throws {
        let (_, transformer, tokenizer, template) = try loadBase()
        let lines = try String(contentsOf: Self.data, encoding: .utf8).split(separator: "\n").prefix(40).joined(separator: "\n")
        let dataset = try FineTuneDataset.chat(jsonl: lines, path: Self.data.path, tokenizer: tokenizer, template: template,
                                               sequenceLength: 96, heldOutFraction: 0.1)
        XCTAssertEqual(dataset.heldOut.count, 4)
        var configuration = FineTuneConfiguration()
        configuration.batchSize = 4; configuration.sequenceLength = 96; configuration.maxSteps = 6
        configuration.learningRate = 2e-3; configuration.warmupSteps = 1
        let tuner = try FineTuner(config: transformer.config, weights: transformer.weights,
                                  settings: LoRASettings(rank: 4, alpha: 8, targets: [.attentionQuery, .attentionValue, .ffnDown]),
                                  dataset: dataset, configuration: configuration)
        let before = tuner.heldOutLoss()
        for _ in 0..<configuration.maxSteps { tuner.trainStep() }
        let after = tuner.heldOutLoss()
        print("FINETUNE held-out loss \(before) -> \(after)")
        XCTAssertLessThan(after, before * 0.95)

        // The written adapter in the inference runtime: the held-out examples' mean NLL over their
        // scored tokens matches the training graph's (which uses f32 attention, the runtime f16).
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("finetune-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try tuner.writeAdapter(to: url)
        let adapter = try LoRAAdapter(url: url)
        XCTAssertEqual(adapter.pairs.count, 3 * transformer.config.layerCount)
        XCTAssertEqual(adapter.alpha, 8)
        try transformer.setAdapters([ScaledAdapter(adapter)])
        var total = 0.0, count = 0
        for example in dataset.heldOut {
            let ids = Array(example.tokens.prefix(96))
            try ids.withUnsafeBufferPointer { buffer in
                try transformer.evaluate(buffer, at: 0, logits: .all) { i, logits in
                    guard i + 1 < ids.count, example.scored[i + 1] else { return }
                    let m = logits.max()!
                    let lse = Double(m) + log(logits.reduce(0.0) { $0 + exp(Double($1 - m)) })
                    total += lse - Double(logits[Int(ids[i + 1])])
                    count += 1
                }
            }
        }
        let runtime = total / Double(count)
        print("FINETUNE held-out loss in the runtime with the adapter: \(runtime)")
        XCTAssertEqual(runtime, Double(after), accuracy: 0.03 * Double(after))
    }

    func testMalformedJSONLNamesFileAndLine() throws {
        let (_, _, tokenizer, template) = try loadBase()
        let good = #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}"#
        for (bad, reason) in [("{\"messages\": [", "not valid JSON"), ("{\"turns\": []}", "messages"),
                              (#"{"messages": [{"role": "user", "content": "Hi"}]}"#, "no assistant turn"),
                              (#"{"messages": [{"role": "user", "content": 3}]}"#, "role")] {
            let text = [good, "", good, bad, good].joined(separator: "\n")
            XCTAssertThrowsError(try FineTuneDataset.chat(jsonl: text, path: "/data/chat.jsonl", tokenizer: tokenizer, template: template,
                                                          sequenceLength: 64, heldOutFraction: 0.1)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("/data/chat.jsonl") && message.contains("line 4") && message.contains(reason), message)
            }
        }
    }

    /// Only the assistant's turn (its text and end-of-turn markup) is scored.
    func testChatMaskCoversTheAssistantTurnOnly() throws {
        let (_, _, tokenizer, template) = try loadBase()
        let line = #"{"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]}"#
        let dataset = try FineTuneDataset.chat(jsonl: line + "\n" + line, path: "x", tokenizer: tokenizer, template: template,
                                               sequenceLength: 64, heldOutFraction: 0)
        let example = dataset.training[0]
        let scored = zip(example.tokens, example.scored).filter(\.1).map { $0.0 }
        let text = scored.map { tokenizer.piece($0) }.joined()
        XCTAssertEqual(text, "Blue.<|im_end|>\n")
        let whole = example.tokens.map { tokenizer.piece($0) }.joined()
        XCTAssertTrue(whole.hasSuffix("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"), whole)
    }

    /// Gemma 3's sliding-window layers are recorded without the window: longer sequences are refused.
    func testSequenceBeyondTheSlidingWindowIsRefused() throws {
        let file = try GGUFFile(url: RealModel.gemma3.url())
        let transformer = try Transformer.load(gguf: file, contextLength: 64, maxBatch: 8)
        XCTAssertThrowsError(try LoRATrainingModel(config: transformer.config, weights: transformer.weights,
                                                   settings: LoRASettings(), batch: 1, sequenceLength: transformer.config.slidingWindow + 1)) { error in
            XCTAssertTrue("\(error)".contains("sliding window"), "\(error)")
        }
    }
}
