import Foundation
import Synchronization
import SwiftletTensor
import SwiftletFormats
import SwiftletTokenizers
import SwiftletModels

/// What to generate and when to stop.
public struct GenerationParameters: Sendable, Equatable {
    /// Most tokens to generate; negative: until the context is full (llama.cpp's `-n -1`).
    public var maxTokens: Int
    /// How each token is chosen.
    public var sampling: SamplingParameters
    /// Generation stops before any of these strings would appear in the output.
    public var stopStrings: [String]
    /// Stop at the model's end-of-sequence / end-of-turn tokens.
    public var stopAtEndOfGeneration: Bool

    public init(maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                stopStrings: [String] = [], stopAtEndOfGeneration: Bool = true) {
        self.maxTokens = maxTokens; self.sampling = sampling
        self.stopStrings = stopStrings; self.stopAtEndOfGeneration = stopAtEndOfGeneration
    }
}

/// Why generation ended.
public enum StopReason: String, Sendable, Codable {
    case endOfGeneration, stopString, maxTokens, cancelled
}

/// Timing and counts of one generation.
public struct GenerationStatistics: Sendable, Codable, Equatable {
    /// Tokens of the prompt, and how many of them had to be evaluated (the rest were cached).
    public var promptTokens: Int
    public var promptTokensEvaluated: Int
    public var generatedTokens: Int
    /// Seconds spent evaluating the prompt (prefill).
    public var promptSeconds: Double
    /// Seconds spent generating after the first token.
    public var generationSeconds: Double
    /// Seconds from the call until the first generated token was available.
    public var timeToFirstToken: Double
    public var stopReason: StopReason

    /// Prompt tokens evaluated per second.
    public var promptTokensPerSecond: Double {
        promptSeconds > 0 ? Double(promptTokensEvaluated) / promptSeconds : 0
    }
    /// Generated tokens per second (decode steps after the first token).
    public var generatedTokensPerSecond: Double {
        generatedTokens > 1 && generationSeconds > 0 ? Double(generatedTokens - 1) / generationSeconds : 0
    }
}

/// A piece of streamed output. The last chunk of a generation carries the statistics.
public struct GenerationChunk: Sendable {
    /// New text (may be empty, e.g. while a multi-byte character or a possible stop string is held back).
    public var text: String
    /// Token ids generated since the previous chunk.
    public var tokenIDs: [Int]
    /// Set on the final chunk only.
    public var statistics: GenerationStatistics?
}

/// A text-generation model loaded from a GGUF file: tokenizer, transformer, sampler.
///
/// ```swift
/// let model = try await LanguageModel.load(url)
/// for try await chunk in model.generate(prompt: "Once upon a time") { print(chunk.text, terminator: "") }
/// ```
/// Generations run one at a time on a dedicated thread; cancelling the consuming task stops
/// the generation after the current token. The KV cache keeps the last conversation, so a
/// prompt that extends the previous one (a chat turn) only evaluates the new tokens.
public final class LanguageModel: Sendable {
    /// The model's tokenizer.
    public let tokenizer: any Tokenizer
    /// Hyperparameters read from the file.
    public let config: TransformerConfig
    /// The chat template family of the file, or why it has none usable.
    public let chatTemplate: Result<ChatTemplate, SwiftletError>
    private let engine: Engine

    /// Loads a GGUF model (memory-mapped: weights are read in place).
    /// - Parameter contextLength: KV-cache positions; default the model's trained context capped at 4096.
    /// - Parameter cacheType: `.f16` (the default, as llama.cpp's) reproduces llama.cpp's attention bit
    ///   for bit; `.f32` keeps full precision at twice the memory.
    public static func load(_ url: URL, contextLength: Int? = nil, cacheType: KVCacheType = .f16) async throws -> LanguageModel {
        try LanguageModel(url: url, contextLength: contextLength, cacheType: cacheType)
    }

