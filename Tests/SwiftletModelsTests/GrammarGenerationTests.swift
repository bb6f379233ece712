import XCTest
import Foundation
import SwiftletTensor
import SwiftletTokenizers
@testable import SwiftletModels
import Swiftlet
import SwiftletTestSupport

/// Grammar-constrained generation on the real models against llama.cpp's `llama-completion`
/// (fixtures in Tests/Fixtures/grammars, see SOURCE.md there).
final class GrammarGenerationTests: XCTestCase {
    static let grammarsDir = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/grammars")

    private func collect(_ stream: AsyncThrowingStream<GenerationChunk, Error>) async throws -> (text: String, ids: [Int], stats: GenerationStatistics?) {
        var text = "", ids: [Int] = [], stats: GenerationStatistics?
        for try await chunk in stream {
            text += chunk.text; ids += chunk.tokenIDs
            if let s = chunk.statistics { stats = s }
        }
        return (text, ids, stats)
    }

    /// Greedy generation under every grammar of llama.cpp's grammars/ folder gives exactly the
    /// tokens llama-completion --temp 0 gives.
    func testGreedyGrammarGenerationMatchesLlamaCpp() async throws {
        try await checkFixtures(model: .smollm2, directory: "smollm2")
    }

    /// The same on Qwen2.5-Coder (151k vocabulary, fixtures of 32 tokens to keep CI short).
    func testGreedyGrammarGenerationMatchesLlamaCppOnQwen() async throws {
        try await checkFixtures(model: .qwen2, directory: "qwen2.5-coder")
    }

