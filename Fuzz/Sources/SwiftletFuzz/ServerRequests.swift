// Fuzz target `server`: arbitrary bytes as the body of a POST to `/v1/chat/completions` (a body
// with `messages`) or `/v1/completions` (any other), decoded and validated as the server does
// (Server/: the server's own JSONRequest.swift, OpenAIRequests.swift, APIError.swift), with
// SmolLM2's real tokenizer and chat template; no network, no weights.
//
// Invariants beyond "no crash": a refusal is an `APIError` whose JSON body parses; an accepted
// request's prompt fits the context and its token budget is positive and within the cap.
import Foundation
import Swiftlet

final class RequestsUnderTest {
    let parser: OpenAIRequestParser

    init(models: URL) throws {
        let url = models.appendingPathComponent("smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf")
        let model = try LanguageModel(gguf: GGUFFile(url: url), contextLength: 2048)
        parser = OpenAIRequestParser(model: model, modelName: "smollm2", maxTokensCap: 512)
    }

    func run(_ input: UnsafeRawBufferPointer) -> CInt {
        do {
            let fields = try JSONFields(body: Array(input))
            let request = fields.value("messages") != nil ? try parser.chat(fields) : try parser.completion(fields)
            let budget = request.parameters.maxTokens
            guard !request.tokens.isEmpty, request.tokens.count < parser.model.contextLength, budget > 0,
                  budget <= parser.maxTokensCap, request.tokens.count + budget <= parser.model.contextLength else {
                fatalError("accepted a request of \(request.tokens.count) tokens with max_tokens \(budget)")
            }
        } catch let error as APIError {
            guard (try? OrderedJSON(parsing: error.json)) != nil else { fatalError("error body is not JSON: \(error.json)") }
        } catch {
            fatalError("not an APIError: \(error)")
        }
        return 0
    }
}
