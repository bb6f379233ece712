import ArgumentParser
import Foundation
import Swiftlet

/// `-t/--threads`, as llama.cpp's tools take it: the compute threads of the shared pool.
struct ThreadOptions: ParsableArguments {
    @Option(name: [.short, .customLong("threads")], help: "Compute threads (default: physical cores).")
    var threads: Int?

    func validate() throws {
        if let threads { try ComputePool.setSharedThreadCount(threads) }
    }
}

/// Options shared by `generate` and `chat`.
struct SamplingOptions: ParsableArguments {
    // Unconditional, so that `-n -1` (until the context is full, as in llama.cpp) is a value.
    @Option(name: .short, parsing: .unconditional, help: "Most tokens to generate (-1 = until the context is full).")
    var n: Int = 256
    @Option(help: "Temperature (0 = greedy).")
    var temp: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Top-k (0 = off).")
    var topK: Int = 40
    @Option(name: .customLong("top-p"), help: "Top-p (1 = off).")
    var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Min-p (0 = off).")
    var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1 = off).")
    var repeatPenalty: Float = 1
    @Option(name: .customLong("presence-penalty"), help: "Presence penalty (0 = off).")
    var presencePenalty: Float = 0
    @Option(name: .customLong("frequency-penalty"), help: "Frequency penalty (0 = off).")
    var frequencyPenalty: Float = 0
    @Option(help: "Random seed (default: random).")
    var seed: UInt64?
    @Option(name: .customLong("repeat-last-n"), parsing: .unconditional, help: "Last tokens the penalties look at (-1 = all).")
    var repeatLastN: Int = 64
    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past end-of-generation tokens.")
    var ignoreEOS = false
    @Option(name: .customLong("stop"), help: "Stop string (repeatable).")
    var stop: [String] = []
    @Option(name: [.short, .customLong("ctx-size")], help: "Context length (default: the model's, at most 4096).")
    var c: Int?
    @Option(help: "GBNF grammar the output must match (llama.cpp syntax, start rule 'root').")
    var grammar: String?
    @Option(name: .customLong("grammar-file"), help: "Read the GBNF grammar from a file.")
    var grammarFile: String?
    @Option(name: [.customShort("j"), .customLong("json-schema")], help: "JSON Schema the output must satisfy (JSON text).")
    var jsonSchema: String?
    @Option(name: [.customLong("jf", withSingleDash: true), .customLong("json-schema-file")], help: "Read the JSON Schema from a file.")
    var jsonSchemaFile: String?

    /// The output constraint from --grammar / --grammar-file / --json-schema / --json-schema-file.
    func constraint() throws -> GenerationConstraint? {
        let given = [grammar, grammarFile, jsonSchema, jsonSchemaFile].compactMap { $0 }
        guard given.count <= 1 else {
            throw ValidationError("give at most one of --grammar, --grammar-file, --json-schema, --json-schema-file")
        }
        if let grammar { return .grammar(grammar) }
        if let grammarFile { return .grammar(try readTextFile(grammarFile)) }
        if let jsonSchema { return .jsonSchema(jsonSchema) }
        if let jsonSchemaFile { return .jsonSchema(try readTextFile(jsonSchemaFile)) }
        return nil
    }

    func validate() throws {
        do { try samplingParameters.validate() } catch let error as SwiftletError {
            if case let .invalidArgument(what) = error { throw ValidationError(what) }
            throw error
        }
    }

    /// The sampler's settings from the options.
    var samplingParameters: SamplingParameters {
        SamplingParameters(temperature: temp, topK: topK, topP: topP, minP: minP,
                           repetitionPenalty: repeatPenalty, presencePenalty: presencePenalty,
                           frequencyPenalty: frequencyPenalty, penaltyWindow: repeatLastN, seed: seed)
    }

    var parameters: GenerationParameters {
        get throws {
            GenerationParameters(maxTokens: n, sampling: samplingParameters, stopStrings: stop,
                                 stopAtEndOfGeneration: !ignoreEOS, constraint: try constraint())
        }
    }
}

/// Runs async work from a synchronous command (the generation itself runs on its own thread).
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    final class Box: @unchecked Sendable { var error: Error? }  // written by the task before `done.signal()`, read after `done.wait()`
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { try await body() } catch { box.error = error }
        done.signal()
    }
    done.wait()
    if let error = box.error { throw error }
}

func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

