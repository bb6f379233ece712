import SwiftletFormats
import SwiftletTensor

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable, Hashable {
    /// `system`, `user` or `assistant`.
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }
}

/// Renders a conversation into a prompt the way a model's chat template does.
///
/// The family is recognized from the template text (`tokenizer.chat_template`): ChatML
/// (`<|im_start|>`, SmolLM2, Qwen …, including a default system message written into the
/// template), Gemma (`<start_of_turn>`), Llama 3 (`<|start_header_id|>`). An unrecognized
/// template is an error, never a guess. The rendered text holds no BOS: `encode` with
/// `addSpecial` adds it when the model wants one; encode the prompt with `parseSpecial: true`.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: Sendable, Equatable {
        /// `<|im_start|>role\ncontent<|im_end|>\n`; `defaultSystem` is inserted when the
        /// conversation does not start with a system message.
        case chatML(defaultSystem: String?)
        /// `<start_of_turn>user|model\ncontent<end_of_turn>\n`; a system message is prepended
        /// to the first user turn; turns must alternate (as Gemma 3's Hugging Face template).
        case gemma
        /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
        case llama3
    }

    public let family: Family

    public init(family: Family) { self.family = family }

    /// Recognizes the family of a Jinja chat template.
    public init(template: String) throws {
        if template.contains("<|im_start|>") {
            family = .chatML(defaultSystem: ChatTemplate.defaultChatMLSystem(in: template))
        } else if template.contains("<start_of_turn>") {
            family = .gemma
        } else if template.contains("<|start_header_id|>") && !template.contains("Cutting Knowledge Date") {
            // Llama 3.0's template; 3.1+ add a dated system preamble and tools (not supported).
            family = .llama3
        } else {
            throw SwiftletError.unsupportedTokenizer(
                "chat template not recognized (supported families: ChatML, Gemma, Llama 3): \(template.prefix(120).debugDescription)")
        }
    }

    /// The template of a vocabulary's `tokenizer.chat_template`; when the file has none, the
    /// family of its architecture (Gemma GGUFs often ship without one).
    public init(vocabulary: TokenizerVocabulary) throws {
        if let template = vocabulary.chatTemplate {
            try self.init(template: template)
        } else if let arch = vocabulary.architecture, arch.hasPrefix("gemma") {
            self.init(family: .gemma)
        } else {
            throw SwiftletError.unsupportedTokenizer(
                "the model has no tokenizer.chat_template and architecture '\(vocabulary.architecture ?? "?")' has no known default")
        }
    }

    /// The chat template of a GGUF file (see `init(vocabulary:)`).
    public init(gguf: GGUFFile) throws {
        if let template = try gguf.stringIfPresent("tokenizer.chat_template") {
            try self.init(template: template)
        } else {
            try self.init(vocabulary: TokenizerVocabulary(model: "", tokens: [], architecture: gguf.architecture))
        }
    }

    /// The prompt text of `messages`; with `addGenerationPrompt`, followed by the opening of
    /// the assistant's turn.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        var out = ""
        switch family {
        case .chatML(let defaultSystem):
            if let defaultSystem, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .gemma:
            var rest = messages[...]
            var prefix = ""
            if let first = rest.first, first.role == "system" {
                prefix = first.content + "\n\n"
                rest = rest.dropFirst()
            }
            for (i, m) in rest.enumerated() {
                // Gemma's template raises unless turns alternate user, model, user, …
                let isUser = m.role == "user"
                guard isUser == (i % 2 == 0), isUser || m.role == "assistant" || m.role == "model" else {
                    throw SwiftletError.invalidArgument(
                        "Gemma chat: roles must alternate user/assistant after an optional system message (message \(i): '\(m.role)')")
                }
                let role = isUser ? "user" : "model"
                out += "<start_of_turn>\(role)\n" + (i == 0 ? prefix : "") + ChatTemplate.trimmed(m.content) + "<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }
        case .llama3:
            for m in messages {
                out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(ChatTemplate.trimmed(m.content))<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return out
    }

    /// Jinja's `trim`: strips leading and trailing whitespace.
    static func trimmed(_ s: String) -> String {
        var scalars = Substring(s).unicodeScalars[...]
        while let f = scalars.first, f.properties.isWhitespace { scalars = scalars.dropFirst() }
        while let l = scalars.last, l.properties.isWhitespace { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }

    /// The text of a literal `'<|im_start|>system\n…<|im_end|>` in the template, if any.
    static func defaultChatMLSystem(in template: String) -> String? {
        // The newline inside the Jinja literal may be written as an escape or be a real one.
        for quote in ["'", "\""] {
            for opener in ["<|im_start|>system\\n", "<|im_start|>system\n"] {
            guard let start = template.range(of: quote + opener) else { continue }
            let after = template[start.upperBound...]
            guard let end = after.range(of: "<|im_end|>") else { continue }
            let literal = after[..<end.lowerBound]
            if literal.contains(quote) || literal.contains("{") { continue }  // not one plain literal
            return unescapeJinjaString(String(literal))
            }
        }
        return nil
    }

    private static func unescapeJinjaString(_ s: String) -> String {
        var out = ""
        var escaped = false
        for c in s {
            if escaped {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}
