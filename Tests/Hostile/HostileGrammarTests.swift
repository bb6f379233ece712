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
}
