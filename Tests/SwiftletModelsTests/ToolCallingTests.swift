import XCTest
import Foundation
import Swiftlet
import SwiftletTestSupport

/// Tool calling end to end on Qwen2.5-Coder-0.5B-Instruct (greedy): the model's own template
/// presents the tool, the reply parses into a `ToolCall` with valid JSON arguments, and the tool
/// result sent back as a `tool` message yields a final answer that uses it.
final class ToolCallingTests: XCTestCase {
    private func collect(_ stream: AsyncThrowingStream<GenerationChunk, Error>) async throws -> (text: String, calls: [ToolCall]) {
        var text = "", calls: [ToolCall] = []
        for try await chunk in stream {
            text += chunk.text
            calls += chunk.toolCalls
        }
        return (text, calls)
    }

    func testQwenCallsAToolAndAnswersWithItsResult() async throws {
        let model = try await LanguageModel.load(RealModel.qwen2.url(), contextLength: 1024)
        let weather = try ToolDefinition(
            name: "get_weather", description: "Get the current weather in a city.",
            parametersJSON: #"{"type": "object", "properties": {"location": {"type": "string", "description": "The city, e.g. Paris"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}"#)
        XCTAssertEqual(try model.chatTemplate.get().toolCallFormat, .hermes)
        let parameters = GenerationParameters(maxTokens: 96, sampling: .greedy)
        var messages: [ChatMessage] = [.user("What is the weather like in Paris right now?")]

        let first = try await collect(try model.chat(messages, tools: [weather], parameters: parameters))
        XCTAssertEqual(first.calls.count, 1, first.text)
        let call = try XCTUnwrap(first.calls.first)
        XCTAssertEqual(call.name, "get_weather")
        guard case .object(let arguments) = try call.argumentsValue() else { return XCTFail("arguments are not an object: \(call.arguments)") }
        XCTAssertEqual(arguments["location"]?.stringValue?.contains("Paris"), true, call.arguments)

        messages.append(.assistant("", toolCalls: first.calls))
        messages.append(.tool(#"{"temperature": 18, "unit": "celsius", "condition": "cloudy"}"#, name: "get_weather"))
        let second = try await collect(try model.chat(messages, tools: [weather], parameters: parameters))
        XCTAssertEqual(second.calls, [], second.text)
        XCTAssertFalse(second.text.contains("<tool_call>"), second.text)
        XCTAssertTrue(second.text.contains("18"), second.text)
    }
}
