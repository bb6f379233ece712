import SwiftletFormats
import SwiftletCore

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable, Hashable {
    /// `system`, `user`, `assistant` or `tool`.
    public var role: String
    public var content: String
    /// Calls an assistant message made (templates see them as `tool_calls`).
    public var toolCalls: [ToolCall]
    /// For a `tool` message: the id of the call it answers, when the call had one.
    public var toolCallID: String?
    /// For a `tool` message: the name of the function that produced it.
    public var name: String?

    public init(role: String, content: String, toolCalls: [ToolCall] = [], toolCallID: String? = nil, name: String? = nil) {
        self.role = role; self.content = content; self.toolCalls = toolCalls; self.toolCallID = toolCallID; self.name = name
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    public static func assistant(_ content: String, toolCalls: [ToolCall] = []) -> ChatMessage {
        ChatMessage(role: "assistant", content: content, toolCalls: toolCalls)
    }
    /// The result of a tool call, sent back to the model.
    public static func tool(_ content: String, name: String? = nil, toolCallID: String? = nil) -> ChatMessage {
        ChatMessage(role: "tool", content: content, toolCallID: toolCallID, name: name)
    }

    /// The dictionary a chat template sees, as OpenAI-style clients send it: an assistant
    /// message that only calls tools has `content: null`.
    public var templateValue: JinjaValue {
        var o = JinjaObject()
        o["role"] = .string(role)
        o["content"] = content.isEmpty && !toolCalls.isEmpty ? JinjaValue.none : JinjaValue.string(content)
        if !toolCalls.isEmpty { o["tool_calls"] = .array(toolCalls.map(\.templateValue)) }
        if let toolCallID { o["tool_call_id"] = .string(toolCallID) }
        if let name { o["name"] = .string(name) }
        return .object(o)
    }
}

/// Renders a conversation into a prompt with the model's own chat template
/// (`tokenizer.chat_template`, a Jinja template run by ``JinjaTemplate`` as transformers'
/// `apply_chat_template` runs it).
///
/// A model without a template gets the default of its architecture (``defaultTemplate(architecture:)``):
/// Gemma's turn format for `gemma*`, ChatML for every other architecture (llama.cpp's fallback).
/// Encode the prompt with `parseSpecial: true`; when the tokenizer adds BOS itself, drop a BOS
/// the template wrote at the start (``LanguageModel`` does both).
public struct ChatTemplate: Sendable, Equatable {
    /// The Jinja source.
    public let source: String
    private let template: JinjaTemplate

    /// Parses a Jinja chat template (syntax errors are thrown here, with line and column).
    public init(template source: String, limits: JinjaLimits = JinjaLimits()) throws {
        self.source = source
        template = try JinjaTemplate(source, limits: limits)
    }

    /// The template of a vocabulary's `tokenizer.chat_template`, or the default of its architecture.
    public init(vocabulary: TokenizerVocabulary) throws {
        try self.init(template: vocabulary.chatTemplate ?? ChatTemplate.defaultTemplate(architecture: vocabulary.architecture))
    }

    /// The chat template of a GGUF file (see ``init(vocabulary:)``).
    public init(gguf: GGUFFile) throws {
        try self.init(template: try gguf.stringIfPresent("tokenizer.chat_template")
            ?? ChatTemplate.defaultTemplate(architecture: gguf.architecture))
    }

    public static func == (a: ChatTemplate, b: ChatTemplate) -> Bool { a.source == b.source }

    /// ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message (llama.cpp's default).
    public static let chatMLTemplate = """
        {%- for message in messages -%}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}
        """

    /// Gemma: `<start_of_turn>user|model\ncontent<end_of_turn>\n`; a system message prefixes the
    /// first user turn, contents are trimmed and turns must alternate (as Gemma 3's own template).
    public static let gemmaTemplate = """
        {{- bos_token -}}
        {%- if messages and messages[0].role == 'system' -%}
        {%- set prefix = messages[0].content + '\\n\\n' -%}{%- set turns = messages[1:] -%}
        {%- else -%}{%- set prefix = '' -%}{%- set turns = messages -%}{%- endif -%}
        {%- for message in turns -%}
        {%- set role = 'model' if message.role in ['assistant', 'model'] else message.role -%}
        {%- if role not in ['user', 'model'] or (role == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('Gemma chat: roles must alternate user/assistant after an optional system message') -}}
        {%- endif -%}
        {{- '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') + message.content | trim + '<end_of_turn>\\n' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}
        """

    /// The template used when a model file has none.
    public static func defaultTemplate(architecture: String?) -> String {
        if let architecture, architecture.hasPrefix("gemma") { return gemmaTemplate }
        return chatMLTemplate
    }

    /// The prompt text of `messages`; with `addGenerationPrompt`, followed by the opening of
    /// the assistant's turn. `tools` are passed as the template's `tools` (none when empty);
    /// `context` adds variables (such as `enable_thinking`).
    public func render(messages: [ChatMessage], tools: [ToolDefinition] = [], addGenerationPrompt: Bool,
                       bosToken: String = "", eosToken: String = "", context: [String: JinjaValue] = [:],
                       date: JinjaDate? = nil) throws -> String {
        try render(messages: .array(messages.map(\.templateValue)),
                   tools: tools.isEmpty ? nil : .array(tools.map(\.templateValue)),
                   addGenerationPrompt: addGenerationPrompt, bosToken: bosToken, eosToken: eosToken,
                   context: context, date: date)
    }

    /// Renders messages and tools given as template values (for example parsed from JSON with
    /// ``JinjaJSON/parse(_:)``), with the variables transformers passes: `messages`, `tools`,
    /// `documents`, `add_generation_prompt`, `bos_token`, `eos_token`, and `context`.
    public func render(messages: JinjaValue, tools: JinjaValue?, addGenerationPrompt: Bool,
                       bosToken: String = "", eosToken: String = "", context: [String: JinjaValue] = [:],
                       date: JinjaDate? = nil) throws -> String {
        var variables = context
        variables["messages"] = ChatTemplate.aliasingReasoning(messages)
        variables["tools"] = tools ?? JinjaValue.none
        variables["documents"] = variables["documents"] ?? JinjaValue.none
        variables["add_generation_prompt"] = .bool(addGenerationPrompt)
        variables["bos_token"] = .string(bosToken)
        variables["eos_token"] = .string(eosToken)
        return try template.render(variables, date: date)
    }

    /// The tool-call format the template prompts for, if it mentions one.
    public var toolCallFormat: ToolCallFormat? { ToolCallFormat.recognize(template: source) }

    /// transformers copies a message's reasoning (`reasoning_content`, `thinking` or
    /// `reasoning`) under `thinking` (first) and `reasoning_content` (last), as templates read either.
    static func aliasingReasoning(_ messages: JinjaValue) -> JinjaValue {
        guard case .array(let list) = messages else { return messages }
        return .array(list.map { message in
            guard case .object(let o) = message,
                  let reasoning = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap({ key -> JinjaValue? in
                      guard let v = o[key], v != .none else { return nil }
                      return v
                  }).first else { return message }
            var aliased = JinjaObject()
            aliased["thinking"] = reasoning
            for (k, v) in o { aliased[k] = v }
            aliased["thinking"] = o["thinking"] ?? reasoning
            aliased["reasoning_content"] = reasoning
            return .object(aliased)
        })
    }
}
