import Foundation
import SwiftletTensor

extension LanguageModel {
    /// Generates JSON valid under `schema` for `prompt` and decodes it as `T`.
    ///
    /// `schema` describes `T` (JSON Schema text, e.g. `{"type":"object","properties":{…},
    /// "required":[…]}`); generation is constrained to it, so the text always parses. Decoding
    /// errors (a schema that does not match `T`) are rethrown from `JSONDecoder`.
    /// - Returns: the decoded value and the raw JSON text.
    public func generate<T: Decodable>(prompt: String, generating type: T.Type, schema: String,
                                       parameters: GenerationParameters = GenerationParameters(sampling: .greedy)) async throws -> (value: T, json: String) {
        var p = parameters
        p.constraint = .jsonSchema(schema)
        var text = ""
        var reason: StopReason?
        for try await chunk in generate(prompt: prompt, parameters: p) {
            text += chunk.text
            if let s = chunk.statistics { reason = s.stopReason }
        }
        guard reason == .endOfGeneration else {
            throw SwiftletError.invalidArgument(
                "generation stopped (\(reason?.rawValue ?? "unknown")) before the JSON was complete; raise maxTokens")
        }
        return (try JSONDecoder().decode(T.self, from: Data(text.utf8)), text)
    }
}
