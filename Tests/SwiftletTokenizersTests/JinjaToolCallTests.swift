import Foundation
import XCTest
import SwiftletTokenizers
import SwiftletTensor
import SwiftletTestSupport

/// Tool definitions reach the template, and the three tool-call formats parse into `ToolCall`s.
final class JinjaToolCallTests: XCTestCase {
    let weather = ToolDefinition(name: "get_weather", description: "Get the current weather in a city.",
                                 parameters: ["type": "object", "properties": ["location": ["type": "string"]], "required": ["location"]])

    /// A high surrogate escape followed by an escape that is not a low surrogate (found by the
    /// `jinja` fuzz target in a Hermes tool call: the pair arithmetic underflowed) stands alone
    /// as U+FFFD; the next escape is read on its own.
    func testUnpairedSurrogateEscapesBecomeReplacementCharacters() throws {
        XCTAssertEqual(try JinjaJSON.parse(#""\udaee\udaee""#), .string("\u{FFFD}\u{FFFD}"))
        XCTAssertEqual(try JinjaJSON.parse(#""\udaee\u0041""#), .string("\u{FFFD}A"))
        XCTAssertEqual(try JinjaJSON.parse(#""\udaee\udaee\ude00""#), .string("\u{FFFD}\u{CBA00}"))
        XCTAssertEqual(try JinjaJSON.parse(#""\ud83d\ude00""#), .string("😀"))
        XCTAssertEqual(try JinjaJSON.parse(#""\ude00x""#), .string("\u{FFFD}x"))
        let (content, calls) = ToolCallParser.parse("<tool_call>\r\"t\\udaee\\udaee\r</tool_call>", format: .hermes)
        XCTAssertTrue(calls.isEmpty, "an unterminated JSON string is no call: \(content)")
    }

    func testHermesFormat() throws {
        let output = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n"
            + "<tool_call>{\"name\": \"calculate\", \"arguments\": \"{\\\"expression\\\": \\\"1+1\\\"}\"}</tool_call>"
        let (content, calls) = ToolCallParser.parse(output, format: .hermes)
        XCTAssertEqual(content, "Let me check.")
        XCTAssertEqual(calls, [ToolCall(name: "get_weather", arguments: #"{"location": "Paris", "unit": "celsius"}"#),
                               ToolCall(name: "calculate", arguments: #"{"expression": "1+1"}"#)])
        XCTAssertEqual(try calls[0].argumentsValue(), ["location": "Paris", "unit": "celsius"])
        // Malformed JSON stays text: never a guessed call.
        let broken = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"location\": </tool_call>"
        XCTAssertEqual(ToolCallParser.parse(broken, format: .hermes).calls, [])
        XCTAssertEqual(ToolCallParser.parse(broken, format: .hermes).content, broken)
        XCTAssertEqual(ToolCallParser.parse("Plain answer.", format: .hermes).calls, [])
        // Without the tags, a reply that is only a call object still counts; prose with JSON does not.
        XCTAssertEqual(ToolCallParser.parse(#"{"name": "get_weather", "arguments": {"location": "Paris"}}"#, format: .hermes).calls.map(\.name), ["get_weather"])
        XCTAssertEqual(ToolCallParser.parse("Use {\"name\": 1} here.", format: .hermes).calls, [])
    }

    func testLlama3JSONFormat() {
        let (content, calls) = ToolCallParser.parse("<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Oslo; Norway\"}}",
                                                    format: .llama3JSON)
        XCTAssertEqual(content, "")
        XCTAssertEqual(calls, [ToolCall(name: "get_weather", arguments: #"{"location": "Oslo; Norway"}"#)])
        let two = ToolCallParser.parse(#"{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}}"#, format: .llama3JSON)
        XCTAssertEqual(two.calls.map(\.name), ["a", "b"])
        XCTAssertEqual(ToolCallParser.parse("The weather is fine.", format: .llama3JSON).calls, [])
    }

    func testMistralFormats() {
        let list = ToolCallParser.parse(#"[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Rome"}, "id": "a1b2c3d4e"}]"#,
                                        format: .mistral)
        XCTAssertEqual(list.calls, [ToolCall(id: "a1b2c3d4e", name: "get_weather", arguments: #"{"location": "Rome"}"#)])
        let newer = ToolCallParser.parse(#"[TOOL_CALLS]get_weather[ARGS]{"location": "Rome"}[TOOL_CALLS]calculate[ARGS]{"expression": "2"}"#,
                                         format: .mistral)
        XCTAssertEqual(newer.calls.map(\.name), ["get_weather", "calculate"])
        XCTAssertEqual(newer.calls[1].arguments, #"{"expression": "2"}"#)
    }

    /// The template sees tools and tool calls in the OpenAI shape; Qwen 2.5's template renders them.
    func testToolsAndCallsReachTheTemplate() throws {
        let root = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/chat-templates/templates")
        let template = try ChatTemplate(template: String(contentsOf: root.appendingPathComponent("Qwen-Qwen2.5-7B-Instruct.jinja"), encoding: .utf8))
        XCTAssertEqual(template.toolCallFormat, .hermes)
        let call = ToolCall(id: "call1", name: "get_weather", arguments: #"{"location": "Paris"}"#)
        let text = try template.render(messages: [.user("Weather in Paris?"), .assistant("", toolCalls: [call]),
                                                  .tool(#"{"temperature": 18}"#, name: "get_weather", toolCallID: "call1")],
                                       tools: [weather], addGenerationPrompt: true)
        XCTAssertTrue(text.contains(#"{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city.", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}"#), text)
        XCTAssertTrue(text.contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call><|im_end|>"), text)
        XCTAssertTrue(text.contains("<|im_start|>user\n<tool_response>\n{\"temperature\": 18}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"), text)
        XCTAssertEqual(try ToolDefinition.list(fromJSON: #"[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]"#).map(\.name), ["f"])
    }
}