func statsLine(_ s: GenerationStatistics) -> String {
    String(format: "prompt %d tokens (%d evaluated) %.1f t/s | generated %d tokens %.1f t/s | first token %.0f ms | stop: %@",
           s.promptTokens, s.promptTokensEvaluated, s.promptTokensPerSecond, s.generatedTokens,
           s.generatedTokensPerSecond, s.timeToFirstToken * 1000, s.stopReason.rawValue)
}

/// `swiftlet generate -m FILE -p PROMPT`: streams a continuation to stdout, statistics to stderr.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate text from a prompt with a GGUF language model.")

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: [.short, .customLong("prompt")], help: "Prompt text.")
    var p: String?
    @Option(name: .customLong("prompt-file"), help: "Read the prompt from a file.")
    var promptFile: String?
    @Option(name: .customLong("output-format"), help: "text (stream) or json (one object at the end).")
    var outputFormat: String = "text"
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var lora: LoRAOptions
    @OptionGroup var attention: AttentionOptions
    @Flag(name: .customLong("print-grammar"), help: "Print the GBNF grammar of --grammar/--json-schema (schemas converted) and exit.")
    var printGrammar = false

    func validate() throws {
        if !printGrammar && (p == nil) == (promptFile == nil) { throw ValidationError("give exactly one of -p PROMPT or --prompt-file FILE") }
        if !["text", "json"].contains(outputFormat) { throw ValidationError("--output-format is text or json") }
    }

    func run() throws {
        // A bad grammar or schema is reported before the model loads.
        try sampling.constraint()?.checkSyntax()
        if printGrammar {
            print(try sampling.constraint()?.grammarText() ?? "", terminator: "")
            return
        }
        let prompt = try p ?? readTextFile(promptFile!)
        let kv = try attention.resolved()
        let model = try LanguageModel(url: URL(fileURLWithPath: m), contextLength: sampling.c, cacheType: kv.key,
                                      valueCacheType: kv.value, flashAttention: kv.flashAttention, adapters: lora.adapters())
        let promptIDs = model.tokenize(prompt)
        let parameters = try sampling.parameters
        let json = outputFormat == "json"
        final class Result: @unchecked Sendable { var ids: [TokenID] = []; var text = ""; var stats: GenerationStatistics? }  // filled by the generation task, read after `runBlocking` returns
        let result = Result()
        try runBlocking {
            for try await chunk in model.generate(tokens: promptIDs, parameters: parameters) {
                result.ids += chunk.tokenIDs
                result.text += chunk.text
                if !json && !chunk.text.isEmpty {
                    FileHandle.standardOutput.write(Data(chunk.text.utf8))
                }
                if let s = chunk.statistics { result.stats = s }
            }
        }
        if json {
            let output = GenerateJSONOutput(promptIDs: promptIDs, generatedIDs: result.ids, text: result.text,
                                            stats: result.stats.map(GenerateJSONOutput.Statistics.init))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print()
        }
        if let s = result.stats { printError(statsLine(s)) }
    }
}

/// `generate --output-format json`: one object after the generation.
struct GenerateJSONOutput: Encodable {
    struct Statistics: Encodable {
        let promptTokens, promptTokensEvaluated, generatedTokens: Int
        let promptSeconds, generationSeconds, timeToFirstToken: Double
        let promptTokensPerSecond, generatedTokensPerSecond: Double
        let stopReason: String

        init(_ s: GenerationStatistics) {
            promptTokens = s.promptTokens; promptTokensEvaluated = s.promptTokensEvaluated
            generatedTokens = s.generatedTokens; promptSeconds = s.promptSeconds
            generationSeconds = s.generationSeconds; timeToFirstToken = s.timeToFirstToken
            promptTokensPerSecond = s.promptTokensPerSecond; generatedTokensPerSecond = s.generatedTokensPerSecond
            stopReason = s.stopReason.rawValue
        }

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens", promptTokensEvaluated = "prompt_tokens_evaluated"
            case generatedTokens = "generated_tokens", promptSeconds = "prompt_seconds"
            case generationSeconds = "generation_seconds", timeToFirstToken = "time_to_first_token"
            case promptTokensPerSecond = "prompt_tokens_per_second"
            case generatedTokensPerSecond = "generated_tokens_per_second", stopReason = "stop_reason"
        }
    }

    let promptIDs: [TokenID]
    let generatedIDs: [TokenID]
    let text: String
    let stats: Statistics?

    enum CodingKeys: String, CodingKey {
        case promptIDs = "prompt_ids", generatedIDs = "generated_ids", text, stats
    }
}
