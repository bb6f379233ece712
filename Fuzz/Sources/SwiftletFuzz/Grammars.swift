// Fuzz target `grammar`: the first input byte picks what the rest is, 0 a GBNF grammar, 1 a JSON
// Schema (converted to GBNF), 2 a regular expression (converted to GBNF), 3 JSON text (parsed and
// written back); a grammar that parses is then matched over a small vocabulary for three tokens,
// each picked by the next input byte among the tokens the matcher allows.
//
// Invariants beyond "no crash": errors are `SwiftletError`s; GBNF made from a schema or a regex
// parses (or is refused for a limit or left recursion); the token mask agrees with `allows` (a
// third of the vocabulary per step, and the token chosen), and the chosen token is accepted;
// JSON written back parses to the same value.
import Foundation
import SwiftletModels
import SwiftletTensor

struct GrammarUnderTest {
    /// Every byte but NUL as a token, some multi-byte pieces (JSON punctuation, words, a
    /// two-byte and a four-byte character, a lone continuation byte), two special tokens and an
    /// end-of-generation token.
    static let pieces: [[UInt8]] = {
        var pieces = (1...255).map { [UInt8($0)] }
        for text in ["{\"", "\":", "\", \"", "\"}", "true", "false", "null", " ", "\n", "12", "-0.5e3", "ab", "abc",
                     "é", "😀", "<think>", "<|tool|>"] {
            pieces.append(Array(text.utf8))
        }
        pieces.append([0xC3]); pieces.append([0xA9, 0x20])
        pieces.append(Array("<|im_end|>".utf8))
        return pieces
    }()
    static let endOfGeneration = Int32(pieces.count - 1)
    static let limits: Grammar.Limits = {
        var limits = Grammar.Limits()
        limits.maxRules = 5_000
        limits.maxElements = 100_000
        limits.maxStacks = 128
        limits.maxStackDepth = 512
        return limits
    }()
    let vocabulary = GrammarVocabulary(pieces: Self.pieces, endOfGeneration: [Self.endOfGeneration])
    let tokenIDs: [String: Int32] = {
        var ids: [String: Int32] = [:]
        for (i, piece) in Self.pieces.enumerated() where piece.first == UInt8(ascii: "<") && piece.count > 1 {
            ids[String(decoding: piece, as: UTF8.self)] = Int32(i)
        }
        return ids
    }()

    func run(_ input: UnsafeRawBufferPointer) -> CInt {
        guard let selector = input.first else { return 0 }
        let body = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        let text = String(decoding: body, as: UTF8.self)
        let mode = selector % 4
        do {
            let gbnf: String
            switch mode {
            case 0: gbnf = text
            case 1: gbnf = try GrammarJSONSchema.grammar(schema: text)
            case 2: gbnf = try GrammarRegex.grammar(pattern: text)
            default:
                let value = try OrderedJSON(parsing: text)
                guard (try? OrderedJSON(parsing: value.text)) == value else {
                    fatalError("JSON written back does not parse to the same value: \(value.text)")
                }
                return 0
            }
            let grammar: Grammar
            do {
                grammar = try Grammar(gbnf, limits: Self.limits, tokenNamed: { tokenIDs[$0] })
            } catch let error as SwiftletError where mode != 0 {
                // Limits and left recursion (`(a*)*`, which llama.cpp refuses too) are fair refusals.
                if case .invalidGrammar(let reason, _, _) = error, !reason.contains("more than"),
                   !reason.contains("left recursion") {
                    fatalError("GBNF made from \(mode == 1 ? "a schema" : "a regex") does not parse (\(error)):\n\(gbnf)")
                }
                throw error
            }
            try match(grammar, choices: body)
        } catch is SwiftletError {
        } catch {
            fatalError("untyped error: \(error)")
        }
        return 0
    }

    /// Tokens matched per input. Each step computes a mask on cold caches, which is most of an
    /// execution: at eight steps the target ran ~300 inputs a second, and libFuzzer finds more
    /// with more, shorter executions than with deeper walks of each grammar.
    static let steps = 3

    private func match(_ grammar: Grammar, choices: UnsafeRawBufferPointer) throws {
        let matcher = try GrammarMatcher(grammar: grammar, vocabulary: vocabulary)
        matcher.maxNodes = 10_000  // the refusal is reached all the same, at a tenth of 100,000's cost
        for step in 0..<min(Self.steps, choices.count) {
            let mask = try matcher.allowedTokens()
            var allowed: [Int32] = []
            for t in 0..<vocabulary.count where mask[t >> 6] & (1 << UInt64(t & 63)) != 0 { allowed.append(Int32(t)) }
            // `allows` walks the grammar once per token, the mask once for all of them: checking
            // every token at every step cost more than the rest of the execution. Each step checks
            // a third of the vocabulary (a different third per step, the three together cover it)
            // and the token it goes on with.
            let token = allowed.isEmpty ? nil : allowed[Int(choices[step]) % allowed.count]
            for t in stride(from: step, to: vocabulary.count, by: Self.steps) {
                let inMask = mask[t >> 6] & (1 << UInt64(t & 63)) != 0
                guard inMask == (try matcher.allows(TokenID(t))) else {
                    fatalError("token \(t): the mask says \(inMask), allows(\(t)) says \(!inMask)")
                }
            }
            guard let token else { return }
            guard try matcher.allows(TokenID(token)) else { fatalError("token \(token): in the mask, refused by allows") }
            if token == Self.endOfGeneration { return }
            try matcher.accept(token)
        }
    }
}

extension GrammarUnderTest {
    /// The grammars of Tests/Fixtures/grammars and the schemas of Tests/Fixtures/json-schemas, as seeds.
    static func writeSeeds(fixtures: URL, to directory: URL) throws {
        func write(_ selector: UInt8, _ text: String, _ name: String) throws {
            try Data([selector] + Array(text.utf8)).write(to: directory.appendingPathComponent(name))
        }
        let grammars = fixtures.appendingPathComponent("grammars")
        for name in try FileManager.default.contentsOfDirectory(atPath: grammars.path) where name.hasSuffix(".gbnf") {
            try write(0, String(decoding: try Data(contentsOf: grammars.appendingPathComponent(name)), as: UTF8.self), name)
        }
        let schemas = try OrderedJSON(parsing: String(decoding: try Data(contentsOf: fixtures
            .appendingPathComponent("json-schemas/schemas.json")), as: UTF8.self))
        if case .array(let entries) = schemas {
            for (i, entry) in entries.enumerated() {
                if let schema = entry["schema"] { try write(1, schema.text, "schema\(i).json") }
            }
        }
    }
}
