import XCTest
import SwiftletModels
import SwiftletFormats
import SwiftletTensor
import SwiftletTestSupport

/// Batched decode (`GenerationSession.step(_:tokens:)`): every sequence's logits equal, bit for bit,
/// what it gets when decoded alone — on the real models' weight types and on the f32 cache path.
final class BatchedDecodeTests: XCTestCase {
    /// Prompts of different lengths, so the sequences of one step sit at different positions.
    private static let prompts: [[TokenID]] = [
        [1, 2, 3, 4, 5],
        [17, 4, 99, 23, 5, 8, 250, 7, 11],
        [300, 12, 12, 9],
        [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
    ]
    private static let steps = 5

    /// The prompts with ids folded into the model's vocabulary (the tiny models have 50 tokens).
    private static func prompts(for transformer: Transformer) -> [[TokenID]] {
        prompts.map { $0.map { $0 % TokenID(transformer.config.vocabSize) } }
    }

    /// Greedy continuation of each prompt decoded alone: the tokens fed at each step and the
    /// logits each step returned.
    private func lone(_ transformer: Transformer) throws -> [(tokens: [TokenID], logits: [[Float]])] {
        try Self.prompts(for: transformer).map { prompt in
            let session = GenerationSession(transformer: transformer, cache: try transformer.makeCache())
            var logits = Array(try session.prefill(prompt).logits)
            var fed: [TokenID] = [], rows: [[Float]] = []
            for _ in 0..<Self.steps {
                let token = TokenID(logits.indices.max { logits[$0] < logits[$1] }!)
                fed.append(token)
                logits = Array(try session.step(token))
                rows.append(logits)
            }
            return (fed, rows)
        }
    }

    private func assertBatchedEqualsLone(_ transformer: Transformer, name: String,
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        let reference = try lone(transformer)
        let sessions = try Self.prompts.map { _ in GenerationSession(transformer: transformer, cache: try transformer.makeCache()) }
        for (session, prompt) in zip(sessions, Self.prompts(for: transformer)) { try session.prefill(prompt) }
        // Every step batches all four, except step 2 where sequence 1 sits out (it catches up
        // after, alone), so batches of changing membership are covered too.
        var next = Array(repeating: 0, count: sessions.count)
        func run(_ members: [Int]) throws {
            let tokens = members.map { reference[$0].tokens[next[$0]] }
            let logits = try GenerationSession.step(members.map { sessions[$0] }, tokens: tokens)
            for (k, i) in members.enumerated() {
                let expected = reference[i].logits[next[i]]
                let got = Array(logits[k])
                let mismatches = zip(expected, got).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(mismatches, 0, "\(name): sequence \(i) step \(next[i]): \(mismatches) logits differ from a lone decode "
                               + "(first: \(zip(expected, got).first { $0.bitPattern != $1.bitPattern }.map { "\($0) vs \($1)" } ?? ""))",
                               file: file, line: line)
                next[i] += 1
            }
        }
        for step in 0..<Self.steps {
            try run(step == 2 ? [0, 2, 3] : Array(0..<sessions.count))
        }
        try run([1])
        XCTAssertEqual(sessions.map(\.tokens.count), Self.prompts.map { $0.count + Self.steps }, name)
    }

    private func real(_ model: RealModel) throws -> Transformer {
        try Transformer.load(gguf: GGUFFile(url: model.url()), contextLength: 64, pool: ComputePool(threadCount: 2))
    }

    func testSmolLM2BatchedEqualsLone() throws { try assertBatchedEqualsLone(try real(.smollm2), name: "SmolLM2") }
    func testGemma3BatchedEqualsLone() throws { try assertBatchedEqualsLone(try real(.gemma3), name: "Gemma 3") }
    func testQwen25BatchedEqualsLone() throws { try assertBatchedEqualsLone(try real(.qwen2), name: "Qwen2.5") }

    /// The f32 cache's attention and Gemma's sliding window (5 positions in the tiny model).
    func testTinyModelsF32CacheBatchedEqualsLone() throws {
        for arch in [Architecture.llama, .gemma3] {
            let t = try TinyModel.transformer(arch, contextLength: 40, cacheType: .f32, pool: ComputePool(threadCount: 2))
            try assertBatchedEqualsLone(t, name: "tiny \(arch) f32")
        }
    }

    func testBadBatchesAreRefused() throws {
        let t = try TinyModel.transformer(.llama, contextLength: 16)
        let a = GenerationSession(transformer: t, cache: try t.makeCache())
        try a.prefill([1, 2])
        XCTAssertThrowsError(try GenerationSession.step([a, a], tokens: [1, 2]))
        XCTAssertThrowsError(try GenerationSession.step([a], tokens: [1, 2]))
        XCTAssertThrowsError(try GenerationSession.step([a], tokens: [-1]))
        let full = GenerationSession(transformer: t, cache: try t.makeCache())
        try full.prefill(Array(repeating: 1, count: 16))
        XCTAssertThrowsError(try GenerationSession.step([a, full], tokens: [1, 1])) { error in
            guard case SwiftletError.contextOverflow = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(a.tokens.count, 2, "a refused step appends nothing")
    }
}
