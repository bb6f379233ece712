import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet chat -m FILE`: an interactive conversation; the history is kept and only each new
/// turn is evaluated (the KV cache holds the rest).
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Chat interactively with a GGUF instruction-tuned model.")

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: .customLong("system"), help: "System prompt.")
    var system: String?
    @Option(name: .customLong("tools"), help: "JSON file with tool definitions; answer a call with '/tool RESULT'.")
    var tools: String?
    @OptionGroup var sampling: SamplingOptions

    func run() throws {
        let model = try LanguageModel(url: URL(fileURLWithPath: m), contextLength: sampling.c)
        let toolDefinitions = try tools.map { try ToolDefinition.list(fromJSON: readText($0)) } ?? []
        var messages: [ChatMessage] = system.map { [.system($0)] } ?? []
        printError("chat with \(URL(fileURLWithPath: m).lastPathComponent) — empty line or Ctrl-D to quit, /reset to forget")
        while true {
            FileHandle.standardOutput.write(Data("> ".utf8))
            guard let line = readLine(), !line.isEmpty else { break }
            if line == "/reset" { messages = system.map { [.system($0)] } ?? []; continue }
            if line.hasPrefix("/tool ") {
                messages.append(.tool(String(line.dropFirst(6)), name: messages.last?.toolCalls.first?.name))
            } else {
                messages.append(.user(line))
            }
            final class Reply: @unchecked Sendable { var text = ""; var stats: GenerationStatistics?; var calls: [ToolCall] = [] }
            let reply = Reply()
            let stream = try model.chat(messages, tools: toolDefinitions, parameters: sampling.parameters)
            try runBlocking {
                for try await chunk in stream {
                    reply.text += chunk.text
                    FileHandle.standardOutput.write(Data(chunk.text.utf8))
                    if let s = chunk.statistics { reply.stats = s }
                    reply.calls += chunk.toolCalls
                }
            }
            print()
            if let s = reply.stats { printError(statsLine(s)) }
            for call in reply.calls { printError("tool call: \(call.name) \(call.arguments)") }
            messages.append(reply.calls.isEmpty ? .assistant(reply.text) : .assistant("", toolCalls: reply.calls))
        }
    }
}
