import Foundation
import XCTest
import SwiftletTokenizers
import SwiftletTensor
import SwiftletTestSupport

/// llama.cpp's 70 chat templates rendered on the conversations of
/// `Tests/Fixtures/chat-templates/conversations.json`, against transformers' own renders
/// (see that folder's SOURCE.md).
final class JinjaChatTemplateFixtureTests: XCTestCase {
    /// Pairs Swiftlet does not render like transformers, each refused with a typed error
    /// (the README lists them with the reason).
    static let knownExceptions: Set<String> = []

    func testTemplatesRenderLikeTransformers() throws {
        let root = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/chat-templates")
        guard case .object(let conversations) = try JinjaJSON.parse(String(contentsOf: root.appendingPathComponent("conversations.json"), encoding: .utf8)),
              case .object(let expected) = try JinjaJSON.parse(String(contentsOf: root.appendingPathComponent("expected.json"), encoding: .utf8)) else {
            return XCTFail("fixtures are not JSON objects")
        }
        var identical = 0, total = 0
        var exceptions: Set<String> = []
        for (templateName, results) in expected {
            let source = try String(contentsOf: root.appendingPathComponent("templates").appendingPathComponent(templateName), encoding: .utf8)
            guard case .object(let perConversation) = results else { return XCTFail("bad expected entry \(templateName)") }
            let template: ChatTemplate?
            var parseError: Error?
            do { template = try ChatTemplate(template: source) } catch { template = nil; parseError = error }
            for (conversationName, result) in perConversation {
                total += 1
                let pair = "\(templateName) \(conversationName)"
                guard case .object(let conversation)? = conversations[conversationName], case .object(let r) = result else {
                    XCTFail("no conversation \(conversationName)"); continue
                }
                var rendered: String?
                var renderError: Error? = parseError
                if let template {
                    do {
                        rendered = try template.render(messages: conversation["messages"]!, tools: conversation["tools"],
                                                       addGenerationPrompt: conversation["add_generation_prompt"]?.isTruthy ?? false,
                                                       bosToken: "<|bos|>", eosToken: "<|eos|>",
                                                       date: JinjaDate(year: 2026, month: 7, day: 26))
                    } catch { renderError = error }
                }
                if let renderError {
                    guard case SwiftletError.template = renderError else { XCTFail("\(pair): untyped error \(renderError)"); continue }
                }
                if case .string(let want)? = r["output"] {
                    if rendered == want {
                        identical += 1
                    } else if rendered != nil {
                        XCTFail("\(pair): rendered text differs from transformers'")
                    } else {
                        exceptions.insert(pair)
                        XCTAssertTrue(Self.knownExceptions.contains(pair), "\(pair): unlisted failure \(renderError!)")
                    }
                } else {
                    // transformers raised: Swiftlet must refuse too.
                    if rendered == nil { identical += 1 } else { XCTFail("\(pair): transformers raised \(r["error"]!.pythonString)") }
                }
            }
        }
        XCTAssertEqual(total, 630)
        XCTAssertEqual(exceptions, Self.knownExceptions.intersection(exceptions), "listed exceptions")
        let rate = Double(identical) / Double(total)
        print("chat templates: \(identical)/\(total) pairs identical (\(String(format: "%.1f", rate * 100)) %)")
        XCTAssertGreaterThanOrEqual(rate, 0.95)
    }
}