    /// Synchronous form of ``load(_:contextLength:)``.
    public init(url: URL, contextLength: Int? = nil, cacheType: KVCacheType = .f16) throws {
        let file = try GGUFFile(url: url)
        let transformer = try Transformer.load(gguf: file, contextLength: contextLength, cacheType: cacheType)
        tokenizer = try Tokenizers.load(gguf: file)
        config = transformer.config
        do {
            chatTemplate = .success(try ChatTemplate(gguf: file))
        } catch let error as SwiftletError {
            chatTemplate = .failure(error)
        }
        engine = Engine(session: GenerationSession(transformer: transformer))
    }

    /// Positions of the context window.
    public var contextLength: Int { engine.contextLength }

    /// Token ids of `text` as the model expects a prompt (with BOS when the model adds one,
    /// special-token markup such as `<|im_start|>` recognized).
    public func tokenize(_ text: String) -> [Int] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: true).map(Int.init)
    }

    /// Streams the continuation of `prompt`.
    public func generate(prompt: String, parameters: GenerationParameters = GenerationParameters()) -> AsyncThrowingStream<GenerationChunk, Error> {
        generate(tokens: tokenize(prompt), parameters: parameters)
    }

    /// Streams the continuation of an already tokenized prompt.
    public func generate(tokens: [Int], parameters: GenerationParameters = GenerationParameters()) -> AsyncThrowingStream<GenerationChunk, Error> {
        let (stream, continuation) = AsyncThrowingStream<GenerationChunk, Error>.makeStream()
        let cancelled = CancellationFlag()
        continuation.onTermination = { _ in cancelled.cancel() }
        let job = GenerationJob(engine: engine, tokenizer: tokenizer, prompt: tokens, parameters: parameters,
                                cancelled: cancelled, continuation: continuation)
        let thread = Thread { job.run() }
        thread.stackSize = 1 << 22
        thread.start()
        return stream
    }

    /// Streams the assistant's reply to `messages`, formatted with the model's chat template.
    public func chat(_ messages: [ChatMessage], parameters: GenerationParameters = GenerationParameters()) throws -> AsyncThrowingStream<GenerationChunk, Error> {
        let prompt = try formatChat(messages)
        return generate(tokens: tokenizer.encode(prompt, addSpecial: true, parseSpecial: true).map(Int.init), parameters: parameters)
    }

    /// Perplexity of `text` measured as llama-perplexity does (see `Perplexity`): the text is
    /// tokenized whole (BOS added when the model adds one), split into chunks of `contextSize`
    /// tokens, and the second half of each chunk is scored. `progress` sees the running estimate.
    public func perplexity(text: String, contextSize: Int,
                           progress: (Perplexity.Estimate) -> Void = { _ in }) throws -> Perplexity.Estimate {
        let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false).map(Int.init)
        let bos = tokenizer.addsBOS ? tokenizer.bosID.map(Int.init) : nil
        return try engine.withSession { session in
            session.reset()
            defer { session.reset() }
            return try Perplexity.measure(session.transformer, tokens: tokens, contextSize: contextSize, bos: bos,
                                          progress: progress)
        }
    }

    /// The prompt text for `messages` followed by the assistant's turn opening.
    public func formatChat(_ messages: [ChatMessage]) throws -> String {
        try chatTemplate.get().render(messages: messages, addGenerationPrompt: true)
    }
}

/// The transformer session shared by generations, used by one at a time.
final class Engine: @unchecked Sendable {
    private let lock = NSLock()
    private let session: GenerationSession
    let contextLength: Int

    init(session: GenerationSession) {
        self.session = session
        contextLength = session.transformer.contextLength
    }

    func withSession<R>(_ body: (GenerationSession) throws -> R) rethrows -> R {
        lock.lock(); defer { lock.unlock() }
        return try body(session)
    }
}

/// Set when the consumer of a stream goes away or its task is cancelled.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// One generation: prefill, then sample / decode until a stop condition, streaming text.
struct GenerationJob: @unchecked Sendable {
    let engine: Engine
    let tokenizer: any Tokenizer
    let prompt: [Int]
    let parameters: GenerationParameters
    let cancelled: CancellationFlag
    let continuation: AsyncThrowingStream<GenerationChunk, Error>.Continuation

