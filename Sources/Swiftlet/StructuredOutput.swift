import Foundation
import SwiftletTensor
import SwiftletModels
import SwiftletTokenizers

/// What generated text must look like. Generation then only ever picks tokens that keep the
/// output a valid prefix, and ends (end-of-generation allowed) only where the text is complete.
///
/// ```swift
/// var p = GenerationParameters(sampling: .greedy)
/// p.constraint = .jsonSchema(#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#)
/// ```
public enum GenerationConstraint: Sendable, Equatable {
    /// A GBNF grammar (llama.cpp's syntax) whose `root` rule the output matches.
    case grammar(String)
    /// A JSON Schema (JSON text): the output is one JSON document valid under it.
    case jsonSchema(String)
    /// Any JSON object (OpenAI's `json_object` response format).
    case jsonObject
    /// A regular expression the whole output matches.
    case regex(String)
    /// Exactly one of the strings.
    case choice([String])

    /// The GBNF text of the constraint.
    public func grammarText() throws -> String {
        switch self {
        case let .grammar(text): return text
        case let .jsonSchema(schema): return try GrammarJSONSchema.grammar(schema: schema)
        case .jsonObject: return GrammarJSONSchema.anyObjectGrammar
        case let .regex(pattern): return try GrammarRegex.grammar(pattern: pattern)
        case let .choice(options):
            guard !options.isEmpty else { throw SwiftletError.invalidArgument("a choice constraint needs at least one option") }
            return "root ::= " + options.map(GrammarRegex.literal).joined(separator: " | ") + "\n"
        }
    }

    /// The parsed grammar (bad grammars and schemas throw typed errors with their position).
    /// A `<text>` token reference names the token `tokenizer` makes of that text (special tokens
    /// parsed, as llama.cpp resolves it); text that is not exactly one token is an error, and so is
    /// any `<text>` without a tokenizer.
    public func compiledGrammar(tokenizer: (any Tokenizer)? = nil) throws -> Grammar {
        guard let tokenizer else { return try Grammar(grammarText()) }
        return try Grammar(grammarText(), tokenNamed: { text in
            let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
            return ids.count == 1 ? ids[0] : nil
        })
    }

    /// Checks the grammar's syntax before a vocabulary is at hand: `<text>` references are
    /// accepted unresolved here and resolved by ``compiledGrammar(tokenizer:)`` later.
    public func checkSyntax() throws {
        _ = try Grammar(grammarText(), tokenNamed: { _ in 0 })
    }
}
