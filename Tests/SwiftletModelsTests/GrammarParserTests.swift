import XCTest
import Foundation
import SwiftletTensor
@testable import SwiftletModels
import SwiftletTestSupport

/// GBNF parsing: llama.cpp's grammars parse, bad and hostile grammars give typed errors with
/// their position, and the matcher agrees with the plain port of llama.cpp on hand-made vocabularies.
final class GrammarParserTests: XCTestCase {
    static let grammarsDir = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/grammars")

    func testLlamaCppGrammarsParse() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.grammarsDir.path).filter { $0.hasSuffix(".gbnf") }
        XCTAssertEqual(files.count, 8)
        for file in files {
            let text = try String(contentsOf: Self.grammarsDir.appendingPathComponent(file), encoding: .utf8)
            let g = try Grammar(text)
            XCTAssertGreaterThan(g.ruleCount, 1, file)
            XCTAssertEqual(g.ruleNames[g.rootRule], "root")
        }
    }

    /// The expansion of repetitions and groups follows llama.cpp's rewrite (same rule count and names).
    func testRepetitionRewrite() throws {
        let g = try Grammar(#"root ::= "a"{2,4} [0-9]+ ("x" | "y")?"#)
        // root, root_1 … root_2 for {2,4}'s two optional tails, root_3 for +, root_4 group, root_5 for ?
        XCTAssertEqual(g.ruleNames, ["root", "root_1", "root_2", "root_3", "root_4", "root_5"])
        var m = GrammarReference(g)
        func feed(_ s: String) { for b in s.utf8 { m.accept(bytes: [b], token: 0, isEndOfGeneration: false) } }
        feed("aaa7")
        XCTAssertTrue(m.canEnd)
        feed("y")
        XCTAssertTrue(m.canEnd)
        XCTAssertFalse(m.allows(bytes: Array("y".utf8), token: 0, isEndOfGeneration: false))
    }

    private func assertGrammarError(_ text: String, line: Int, column: Int, contains: String,
                                    file: StaticString = #filePath, lineNumber: UInt = #line) {
        XCTAssertThrowsError(try Grammar(text), file: file, line: lineNumber) { error in
            guard case let SwiftletError.invalidGrammar(reason, l, c) = error else {
                return XCTFail("unexpected error \(error)", file: file, line: lineNumber)
            }
            XCTAssertEqual(l, line, reason, file: file, line: lineNumber)
            XCTAssertEqual(c, column, reason, file: file, line: lineNumber)
            XCTAssertTrue(reason.contains(contains), reason, file: file, line: lineNumber)
        }
    }

    func testBadGrammarsReportPosition() {
        assertGrammarError("root ::= \"abc", line: 1, column: 10, contains: "unterminated string")
        assertGrammarError("root ::= x\nx ::= [a-", line: 2, column: 7, contains: "unterminated character class")
        assertGrammarError("root ::= \"a\" \\q", line: 1, column: 14, contains: "expecting newline")
        assertGrammarError("root ::= \"\\q\"", line: 1, column: 11, contains: "unknown escape")
        assertGrammarError("root ::= ( \"a\" ", line: 1, column: 10, contains: "expecting ')'")
        assertGrammarError("root = \"a\"", line: 1, column: 6, contains: "expecting ::=")
        assertGrammarError("root ::= item\n", line: 1, column: 10, contains: "undefined rule 'item'")
        assertGrammarError("root ::= * \"a\"", line: 1, column: 10, contains: "expecting an item before")
        assertGrammarError("root ::= \"a\"{3,1}", line: 1, column: 13, contains: "below the minimum")
        assertGrammarError("root ::= \"a\"{x}", line: 1, column: 14, contains: "expecting an integer")
        assertGrammarError("root ::= \"\\x4\"", line: 1, column: 13, contains: "hex digits")
        assertGrammarError("start ::= \"a\"", line: 1, column: 1, contains: "start rule 'root'")
        assertGrammarError("", line: 1, column: 1, contains: "no rules")
        assertGrammarError("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"", line: 1, column: 10, contains: "left recursion in rule 'expr'")
        assertGrammarError("root ::= \"a\" root", line: 1, column: 1, contains: "can never complete")
        assertGrammarError("root ::= <hello>", line: 1, column: 10, contains: "need a vocabulary")
        // Columns count characters, not bytes.
        assertGrammarError("root ::= \"é\" \\q", line: 1, column: 14, contains: "expecting newline")
    }

    func testHostileGrammarsAreBounded() {
        let deep = "root ::= " + String(repeating: "(", count: 100_000) + "\"a\"" + String(repeating: ")", count: 100_000)
        assertGrammarError(deep, line: 1, column: 138, contains: "nested deeper")
        assertGrammarError("root ::= \"a\"{2001}", line: 1, column: 13, contains: "exceeds 2000")
        assertGrammarError("root ::= (\"a\"{0,50}){0,50}", line: 1, column: 21, contains: "more than 2000 copies")
        assertGrammarError("root ::= \"a\"{99999999999999999999999}", line: 1, column: 13, contains: "exceeds 2000")
        var limits = Grammar.Limits()
        limits.maxRules = 100
        XCTAssertThrowsError(try Grammar((0..<200).map { "r\($0) ::= \"x\"" }.joined(separator: "\n") + "\nroot ::= r0", limits: limits)) { error in
            XCTAssertTrue("\(error)".contains("more than 100 rules"), "\(error)")
        }
        limits = Grammar.Limits()
        limits.maxElements = 10_000
        XCTAssertThrowsError(try Grammar("root ::= " + String(repeating: "\"abcdefghij\" ", count: 2000), limits: limits)) { error in
            XCTAssertTrue("\(error)".contains("more than 10000 elements"), "\(error)")
        }
        // An ambiguous grammar multiplies stacks: matching stops with a typed error, not a hang.
        do {
            var small = Grammar.Limits()
            small.maxStacks = 64
            let g = try Grammar(#"root ::= x*  x ::= "a"* "#.replacingOccurrences(of: "  ", with: "\n"), limits: small)
            _ = g
        } catch {
            // Left recursion through an empty-capable rule is refused by llama.cpp too.
            XCTAssertTrue("\(error)".contains("left recursion"), "\(error)")
        }
    }

    /// Hand-made vocabularies with multi-byte characters split across tokens, NUL bytes and
    /// end-of-generation: the fast matcher's masks equal the plain port's at every step.
    func testMatcherAgreesWithReferenceOnSplitUTF8() throws {
        let pieces: [[UInt8]] = [
            Array("a".utf8), Array("é".utf8), [0xC3], [0xA9], Array("aé".utf8), [0x61, 0xC3], [0xE6, 0x97], [0xA5],
            Array("日".utf8), Array("日本".utf8), [0x00, 0x61], [0x61, 0x00, 0x62], [], Array("\n".utf8), [0x80], [0xFF, 0x80, 0x80, 0x80],
            Array("\"".utf8), Array("{\"".utf8), Array("}".utf8), Array(" ".utf8), Array("ab".utf8), Array("1".utf8), Array("12".utf8),
        ]
        let vocab = GrammarVocabulary(pieces: pieces + [Array("</s>".utf8)], endOfGeneration: [Int32(pieces.count)])
        let grammars = [
            #"root ::= [^a]* "\n""#,
            #"root ::= ("a" | "é" | "日本")+"#,
            #"root ::= [a-zé]{1,3} [^\n]*"#,
            #"root ::= "{\"" [a-z]* "\"}" | [0-9]+"#,
            #"root ::= . . "\n"?"#,
        ]
        var rng = SeededGenerator(seed: 7)
        for text in grammars {
            let g = try Grammar(text)
            let fast = try GrammarMatcher(grammar: g, vocabulary: vocab)
            var reference = GrammarReference(g)
            for _ in 0..<12 {
                let mask = try fast.allowedTokens()
                var allowed: [Int] = []
                for t in 0..<vocab.count {
                    let expected = reference.allows(bytes: Array(vocab.piece(t)), token: Int32(t), isEndOfGeneration: vocab.endOfGeneration[t])
                    XCTAssertEqual(mask[t >> 6] >> UInt64(t & 63) & 1 == 1, expected, "\(text) token \(t)")
                    XCTAssertEqual(try fast.allows(t), expected, "\(text) token \(t)")
                    if expected && !vocab.endOfGeneration[t] { allowed.append(t) }
                }
                guard !allowed.isEmpty else { break }
                let t = allowed[Int(rng.next() % UInt64(allowed.count))]
                try fast.accept(t)
                reference.accept(bytes: Array(vocab.piece(t)), token: Int32(t), isEndOfGeneration: false)
                XCTAssertEqual(fast.canEnd, reference.canEnd)
            }
        }
    }

    /// JSON Schema integer bounds become exact digit ranges: over a window of integers the grammar
    /// accepts exactly those within the bounds, and never a leading zero or `-0`.
    func testIntegerBoundsAcceptExactlyTheRange() throws {
        func accepts(_ g: Grammar, _ text: String) -> Bool {
            var m = GrammarReference(g)
            for b in text.utf8 {
                guard m.allows(bytes: [b], token: 0, isEndOfGeneration: false) else { return false }
                m.accept(bytes: [b], token: 0, isEndOfGeneration: false)
            }
            return m.canEnd
        }
        let cases: [(String, ClosedRange<Int>)] = [
            (#""minimum": 0, "maximum": 100"#, 0 ... 100),
            (#""minimum": -45, "maximum": 1234"#, -45 ... 1234),
            (#""minimum": 17"#, 17 ... Int.max),
            (#""maximum": -3"#, Int.min ... -3),
            (#""exclusiveMinimum": 9, "exclusiveMaximum": 1000"#, 10 ... 999),
            (#""minimum": -1500, "maximum": -1500"#, -1500 ... -1500),
            (#""minimum": 2.5, "maximum": 7.9"#, 3 ... 7),
            (#""minimum": 305, "maximum": 2089"#, 305 ... 2089),
        ]
        for (bounds, range) in cases {
            let g = try Grammar(GrammarJSONSchema.grammar(schema: #"{"type": "integer", "# + bounds + "}"))
            for x in -2100 ... 2100 {
                XCTAssertEqual(accepts(g, String(x)), range.contains(x), "\(bounds): \(x)")
            }
            XCTAssertFalse(accepts(g, "007"), bounds)
            XCTAssertFalse(accepts(g, "-0"), bounds)
            XCTAssertEqual(accepts(g, "123456789012"), range.contains(123456789012), bounds)
        }
        XCTAssertThrowsError(try GrammarJSONSchema.grammar(schema: #"{"type": "integer", "minimum": 5, "maximum": 4}"#))
        XCTAssertThrowsError(try GrammarJSONSchema.grammar(schema: #"{"type": "integer", "maximum": 1e20}"#))
    }
}
