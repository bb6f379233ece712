import Foundation
import XCTest
import Swiftlet

/// Output constraints come from API requests (`response_format`, `grammar`, `json_schema`), so
/// they are as untrusted as any request body. Cases the grammar fuzz target found.
final class HostileGrammarTests: XCTestCase {
    /// A quantifier on a quantifier (`a**`, 150 stars in the fuzzer's case) nested one group per
    /// star until the GBNF parser's nesting limit, or gave a left-recursive grammar; Python's `re`
    /// calls it a "multiple repeat", and so does the converter now.
    func testStackedQuantifiersAreAMultipleRepeat() {
        for pattern in ["a**", "a+*", "a{2}{3}", "a*??", "x" + String(repeating: "*", count: 150), "(ab)?{2}"] {
            XCTAssertThrowsError(try GrammarRegex.grammar(pattern: pattern), pattern) { error in
                guard case SwiftletError.invalidGrammar(let reason, _, _)? = error as? SwiftletError else {
                    return XCTFail("\(pattern): \(error)")
                }
                XCTAssertTrue(reason.contains("multiple repeat"), "\(pattern): \(reason)")
            }
        }
        // Lazy and possessive suffixes are one quantifier, and a brace that is not a repetition is a literal.
        for pattern in ["a*?", "a+?b", "a{2,3}?", "a*+", "a{x}*", "[0-9]{4}-[0-9]{2}"] {
            XCTAssertNoThrow(try Grammar(GrammarRegex.grammar(pattern: pattern)), pattern)
        }
    }

    /// A schema allowing additional properties excludes its listed names with a trie, one group
    /// per character: a 160-character name (the fuzzer's case) nested past the GBNF parser's limit
    /// of 128. Deep levels now continue in rules of their own; names beyond 1024 characters are refused.
    func testLongPropertyNameWithAdditionalProperties() throws {
        let long = String(repeating: "é", count: 700)
        let schema = #"{"type": "object", "properties": {"\#(long)": {"type": "integer"}}, "additionalProperties": true}"#
        let grammar = try Grammar(GrammarJSONSchema.grammar(schema: schema))
        // One piece per byte: the matcher walks the text as the model would emit it.
        let vocabulary = GrammarVocabulary(pieces: (0...255).map { [UInt8($0)] }, endOfGeneration: [])
        func accepts(_ text: String) throws -> Bool {
            let matcher = try GrammarMatcher(grammar: grammar, vocabulary: vocabulary)
            for byte in text.utf8 {
                guard try matcher.allows(TokenID(byte)) else { return false }
                try matcher.accept(TokenID(byte))
            }
            return matcher.canEnd
        }
        XCTAssertTrue(try accepts(#"{"\#(long)": 1}"#))
        XCTAssertTrue(try accepts(#"{"\#(long)": 1, "other": "x"}"#))
        XCTAssertTrue(try accepts(#"{"\#(long.dropLast())": "any value"}"#), "a prefix is another name")
        XCTAssertFalse(try accepts(#"{"\#(long)": "not an integer"}"#), "the listed name keeps its type")

        let tooLong = String(repeating: "k", count: 1025)
        let tooLongSchema = #"{"type": "object", "properties": {"\#(tooLong)": {}}, "additionalProperties": {"type": "integer"}}"#
        XCTAssertThrowsError(try GrammarJSONSchema.grammar(schema: tooLongSchema)) { error in
            guard case SwiftletError.invalidSchema(let reason, _)? = error as? SwiftletError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("more than 1024"), reason)
        }
        // Without additional properties (the default, as in llama.cpp) no trie is built.
        XCTAssertNoThrow(try Grammar(GrammarJSONSchema.grammar(schema: #"{"type": "object", "properties": {"\#(tooLong)": {}}}"#)))
    }
}
