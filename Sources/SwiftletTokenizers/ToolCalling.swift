import SwiftletCore

/// A function the model may call, described by a JSON schema (the OpenAI / Hugging Face
/// `{"type": "function", "function": {name, description, parameters}}` shape).
public struct ToolDefinition: Sendable, Equatable {
    public var name: String
    public var description: String
    /// JSON schema of the arguments object.
    public var parameters: JinjaValue

    public init(name: String, description: String, parameters: JinjaValue) {
        self.name = name; self.description = description; self.parameters = parameters
    }

    /// A definition whose parameters schema is JSON text.
    public init(name: String, description: String, parametersJSON: String) throws {
        self.init(name: name, description: description, parameters: try JinjaJSON.parse(parametersJSON))
    }

    /// The definitions of a JSON array in the OpenAI shape (each `{"type": "function",
    /// "function": {...}}`, or the bare `{name, description, parameters}` object).
    public static func list(fromJSON text: String) throws -> [ToolDefinition] {
        guard case .array(let items) = try JinjaJSON.parse(text) else {
            throw SwiftletError.invalidArgument("tools: expected a JSON array of tool definitions")
        }
        return try items.map { item in
            var function = item
            if case .object(let o) = item, case .object? = o["function"] { function = o["function"]! }
            guard case .object(let f) = function, case .string(let name)? = f["name"] else {
                throw SwiftletError.invalidArgument("tools: each definition needs a function name")
            }
            return ToolDefinition(name: name, description: f["description"]?.stringValue ?? "",
                                  parameters: f["parameters"] ?? ["type": "object", "properties": [:]])
        }
    }

    /// The value chat templates receive in `tools`.
    public var templateValue: JinjaValue {
        ["type": "function", "function": ["name": .string(name), "description": .string(description), "parameters": parameters]]
    }
}

/// A call the model asked for: a function name and its arguments as a JSON object.
public struct ToolCall: Sendable, Equatable, Hashable {
    /// An identifier to answer with (Mistral and OpenAI-style templates use it), if any.
    public var id: String?
    public var name: String
    /// The arguments as JSON text of an object.
    public var arguments: String

    public init(id: String? = nil, name: String, arguments: String) {
        self.id = id; self.name = name; self.arguments = arguments
    }

    /// The parsed arguments.
    public func argumentsValue() throws -> JinjaValue { try JinjaJSON.parse(arguments) }

    /// The value chat templates receive in a message's `tool_calls`.
    public var templateValue: JinjaValue {
        var function: JinjaValue = ["name": .string(name)]
        let args = (try? argumentsValue()) ?? .string(arguments)
        if case .object(var f) = function { f["arguments"] = args; function = .object(f) }
        var call: JinjaObject = JinjaObject()
        if let id { call["id"] = .string(id) }
        call["type"] = "function"
        call["function"] = function
        return .object(call)
    }
}

/// How a model writes tool calls in its output.
public enum ToolCallFormat: String, Sendable, CaseIterable {
    /// Qwen 2.5 / Hermes: `<tool_call>{"name": …, "arguments": {…}}</tool_call>`, one per call.
    case hermes
    /// Llama 3.1–3.3: the whole reply is `{"name": …, "parameters": {…}}` (optionally after
    /// `<|python_tag|>`; several calls separated by `;`).
    case llama3JSON
    /// Mistral: `[TOOL_CALLS][{"name": …, "arguments": {…}, "id": …}]`, or the newer
    /// `[TOOL_CALLS]name[ARGS]{…}` form.
    case mistral

    /// The format a chat template prompts for, recognized by its markup.
    public static func recognize(template: String) -> ToolCallFormat? {
        if template.contains("<tool_call>") { return .hermes }
        if template.contains("[TOOL_CALLS]") { return .mistral }
        if template.contains("<|start_header_id|>") && template.contains("parameters") { return .llama3JSON }
        return nil
    }
}

/// Extracts tool calls from a model's reply.
public enum ToolCallParser {
    /// The reply's text without the tool-call markup, and the calls it holds (arguments
    /// re-serialized as compact JSON). Malformed calls are left in the text, never guessed.
    public static func parse(_ output: String, format: ToolCallFormat) -> (content: String, calls: [ToolCall]) {
        switch format {
        case .hermes: return parseHermes(output)
        case .llama3JSON: return parseLlama3(output)
        case .mistral: return parseMistral(output)
        }
    }

