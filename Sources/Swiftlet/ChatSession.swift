import Foundation
import Synchronization
import SwiftletTokenizers

/// A conversation with a ``LanguageModel``: its instructions, its history and a KV cache of its own.
///
/// ```swift
/// let model = try await LanguageModel.load(url)
/// let session = ChatSession(model, instructions: "You are a helpful assistant.")
/// session.parameters.sampling = .greedy
/// print(try await session.respond(to: "What is the capital of France?"))
/// for try await chunk in session.streamResponse(to: "And of Italy?") { print(chunk.text, terminator: "") }
/// ```
/// Each turn renders the whole history with the model's chat template; the session's cache still
/// holds the earlier turns, so only the new tokens are evaluated. Many sessions can share one model
/// (their generations take turns token by token on the model's inference thread). A reply that was
/// cancelled is not added to the history.
public final class ChatSession: Sendable {
    /// The model this session talks to.
    public let model: LanguageModel
    private let id: Int
    private let state: Mutex<State>

    private struct State {
        var instructions: String?
        var history: [ChatMessage]
        var parameters: GenerationParameters
        var tools: [ToolDefinition] = []
    }

    /// A new conversation with `model`; `instructions` become the system message.
    public init(_ model: LanguageModel, instructions: String? = nil,
                parameters: GenerationParameters = GenerationParameters()) {
        self.model = model
        id = model.makeSessionID()
        state = Mutex(State(instructions: instructions, history: [], parameters: parameters))
    }

    deinit {
        let engine = model.engine, id = id
        Task { await engine.close(session: id) }
    }

    /// How replies are generated (length, sampling, stop strings); read at the start of each reply.
    public var parameters: GenerationParameters {
        get { state.withLock { $0.parameters } }
        set { state.withLock { $0.parameters = newValue } }
    }

    /// The system message of the conversation.
    public var instructions: String? {
        get { state.withLock { $0.instructions } }
        set { state.withLock { $0.instructions = newValue } }
    }

    /// Tools the model may call; a reply that calls them ends with the parsed ``GenerationChunk/toolCalls``
    /// and enters the history as an assistant message with those calls (answer with
    /// ``streamResponse(toToolResult:name:toolCallID:)``).
    public var tools: [ToolDefinition] {
        get { state.withLock { $0.tools } }
        set { state.withLock { $0.tools = newValue } }
    }

    /// The turns so far (user and assistant messages), editable: the next reply is computed from
    /// whatever it holds then.
    public var history: [ChatMessage] {
        get { state.withLock { $0.history } }
        set { state.withLock { $0.history = newValue } }
    }

    /// Forgets the history (the instructions stay) and empties the session's cache.
    public func clear() {
        state.withLock { $0.history = [] }
        let engine = model.engine, id = id
        Task { await engine.reset(session: id) }
    }

    /// The assistant's whole reply to `prompt`, added to the history with it.
    /// Throws `CancellationError` when the calling task is cancelled.
    public func respond(to prompt: String) async throws -> String {
        var reply = ""
        for try await chunk in streamResponse(to: prompt) { reply += chunk.text }
        try Task.checkCancellation()
        return reply
    }

    /// Streams the assistant's reply to `prompt`; when it completes, the prompt and the reply are
    /// added to the history. Dropping the stream or cancelling its task stops the generation.
    public func streamResponse(to prompt: String) -> AsyncThrowingStream<GenerationChunk, Error> {
        stream(adding: .user(prompt))
    }

    /// Streams the assistant's reply after the result of a tool call (a `tool` message).
    public func streamResponse(toToolResult result: String, name: String? = nil, toolCallID: String? = nil) -> AsyncThrowingStream<GenerationChunk, Error> {
        stream(adding: .tool(result, name: name, toolCallID: toolCallID))
    }

    private func stream(adding message: ChatMessage) -> AsyncThrowingStream<GenerationChunk, Error> {
        let (instructions, history, parameters, tools) = state.withLock { ($0.instructions, $0.history, $0.parameters, $0.tools) }
        let messages = (instructions.map { [ChatMessage.system($0)] } ?? []) + history + [message]
        let tokens: [TokenID]
        let format: ToolCallFormat?
        do {
            tokens = model.tokenize(try model.formatChat(messages, tools: tools))
            format = tools.isEmpty ? nil : try model.chatTemplate.get().toolCallFormat ?? .hermes
        } catch {
            return AsyncThrowingStream { $0.finish(throwing: error) }
        }
        return model.generate(tokens: tokens, parameters: parameters, session: id, toolCallFormat: format) { reply, _ in
            let calls = format.map { ToolCallParser.parse(reply, format: $0).calls } ?? []
            let answer: ChatMessage = calls.isEmpty ? .assistant(reply) : .assistant("", toolCalls: calls)
            self.state.withLock { $0.history += [message, answer] }
        }
    }

    /// Writes the session's cached tokens with their keys and values, and its history, so a later
    /// process can continue the conversation without evaluating it again.
    public func saveState(to url: URL) async throws {
        let cache = try await model.engine.savedState(session: id)
        let history = state.withLock {
            SavedHistory(instructions: $0.instructions, messages: $0.history.map { .init(role: $0.role, content: $0.content) })
        }
        var data = Data()
        let historyJSON = try JSONEncoder().encode(history)
        withUnsafeBytes(of: UInt64(historyJSON.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(historyJSON)
        data.append(cache)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw SwiftletError.io(path: url.path, reason: "cannot write the session state: \(error.localizedDescription)")
        }
    }

    /// Replaces this session's history and cache with a state written by ``saveState(to:)`` for
    /// the same model file.
    public func restoreState(from url: URL) async throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SwiftletError.io(path: url.path, reason: "cannot read the session state: \(error.localizedDescription)")
        }
        guard data.count >= 8 else { throw SwiftletError.truncatedFile(path: url.path, what: "session state header") }
        let length = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(data.count - 8) else {
            throw SwiftletError.truncatedFile(path: url.path, what: "session history")
        }
        let historyEnd = 8 + Int(length)
        let saved: SavedHistory
        do {
            saved = try JSONDecoder().decode(SavedHistory.self, from: data.subdata(in: 8 ..< historyEnd))
        } catch {
            throw SwiftletError.malformedFile(path: url.path, reason: "session history: \(error)")
        }
        try await model.engine.restore(session: id, state: data.subdata(in: historyEnd ..< data.count))
        state.withLock {
            $0.instructions = saved.instructions
            $0.history = saved.messages.map { ChatMessage(role: $0.role, content: $0.content) }
        }
    }

    private struct SavedHistory: Codable {
        struct Message: Codable { var role: String; var content: String }
        var instructions: String?
        var messages: [Message]
    }
}
