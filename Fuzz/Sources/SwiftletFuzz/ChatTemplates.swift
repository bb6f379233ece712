// Fuzz target `jinja`: arbitrary bytes as a chat template's Jinja source, rendered over a fixed
// conversation (system, user, an assistant turn with a tool call, the tool's answer, a user turn,
// one tool offered) with tighter limits than the default so each input stays cheap (a loop of the
// default 200,000 iterations, or even 20,000, made a few inputs most of the run time). The rendered
// text goes through the tool-call parsers of every format (they read model output, which is as
// untrusted as a template, and rendered conversations hold tool-call markup).
//
// Invariants beyond "no crash": errors are `SwiftletError`s; a render never exceeds the output
// limit it was given.
import Foundation
import SwiftletCore
import SwiftletTokenizers

struct ChatTemplateUnderTest {
    static let limits = JinjaLimits(maximumOutputBytes: 1 << 20, maximumLoopIterations: 2_000, maximumCallDepth: 50,
                                    maximumBytesBuilt: 16 << 20, maximumRenderSeconds: 2)
    let messages: [ChatMessage]
    let tools: [ToolDefinition]

    init() throws {
        let call = ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city": "Paris", "days": [1, 2]}"#)
        messages = [
            .system("You are a concise assistant."),
            .user("What is the weather in Paris? {{ not a template }} {% neither %}"),
            .assistant("Let me check.", toolCalls: [call]),
            .tool(#"{"temperature": 21.5, "sky": "clear"}"#, name: "get_weather", toolCallID: "call_1"),
            .user("Thanks! Héllo — 日本語 😀"),
        ]
        tools = [try ToolDefinition(name: "get_weather", description: "Weather forecast for a city",
                                    parametersJSON: #"{"type": "object", "properties": {"city": {"type": "string"}, "#
                                        + #""days": {"type": "array", "items": {"type": "integer"}}}, "required": ["city"]}"#)]
    }

    func run(_ input: UnsafeRawBufferPointer) -> CInt {
        let source = String(decoding: input, as: UTF8.self)
        do {
            let template = try ChatTemplate(template: source, limits: Self.limits)
            let text = try template.render(messages: messages, tools: tools, addGenerationPrompt: true,
                                           bosToken: "<s>", eosToken: "</s>", context: ["enable_thinking": .bool(false)],
                                           date: JinjaDate(year: 2026, month: 1, day: 2, hour: 3, minute: 4, second: 5))
            guard text.utf8.count <= Self.limits.maximumOutputBytes else {
                fatalError("render produced \(text.utf8.count) bytes, over the limit of \(Self.limits.maximumOutputBytes)")
            }
            _ = template.toolCallFormat
            for format in ToolCallFormat.allCases { _ = ToolCallParser.parse(text, format: format) }
        } catch is SwiftletError {
        } catch {
            fatalError("untyped error: \(error)")
        }
        return 0
    }

    /// The real chat templates of Tests/Fixtures/chat-templates, as seeds.
    static func writeSeeds(fixtures: URL, to directory: URL) throws {
        let templates = fixtures.appendingPathComponent("chat-templates/templates")
        for name in try FileManager.default.contentsOfDirectory(atPath: templates.path) where name.hasSuffix(".jinja") {
            let source = try Data(contentsOf: templates.appendingPathComponent(name))
            try source.write(to: directory.appendingPathComponent(name))
        }
    }
}
