import Foundation
import Swiftlet

/// What a chat or text completion request asks for, validated and tokenized.
struct GenerationRequest: Sendable {
    enum Kind: Sendable { case chat, completion }
    var kind: Kind
    var tokens: [TokenID]
    var parameters: GenerationParameters
    var stream: Bool
    var includeUsage: Bool
    /// Whether the response carries log-probabilities.
    var logprobs: Bool
}

/// Request parsing for `/v1/chat/completions` and `/v1/completions`.
struct OpenAIRequestParser {
    let model: LanguageModel
    let modelName: String
    /// Largest `max_tokens` a request may ask for (and the default).
    let maxTokensCap: Int

    /// Fields of both endpoints (OpenAI's and llama-server's sampling extensions).
    static let commonFields: Set<String> = [
        "model", "stream", "stream_options", "temperature", "top_p", "top_k", "min_p", "max_tokens", "stop", "seed",
        "presence_penalty", "frequency_penalty", "repeat_penalty", "repeat_last_n", "logit_bias", "n", "user",
        "response_format", "grammar", "json_schema", "logprobs", "store", "metadata", "service_tier",
    ]
    static let chatFields = commonFields.union(["messages", "top_logprobs", "max_completion_tokens", "parallel_tool_calls"])
    static let completionFields = commonFields.union(["prompt", "echo", "best_of", "suffix"])

    func chat(_ fields: JSONFields) throws -> GenerationRequest {
        try fields.rejectUnknown(Self.chatFields)
        guard let items = try fields.array("messages") else {
            throw APIError.invalidRequest("'messages' is required", param: "messages", code: "missing_required_parameter")
        }
        guard !items.isEmpty else { throw APIError.invalidRequest("'messages' must not be empty", param: "messages") }
        let messages = try items.enumerated().map { try message($1, index: $0) }
        let prompt: String
        do {
            prompt = try model.formatChat(messages)
        } catch let error as SwiftletError {
            throw APIError.invalidRequest("The chat template cannot render these messages: \(error.description)", param: "messages")
        }
        var request = try common(fields, tokens: model.tokenize(prompt), kind: .chat)
        if let k = try fields.integer("top_logprobs", in: 0...GenerationParameters.maxTopLogprobs) {
            guard request.logprobs else {
                throw APIError.invalidRequest("'top_logprobs' needs 'logprobs': true", param: "top_logprobs")
            }
            request.parameters.logprobs = k
        }
        if let n = try fields.integer("max_completion_tokens", in: 1...Int.max) {
            try setMaxTokens(n, on: &request, param: "max_completion_tokens")
        }
        return request
    }

    func completion(_ fields: JSONFields) throws -> GenerationRequest {
        try fields.rejectUnknown(Self.completionFields)
        guard let promptValue = fields.value("prompt") else {
            throw APIError.invalidRequest("'prompt' is required", param: "prompt", code: "missing_required_parameter")
        }
        let tokens: [TokenID]
        switch promptValue {
        case let .string(text):
            tokens = model.tokenize(text)
        case let .array(items) where items.count == 1:
            if case let .string(text) = items[0] { tokens = model.tokenize(text) } else {
                throw APIError.invalidType("prompt", expected: "a string, an array of one string, or an array of token ids")
            }
        case let .array(items):
            tokens = try items.map { item -> TokenID in
                guard let id = JSONFields.integer(item), (0..<model.config.vocabSize).contains(id) else {
                    throw APIError.invalidRequest("'prompt' token ids must be integers in 0..<\(model.config.vocabSize)",
                                                  param: "prompt")
                }
                return TokenID(id)
            }
        default:
            throw APIError.invalidType("prompt", expected: "a string, an array of one string, or an array of token ids")
        }
        guard !tokens.isEmpty else { throw APIError.invalidRequest("'prompt' is empty", param: "prompt") }
        if try fields.bool("echo") == true {
            throw APIError.invalidRequest("'echo' is not supported", param: "echo", code: "unsupported_parameter")
        }
        if let bestOf = try fields.integer("best_of", in: 1...Int.max), bestOf != 1 {
            throw APIError.invalidRequest("'best_of' must be 1 (one completion per request)", param: "best_of")
        }
        if try fields.string("suffix") != nil {
            throw APIError.invalidRequest("'suffix' is not supported", param: "suffix", code: "unsupported_parameter")
        }
        return try common(fields, tokens: tokens, kind: .completion)
    }