    func checkFixtures(model realModel: RealModel, directory: String) async throws {
        let model = try await LanguageModel.load(realModel.url(), contextLength: 256)
        let dir = Self.grammarsDir.appendingPathComponent(directory)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(files.count, 8, "one fixture per grammar")
        for file in files {
            let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(file))) as! [String: Any]
            let grammar = try String(contentsOf: Self.grammarsDir.appendingPathComponent(fixture["grammar"] as! String), encoding: .utf8)
            let promptIDs = (fixture["prompt_ids"] as! [NSNumber]).map(\.intValue)
            let expected = (fixture["generated_ids"] as! [NSNumber]).map(\.intValue)
            let n = fixture["n_predict"] as! Int
            XCTAssertEqual(model.tokenize(fixture["prompt"] as! String), promptIDs, file)
            let parameters = GenerationParameters(maxTokens: n, sampling: .greedy, constraint: .grammar(grammar))
            let out = try await collect(model.generate(tokens: promptIDs, parameters: parameters))
            XCTAssertEqual(out.ids, expected, file)
            XCTAssertEqual(out.stats?.stopReason, expected.count < n ? .endOfGeneration : .maxTokens, file)
        }
    }

    /// `<text>` token references resolve through the model's tokenizer to the one token of that
    /// text (special tokens parsed); text of several tokens, or no tokenizer, is a typed error.
    func testTokenTextReferences() throws {
        let tokenizer = try Tokenizers.load(gguf: GGUFFile(url: RealModel.smollm2.url()))
        let end = tokenizer.encode("<|im_end|>", addSpecial: false, parseSpecial: true)
        XCTAssertEqual(end.count, 1)
        let g = try GenerationConstraint.grammar(#"root ::= "ok" <|im_end|> | !<|im_end|>"#).compiledGrammar(tokenizer: tokenizer)
        XCTAssertTrue(g.elements.contains { $0.kind == .token && $0.value == UInt32(end[0]) })
        XCTAssertTrue(g.elements.contains { $0.kind == .tokenNot && $0.value == UInt32(end[0]) })
        var m = GrammarReference(g)
        m.accept(bytes: Array("ok".utf8), token: 0, isEndOfGeneration: false)
        XCTAssertTrue(m.allows(bytes: Array("<|im_end|>".utf8), token: end[0], isEndOfGeneration: false))
        XCTAssertFalse(m.allows(bytes: Array("x".utf8), token: 87, isEndOfGeneration: false))
        for (grammar, column) in [(#"root ::= <hello world>"#, 10), (#"root ::= "a" <|im_end|"#, 23)] {
            XCTAssertThrowsError(try GenerationConstraint.grammar(grammar).compiledGrammar(tokenizer: tokenizer), grammar) {
                guard case let SwiftletError.invalidGrammar(_, _, c) = $0 else { return XCTFail("\($0)") }
                XCTAssertEqual(c, column, grammar)
            }
        }
        XCTAssertThrowsError(try GenerationConstraint.grammar(#"root ::= <|im_end|>"#).compiledGrammar())
        XCTAssertNoThrow(try GenerationConstraint.grammar(#"root ::= <|im_end|>"#).checkSyntax())
    }

    /// On the real vocabulary, the fast matcher's masks equal the plain port of llama.cpp's
    /// rejection logic at every step of random walks through several grammars.
    func testMasksMatchReferenceOnRealVocabulary() throws {
        let file = try GGUFFile(url: RealModel.smollm2.url())
        let tokenizer = try Tokenizers.load(gguf: file)
        let vocab = GrammarVocabulary(tokenizer: tokenizer)
        var rng = SeededGenerator(seed: 11)
        for name in ["json.gbnf", "list.gbnf", "japanese.gbnf"] {
            let g = try Grammar(String(contentsOf: Self.grammarsDir.appendingPathComponent(name), encoding: .utf8))
            let fast = try GrammarMatcher(grammar: g, vocabulary: vocab)
            var reference = GrammarReference(g)
            for step in 0..<4 {
                let mask = try fast.allowedTokens()
                var allowed: [Int] = []
                var mismatches = 0
                for t in 0..<vocab.count {
                    let expected = reference.allows(bytes: Array(vocab.piece(t)), token: Int32(t), isEndOfGeneration: vocab.endOfGeneration[t])
                    if (mask[t >> 6] >> UInt64(t & 63) & 1 == 1) != expected { mismatches += 1 }
                    if expected && !vocab.endOfGeneration[t] { allowed.append(t) }
                }
                XCTAssertEqual(mismatches, 0, "\(name) step \(step)")
                guard !allowed.isEmpty else { break }
                let t = allowed[Int(rng.next() % UInt64(allowed.count))]
                XCTAssertTrue(try fast.allows(t))
                try fast.accept(t)
                reference.accept(bytes: Array(vocab.piece(t)), token: Int32(t), isEndOfGeneration: false)
                XCTAssertEqual(fast.canEnd, reference.canEnd, name)
            }
        }
    }

    /// A grammar whose only continuation no token can spell stops with a reason, not a hang;
    /// bad constraints fail the stream with a typed error.
    func testDeadEndsAndBadConstraints() async throws {
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 256)
        // No token can spell the code point 0 the grammar needs after "a", and it cannot end there.
        let dead = GenerationParameters(maxTokens: 8, sampling: .greedy, constraint: .grammar(#"root ::= "a" "\x00""#))
        let out = try await collect(model.generate(prompt: "Say a:", parameters: dead))
        XCTAssertEqual(out.stats?.stopReason, .constraintRejectedAllTokens)
        XCTAssertEqual(out.text, "a")

        let choice = GenerationParameters(maxTokens: 16, sampling: .greedy, constraint: .choice(["yes", "no"]))
        let answer = try await collect(model.generate(prompt: "Is the sky blue? Answer yes or no:", parameters: choice))
        XCTAssertTrue(["yes", "no"].contains(answer.text), answer.text)
        XCTAssertEqual(answer.stats?.stopReason, .endOfGeneration)

        let regex = GenerationParameters(maxTokens: 32, sampling: SamplingParameters(temperature: 0.9, seed: 3),
                                         constraint: .regex(#"[0-9]{4}-[0-9]{2}-[0-9]{2}"#))
        let date = try await collect(model.generate(prompt: "Today's date:", parameters: regex))
        XCTAssertNotNil(date.text.range(of: #"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"#, options: .regularExpression), date.text)

        do {
            for try await _ in model.generate(prompt: "x", parameters: GenerationParameters(maxTokens: 4, constraint: .grammar("root ::= (\"a\""))) {}
            XCTFail("expected an error")
        } catch let SwiftletError.invalidGrammar(_, line, column) {
            XCTAssertEqual([line, column], [1, 10])
        }
        do {
            for try await _ in model.generate(prompt: "x", parameters: GenerationParameters(maxTokens: 4, constraint: .jsonSchema(#"{"type":"object","properties":{"a":{"type":"wat"}}}"#))) {}
            XCTFail("expected an error")
        } catch let SwiftletError.invalidSchema(reason, path) {
            XCTAssertEqual(path, "/properties/a/type", reason)
        }
    }
}