    /// Arguments as compact JSON text (`{"a": 1}` layout of Python's json.dumps).
    private static func argumentsText(_ value: JinjaValue?) -> String? {
        switch value {
        case .object?: return try? JinjaJSON.dumps(value!)
        case .string(let s)?:
            // Some models write the arguments as a JSON string holding an object.
            if case .object? = try? JinjaJSON.parse(s) { return try? JinjaJSON.dumps(JinjaJSON.parse(s)) }
            return nil
        case nil: return "{}"
        default: return nil
        }
    }

    private static func call(from value: JinjaValue, argumentKeys: [String]) -> ToolCall? {
        guard case .object(let o) = value, case .string(let name)? = o["name"] else { return nil }
        let args = argumentKeys.lazy.compactMap { o[$0] }.first
        guard let text = argumentsText(args) else { return nil }
        return ToolCall(id: o["id"]?.stringValue, name: name, arguments: text)
    }

    static func parseHermes(_ output: String) -> (content: String, calls: [ToolCall]) {
        if !output.contains("<tool_call>") {
            // Small models often drop the tags: a reply made only of call objects, one per line, is read as calls.
            var bare: [ToolCall] = []
            for line in output.split(separator: "\n") where !trimmed(String(line)).isEmpty {
                guard let value = try? JinjaJSON.parse(trimmed(String(line))),
                      let c = call(from: value, argumentKeys: ["arguments"]) else { return (output, []) }
                bare.append(c)
            }
            return bare.isEmpty ? (output, []) : ("", bare)
        }
        var content = ""
        var calls: [ToolCall] = []
        var rest = Substring(output)
        while let open = rest.range(of: "<tool_call>") {
            let before = rest[..<open.lowerBound]
            let afterOpen = rest[open.upperBound...]
            let close = afterOpen.range(of: "</tool_call>")
            let body = close.map { afterOpen[..<$0.lowerBound] } ?? afterOpen
            if let value = try? JinjaJSON.parse(String(body)), let c = call(from: value, argumentKeys: ["arguments", "parameters"]) {
                content += before
                calls.append(c)
            } else {
                content += rest[..<(close?.upperBound ?? rest.endIndex)]
            }
            rest = close.map { afterOpen[$0.upperBound...] } ?? ""
        }
        content += rest
        return (calls.isEmpty ? output : trimmed(content), calls)
    }

    static func parseLlama3(_ output: String) -> (content: String, calls: [ToolCall]) {
        var text = trimmed(output)
        if text.hasPrefix("<|python_tag|>") { text = trimmed(String(text.dropFirst("<|python_tag|>".count))) }
        var calls: [ToolCall] = []
        for piece in text.split(separator: ";", omittingEmptySubsequences: true) {
            guard let value = try? JinjaJSON.parse(trimmed(String(piece))),
                  let c = call(from: value, argumentKeys: ["parameters", "arguments"]) else {
                // One JSON object may itself hold ';' — try the whole text before giving up.
                if let value = try? JinjaJSON.parse(text), let c = call(from: value, argumentKeys: ["parameters", "arguments"]) {
                    return ("", [c])
                }
                return (output, [])
            }
            calls.append(c)
        }
        return calls.isEmpty ? (output, []) : ("", calls)
    }

    static func parseMistral(_ output: String) -> (content: String, calls: [ToolCall]) {
        guard let marker = output.range(of: "[TOOL_CALLS]") else { return (output, []) }
        let content = trimmed(String(output[..<marker.lowerBound]))
        let after = trimmed(String(output[marker.upperBound...]))
        if after.hasPrefix("[") {
            guard case .array(let items)? = try? JinjaJSON.parse(after) else { return (output, []) }
            let calls = items.compactMap { call(from: $0, argumentKeys: ["arguments", "parameters"]) }
            return calls.count == items.count && !calls.isEmpty ? (content, calls) : (output, [])
        }
        // `name[ARGS]{…}` repeated, each introduced by [TOOL_CALLS].
        var calls: [ToolCall] = []
        for segment in after.components(separatedBy: "[TOOL_CALLS]") {
            guard let args = segment.range(of: "[ARGS]") else { return (output, []) }
            let name = trimmed(String(segment[..<args.lowerBound]))
            guard !name.isEmpty, let value = try? JinjaJSON.parse(trimmed(String(segment[args.upperBound...]))),
                  let text = argumentsText(value) else { return (output, []) }
            calls.append(ToolCall(name: name, arguments: text))
        }
        return (content, calls)
    }

    private static func trimmed(_ s: String) -> String {
        (try? JinjaBuiltins.strip(s, nil, leading: true, trailing: true)) ?? s
    }
}