    private func message(_ value: OrderedJSON, index: Int) throws -> ChatMessage {
        let fields = try JSONFields(value, at: "messages[\(index)].", expected: "messages[\(index)]", as: "an object")
        try fields.rejectUnknown(["role", "content", "name", "tool_calls", "tool_call_id", "refusal"])
        guard var role = try fields.string("role") else {
            throw APIError.invalidRequest("'messages[\(index)].role' is required", param: "messages[\(index)].role")
        }
        guard ["system", "developer", "user", "assistant", "tool"].contains(role) else {
            throw APIError.invalidRequest("'messages[\(index)].role' is '\(role)'; expected system, developer, user, assistant or tool",
                                          param: "messages[\(index)].role")
        }
        if role == "developer" { role = "system" }
        let content: String
        switch fields.value("content") {
        case nil:
            guard role == "assistant" else {
                throw APIError.invalidRequest("'messages[\(index)].content' is required", param: "messages[\(index)].content")
            }
            content = ""
        case let .string(text)?:
            content = text
        case let .array(parts)?:
            content = try parts.enumerated().map { partIndex, part in
                let name = "messages[\(index)].content[\(partIndex)]"
                let p = try JSONFields(part, at: name + ".", expected: name, as: "an object")
                guard try p.string("type") == "text", let text = try p.string("text") else {
                    throw APIError.invalidRequest("'\(name)' must be a text part ({\"type\": \"text\", \"text\": …}); this model reads text only",
                                                  param: name)
                }
                return text
            }.joined()
        default:
            throw APIError.invalidType("messages[\(index)].content", expected: "a string or an array of text parts")
        }
        return ChatMessage(role: role, content: content, toolCallID: try fields.string("tool_call_id"),
                           name: try fields.string("name"))
    }

    private func common(_ fields: JSONFields, tokens: [TokenID], kind: GenerationRequest.Kind) throws -> GenerationRequest {
        if let name = try fields.string("model"), !name.isEmpty, name != modelName {
            throw APIError.modelNotFound(name)
        }
        if let n = try fields.integer("n", in: 1...Int.max), n != 1 {
            throw APIError.invalidRequest("'n' must be 1 (one choice per request)", param: "n")
        }
        var sampling = SamplingParameters()
        if let t = try fields.number("temperature", in: 0...2) { sampling.temperature = Float(t) }
        if let p = try fields.number("top_p", in: 0...1) { sampling.topP = Float(p) }
        if let k = try fields.integer("top_k", in: 0...model.config.vocabSize) { sampling.topK = k }
        if let p = try fields.number("min_p", in: 0...1) { sampling.minP = Float(p) }
        if let p = try fields.number("presence_penalty", in: -2...2) { sampling.presencePenalty = Float(p) }
        if let p = try fields.number("frequency_penalty", in: -2...2) { sampling.frequencyPenalty = Float(p) }
        if let p = try fields.number("repeat_penalty", in: 0.0001...10) { sampling.repetitionPenalty = Float(p) }
        if let n = try fields.integer("repeat_last_n", in: -1...model.contextLength) { sampling.penaltyWindow = n }
        if let seed = fields.value("seed") {
            guard let s = JSONFields.integer(seed) else { throw APIError.invalidType("seed", expected: "an integer") }
            sampling.seed = UInt64(bitPattern: Int64(s))
        }
        if let bias = try fields.object("logit_bias") {
            guard bias.members.count <= 1024 else {
                throw APIError.invalidRequest("'logit_bias' has more than 1024 entries", param: "logit_bias")
            }
            for (key, _) in bias.members {
                guard let id = Int(key), (0..<model.config.vocabSize).contains(id) else {
                    throw APIError.invalidRequest("'logit_bias' key '\(key)' is not a token id in 0..<\(model.config.vocabSize)",
                                                  param: "logit_bias")
                }
                sampling.logitBias[TokenID(id)] = Float(try bias.number(key, in: -100...100)!)
            }
        }

        var parameters = GenerationParameters(sampling: sampling)
        parameters.stopStrings = try stopStrings(fields)
        parameters.constraint = try constraint(fields)
        let stream = try fields.bool("stream") ?? false
        var includeUsage = false
        if let options = try fields.object("stream_options") {
            try options.rejectUnknown(["include_usage"])
            includeUsage = try options.bool("include_usage") ?? false
        }
        var logprobs = false
        switch (kind, fields.value("logprobs")) {
        case (_, nil): break
        case (.chat, .bool(let on)?): logprobs = on; parameters.logprobs = on ? 0 : nil
        case (.completion, let value?):
            guard let k = JSONFields.integer(value), (0...GenerationParameters.maxTopLogprobs).contains(k) else {
                throw APIError.invalidRequest("'logprobs' must be an integer in 0...\(GenerationParameters.maxTopLogprobs)",
                                              param: "logprobs")
            }
            logprobs = true; parameters.logprobs = k
        default: throw APIError.invalidType("logprobs", expected: "a boolean")
        }

        let limit = model.contextLength
        guard tokens.count < limit else {
            throw APIError.contextExceeded("This model's maximum context length is \(limit) tokens, "
                + "but the prompt has \(tokens.count) tokens (leaving no room for a reply)")
        }
        var request = GenerationRequest(kind: kind, tokens: tokens, parameters: parameters, stream: stream,
                                        includeUsage: includeUsage, logprobs: logprobs)
        request.parameters.maxTokens = min(maxTokensCap, limit - tokens.count)
        if let n = try fields.integer("max_tokens", in: 1...Int.max) { try setMaxTokens(n, on: &request, param: "max_tokens") }
        return request
    }

