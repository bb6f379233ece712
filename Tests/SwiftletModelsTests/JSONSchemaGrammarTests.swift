import XCTest
import Foundation
import SwiftletTensor
import SwiftletModels
import Swiftlet
import SwiftletTestSupport

/// JSON Schema constrained generation: the 35-schema suite in Tests/Fixtures/json-schemas
/// (outputs validated by Python's jsonschema when the fixtures were made) is reproduced token
/// for token, bad schemas give typed errors with their JSON pointer, and the Decodable
/// convenience decodes.
final class JSONSchemaGrammarTests: XCTestCase {
    static let dir = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/json-schemas")

    func testSchemaSuiteReproducesValidatedOutputs() async throws {
        // Parsed in document order: the order of `properties` decides the order of the output.
        guard case let .array(schemas) = try OrderedJSON(parsing: String(contentsOf: Self.dir.appendingPathComponent("schemas.json"), encoding: .utf8)) else {
            return XCTFail("schemas.json is not an array")
        }
        let outputs = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dir.appendingPathComponent("outputs.json"))) as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(schemas.count, 30)
        XCTAssertEqual(schemas.count, outputs.count)
        XCTAssertTrue(outputs.allSatisfy { $0["valid"] as? Bool == true }, "every committed output validated")
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 384)
        for (schema, expected) in zip(schemas, outputs) {
            guard case let .string(name)? = schema["name"], case let .string(prompt)? = schema["prompt"], let schemaValue = schema["schema"] else {
                return XCTFail("malformed entry")
            }
            let schemaText = schemaValue.text
            let parameters = GenerationParameters(maxTokens: 256, sampling: .greedy, constraint: .jsonSchema(schemaText))
            var text = "", ids: [TokenID] = [], stop: StopReason?
            for try await chunk in model.generate(prompt: prompt, parameters: parameters) {
                text += chunk.text; ids += chunk.tokenIDs
                if let s = chunk.statistics { stop = s.stopReason }
            }
            XCTAssertEqual(ids, (expected["generated_ids"] as! [NSNumber]).map(\.int32Value), name)
            XCTAssertEqual(text, expected["text"] as? String, name)
            XCTAssertEqual(stop, .endOfGeneration, name)
            XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]), name)
        }
    }

    func testDecodableConvenience() async throws {
        struct Point: Decodable { var x: Double; var y: Double }
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 256)
        let schema = #"{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"],"additionalProperties":false}"#
        let (point, json) = try await model.generate(prompt: "A JSON point:", generating: Point.self, schema: schema,
                                                    parameters: GenerationParameters(maxTokens: 64, sampling: .greedy))
        XCTAssertEqual(point.x, 100)
        XCTAssertEqual(point.y, 100)
        XCTAssertTrue(json.hasPrefix("{\"x\":100"), json)
    }

    private func assertSchemaError(_ schema: String, path: String, contains: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try GrammarJSONSchema.grammar(schema: schema), file: file, line: line) { error in
            guard case let SwiftletError.invalidSchema(reason, p) = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(p, path, reason, file: file, line: line)
            XCTAssertTrue(reason.contains(contains), reason, file: file, line: line)
        }
    }

    func testBadSchemasReportTheirPath() {
        assertSchemaError(#"{"type":"object","properties":{"a":{"type":"wat"}}}"#, path: "/properties/a/type", contains: "unknown type")
        assertSchemaError(#"{"type":"array","items":{"type":"string","maxLength":2,"minLength":5}}"#, path: "/items/maxLength", contains: "below minLength")
        assertSchemaError(#"{"type":"array","minItems":3,"maxItems":1}"#, path: "/maxItems", contains: "below minItems")
        assertSchemaError(##"{"$ref":"#/$defs/missing"}"##, path: "/$ref", contains: "does not resolve")
        assertSchemaError(#"{"$ref":"https://example.com/s.json"}"#, path: "/$ref", contains: "only local references")
        assertSchemaError(#"{"type":"string","pattern":"(?=x)"}"#, path: "/pattern", contains: "look-arounds")
        assertSchemaError(#"{"type":"string","pattern":"a{5,2}"}"#, path: "/pattern", contains: "max below min")
        assertSchemaError(#"{"enum":[]}"#, path: "/enum", contains: "non-empty")
        assertSchemaError(#"{"type":"object","properties":{"a":{"type":"string"}},"required":["b"],"additionalProperties":false}"#,
                          path: "/required/0", contains: "not declared")
        assertSchemaError(#"{"type":"string","minLength":-1}"#, path: "/minLength", contains: "non-negative")
        assertSchemaError(#"{"type": "object",}"#, path: "", contains: "line 1, column 19")
        // Hostile nesting is bounded, not a stack overflow.
        assertSchemaError(String(repeating: #"{"type":"array","items":"#, count: 200) + "{}" + String(repeating: "}", count: 200),
                          path: "", contains: "nested deeper")
        var deep = "{}"
        for _ in 0..<80 { deep = #"{"type":"array","items":"# + deep + "}" }
        XCTAssertThrowsError(try GrammarJSONSchema.grammar(schema: deep)) { error in
            XCTAssertTrue("\(error)".contains("nested deeper than 64"), "\(error)")
        }
        // A regex with an unknown escape names its column.
        XCTAssertThrowsError(try GrammarRegex.grammar(pattern: #"ab\q"#)) { error in
            guard case let SwiftletError.invalidGrammar(_, line, column) = error else { return XCTFail("\(error)") }
            XCTAssertEqual([line, column], [1, 3])
        }
    }
}
