// The `Swiftlet` module of the fuzz package: what the server's request decoding needs from the
// real one (generation parameters and output constraints, compiled from their own files) and a
// stand-in for `LanguageModel` with only what request decoding reads of a model: a real
// tokenizer and chat template, the vocabulary size and the context length. No weights.
@_exported import SwiftletCore
@_exported import SwiftletFormats
@_exported import SwiftletModels
@_exported import SwiftletTensor
@_exported import SwiftletTokenizers

/// Stand-in for Swiftlet's `LanguageModel` (see the file comment): its tokenizer, chat template,
/// vocabulary size and context length, with the same `tokenize` and `formatChat`.
public final class LanguageModel: @unchecked Sendable {
    public struct Config: Sendable {
        public let vocabSize: Int
    }
    public let config: Config
    public let contextLength: Int
    let tokenizer: any Tokenizer
    let chatTemplate: Result<ChatTemplate, Error>

    /// The tokenizer and chat template of a GGUF model file.
    public init(gguf: GGUFFile, contextLength: Int) throws {
        tokenizer = try Tokenizers.load(gguf: gguf)
        chatTemplate = Result { try ChatTemplate(gguf: gguf) }
        config = Config(vocabSize: tokenizer.vocabularySize)
        self.contextLength = contextLength
    }

    public func tokenize(_ text: String) -> [TokenID] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: true)
    }

    public func formatChat(_ messages: [ChatMessage], tools: [ToolDefinition] = [], context: [String: JinjaValue] = [:]) throws -> String {
        let bos = tokenizer.bosID.map { tokenizer.piece($0) } ?? ""
        let eos = tokenizer.eosID.map { tokenizer.piece($0) } ?? ""
        let text = try chatTemplate.get().render(messages: messages, tools: tools, addGenerationPrompt: true,
                                                 bosToken: bos, eosToken: eos, context: context)
        if tokenizer.addsBOS, !bos.isEmpty, text.hasPrefix(bos) { return String(text.dropFirst(bos.count)) }
        return text
    }
}