    func run() {
        do {
            try engine.withSession { session in try generate(session) }
        } catch {
            continuation.finish(throwing: error)
        }
    }

    private func generate(_ session: GenerationSession) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds(since t: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9 }

        var p = parameters
        try p.sampling.validate()
        // Fail early rather than run out of room mid-answer (written so that no sum can overflow).
        let room = session.transformer.contextLength - prompt.count
        if p.maxTokens < 0 {
            p.maxTokens = max(room, 0)
        } else if p.maxTokens > room {
            let (requested, overflow) = prompt.count.addingReportingOverflow(p.maxTokens)
            throw SwiftletError.contextOverflow(requested: overflow ? .max : requested, limit: session.transformer.contextLength)
        }
        let prefill = try session.prefill(prompt)
        var logits = prefill.logits
        let promptSeconds = seconds(since: start)
        let sampler = Sampler(parameters: p.sampling, vocabSize: session.transformer.config.vocabSize)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var text = StopStringFilter(stopStrings: p.stopStrings)
        var generated: [Int] = []
        generated.reserveCapacity(p.maxTokens)
        var firstTokenTime = 0.0
        var decodeStart = start
        var reason = StopReason.maxTokens

        while generated.count < p.maxTokens {
            if cancelled.isCancelled { reason = .cancelled; break }
            let token = session.tokens.withUnsafeBufferPointer { sampler.sample(logits, history: $0) }
            if generated.isEmpty { firstTokenTime = seconds(since: start); decodeStart = DispatchTime.now().uptimeNanoseconds }
            if p.stopAtEndOfGeneration && tokenizer.isEndOfGeneration(Int32(token)) { reason = .endOfGeneration; break }
            generated.append(token)
            let (newText, hitStop) = text.append(detokenizer.append(Int32(token)))
            continuation.yield(GenerationChunk(text: newText, tokenIDs: [token], statistics: nil))
            if hitStop { reason = .stopString; break }
            if generated.count == p.maxTokens { break }
            logits = try session.step(token)
        }
        let stats = GenerationStatistics(
            promptTokens: prompt.count, promptTokensEvaluated: prefill.evaluated, generatedTokens: generated.count,
            promptSeconds: promptSeconds, generationSeconds: generated.isEmpty ? 0 : seconds(since: decodeStart),
            timeToFirstToken: firstTokenTime, stopReason: reason)
        let tail = reason == .stopString ? "" : text.append(detokenizer.finish()).0 + text.flush()
        continuation.yield(GenerationChunk(text: tail, tokenIDs: [], statistics: stats))
        continuation.finish()
    }
}

/// Holds back streamed text that could still become a stop string, and cuts the output where a
/// stop string appears.
struct StopStringFilter {
    let stopStrings: [String]
    /// Text not yet emitted (it could be the start of a stop string).
    private var pending = ""

    init(stopStrings: [String]) { self.stopStrings = stopStrings.filter { !$0.isEmpty } }

    /// Adds decoded text; returns the text that is now safe to emit and whether a stop string
    /// was reached (the returned text then ends just before it).
    mutating func append(_ text: String) -> (String, Bool) {
        guard !stopStrings.isEmpty else { return (text, false) }
        pending += text
        for stop in stopStrings {
            if let r = pending.range(of: stop) {
                let out = String(pending[..<r.lowerBound])
                pending = ""
                return (out, true)
            }
        }
        // Keep the longest tail that is a prefix of some stop string.
        var keep = 0
        for stop in stopStrings {
            var n = min(stop.count, pending.count)
            while n > keep {
                if pending.hasSuffix(stop.prefix(n)) { keep = n; break }
                n -= 1
            }
        }
        let cut = pending.index(pending.endIndex, offsetBy: -keep)
        let out = String(pending[..<cut])
        pending = String(pending[cut...])
        return (out, false)
    }

    /// Everything still held back (end of generation).
    mutating func flush() -> String {
        defer { pending = "" }
        return pending
    }
}
