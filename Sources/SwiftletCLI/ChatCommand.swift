import ArgumentParser
import Foundation
import Swiftlet

/// `swiftlet chat -m FILE`: an interactive conversation in a `ChatSession`; the history is kept and
/// only each new turn is evaluated (the session's KV cache holds the rest).
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Chat interactively with a GGUF instruction-tuned model.",
        discussion: "Commands at the prompt: /reset forgets the conversation, /exit (or an empty line, or Ctrl-D) quits.")

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: [.customLong("sys", withSingleDash: true), .customLong("system-prompt"), .customLong("system")], help: "System prompt (llama.cpp's -sys).")
    var system: String?
    @Option(name: .customLong("tools"), help: "JSON file with tool definitions; parsed calls go to stderr, '/tool RESULT' answers one.")
    var tools: String?
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var cacheLimit: KVCacheLimitOptions
    @OptionGroup var lora: LoRAOptions

    func run() async throws {
        let model = try await LanguageModel.load(URL(fileURLWithPath: m), contextLength: sampling.c,
                                                 adapters: lora.adapters())
        let session = ChatSession(model, instructions: system, parameters: try sampling.parameters)
        session.tools = try tools.map { try ToolDefinition.list(fromJSON: readText($0)) } ?? []
        printError("chat with \(URL(fileURLWithPath: m).lastPathComponent) — /reset to forget, /exit or an empty line to quit")
        while true {
            FileHandle.standardOutput.write(Data("> ".utf8))
            guard let line = readLine(), !line.isEmpty, line != "/exit" else { break }
            if line == "/reset" { session.clear(); continue }
            var statistics: GenerationStatistics?
            var calls: [ToolCall] = []
            let stream = line.hasPrefix("/tool ")
                ? session.streamResponse(toToolResult: String(line.dropFirst(6)), name: session.history.last?.toolCalls.first?.name)
                : session.streamResponse(to: line)
            for try await chunk in stream {
                FileHandle.standardOutput.write(Data(chunk.text.utf8))
                if let s = chunk.statistics { statistics = s }
                calls += chunk.toolCalls
            }
            print()
            if let statistics { printError(statsLine(statistics)) }
            for call in calls { printError("tool call: \(call.name) \(call.arguments)") }
        }
    }
}