    private func setMaxTokens(_ n: Int, on request: inout GenerationRequest, param: String) throws {
        guard n <= maxTokensCap else {
            throw APIError.invalidRequest("'\(param)' is \(n); this server allows at most \(maxTokensCap)", param: param,
                                          code: "out_of_range")
        }
        let limit = model.contextLength
        guard n <= limit - request.tokens.count else {
            throw APIError.contextExceeded("This model's maximum context length is \(limit) tokens; the prompt has "
                + "\(request.tokens.count) tokens and '\(param)' asks for \(n) more")
        }
        request.parameters.maxTokens = n
    }

    private func stopStrings(_ fields: JSONFields) throws -> [String] {
        switch fields.value("stop") {
        case nil: return []
        case let .string(s)?: return [s]
        case let .array(items)?:
            guard items.count <= 4 else { throw APIError.invalidRequest("'stop' holds at most 4 strings", param: "stop") }
            return try items.map {
                guard case let .string(s) = $0 else { throw APIError.invalidType("stop", expected: "a string or an array of strings") }
                return s
            }
        default: throw APIError.invalidType("stop", expected: "a string or an array of strings")
        }
    }

    /// `response_format` (OpenAI), or llama-server's `grammar` / `json_schema` fields.
    private func constraint(_ fields: JSONFields) throws -> GenerationConstraint? {
        var result: GenerationConstraint?
        if let format = try fields.object("response_format") {
            try format.rejectUnknown(["type", "json_schema"])
            switch try format.string("type") {
            case "text"?: break
            case "json_object"?: result = .jsonObject
            case "json_schema"?:
                guard let spec = try format.object("json_schema") else {
                    throw APIError.invalidRequest("'response_format.json_schema' is required for type json_schema",
                                                  param: "response_format.json_schema")
                }
                try spec.rejectUnknown(["name", "schema", "strict", "description"])
                guard let schema = spec.value("schema") else {
                    throw APIError.invalidRequest("'response_format.json_schema.schema' is required",
                                                  param: "response_format.json_schema.schema")
                }
                result = .jsonSchema(schema.text)
            default:
                throw APIError.invalidRequest("'response_format.type' must be text, json_object or json_schema",
                                              param: "response_format.type")
            }
        }
        if let grammar = try fields.string("grammar") { result = .grammar(grammar) }
        if let schema = fields.value("json_schema") { result = .jsonSchema(schema.text) }
        do {
            _ = try result?.compiledGrammar()
        } catch let error as SwiftletError {
            throw APIError.invalidRequest("The output constraint is invalid: \(error.description)", param: "response_format")
        }
        return result
    }
}
