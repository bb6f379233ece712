import Foundation
import Synchronization
import SwiftletTensor
import SwiftletFormats
import SwiftletTokenizers
import SwiftletModels

/// The log-probability of a generated token and of the most likely tokens at its position.
public struct TokenLogprob: Sendable, Equatable {
    /// The generated token and its natural-log probability.
    public var token: TokenID
    public var logprob: Float
    /// The most likely tokens at this position, best first, with their log-probabilities.
    public var top: [(token: TokenID, logprob: Float)]

    public init(token: TokenID, logprob: Float, top: [(token: TokenID, logprob: Float)]) {
        self.token = token; self.logprob = logprob; self.top = top
    }

    public static func == (a: TokenLogprob, b: TokenLogprob) -> Bool {
        a.token == b.token && a.logprob == b.logprob && a.top.elementsEqual(b.top) { $0 == $1 }
    }

    /// Log-softmax of `logits` at `token`, and the `count` best tokens (a partial selection, one
    /// pass over the vocabulary plus `count` insertions).
    static func measure(_ logits: UnsafeBufferPointer<Float>, token: TokenID, top count: Int) -> TokenLogprob {
        var maxLogit = -Float.infinity
        for l in logits where l > maxLogit { maxLogit = l }
        var sum = 0.0
        for l in logits { sum += Double(expf(l - maxLogit)) }
        let logNorm = maxLogit + Float(log(sum))
        var best: [(token: TokenID, logprob: Float)] = []
        if count > 0 {
            best.reserveCapacity(count + 1)
            for (t, l) in logits.enumerated() where best.count < count || l > best[best.count - 1].logprob {
                var i = best.count
                while i > 0 && best[i - 1].logprob < l { i -= 1 }
                best.insert((TokenID(t), l), at: i)
                if best.count > count { best.removeLast() }
            }
        }
        return TokenLogprob(token: token, logprob: logits[Int(token)] - logNorm,
                            top: best.map { ($0.token, $0.logprob - logNorm) })
    }
}

/// Why generation ended.
public enum StopReason: String, Sendable, Codable {
    case endOfGeneration, stopString, maxTokens, cancelled
    /// The constraint allowed no token at all (the grammar cannot continue from here).
    case constraintRejectedAllTokens
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
    public var tokenIDs: [TokenID]
    /// Set on the final chunk only.
    public var statistics: GenerationStatistics?
    /// On the final chunk of a chat with tools: the tool calls parsed from the whole reply.
    public var toolCalls: [ToolCall] = []
    /// With ``GenerationParameters/logprobs`` set: one entry per token of ``tokenIDs``.
    public var logprobs: [TokenLogprob] = []
}

/// How far loading a model has come.
public struct LoadProgress: Sendable, Equatable {
    /// Tensors whose bytes have been read (paged in from the file).
    public var completedTensors: Int
    public var totalTensors: Int
    /// Bytes of tensor data read so far, and in all.
    public var completedBytes: Int
    public var totalBytes: Int

    /// Completed share of the bytes, 0…1.
    public var fractionCompleted: Double { totalBytes > 0 ? Double(completedBytes) / Double(totalBytes) : 1 }
}

/// A text-generation model loaded from a GGUF file: the model container that owns the weights,
/// the tokenizer and one inference thread.
///
/// ```swift
/// let model = try await LanguageModel.load(url)
/// let session = ChatSession(model, instructions: "Answer briefly.")
/// print(try await session.respond(to: "Name three prime numbers."))
/// ```
/// Many ``ChatSession``s and ``PromptSession``s share one loaded model; each keeps its own KV
/// cache. All inference runs on the model's own thread: generations of different sessions take
/// turns token by token in arrival order (a prefill runs whole), two generations of the same
/// session run one after the other. Cancelling the consuming task stops a generation within one
/// layer of prefill or one decoded token.
public final class LanguageModel: Sendable {
    /// The model's tokenizer.
    public let tokenizer: any Tokenizer
    /// Hyperparameters read from the file.
    public let config: TransformerConfig
    /// The file's chat template (or its architecture's default), or why it cannot be used.
    public let chatTemplate: Result<ChatTemplate, SwiftletError>
    /// Positions of each session's context window.
    public let contextLength: Int
    /// The memory limit the model's KV caches count against (see `KVCacheBudget`).
    public let cacheBudget: KVCacheBudget
    /// Bytes of one session's KV cache (each ``ChatSession`` or ``PromptSession`` makes one).
    public let sessionCacheBytes: Int
    let engine: InferenceEngine
    private let thread: InferenceThread
    private let sessionIDs = Atomic<Int>(1)

    /// Loads a GGUF model on a thread of its own (never blocking the caller's executor), reading
    /// every tensor's bytes once so the first generation does not wait on the disk.
    /// - Parameter url: the GGUF file.
    /// - Parameter contextLength: KV-cache positions per session; default the model's trained
    ///   context capped at 4096.
    /// - Parameter cacheType: `.f16` (the default, as llama.cpp's) reproduces llama.cpp's attention bit
    ///   for bit; `.f32` keeps full precision at twice the memory; `.q8_0` and the other block types
    ///   (llama.cpp's `-ctk`) shrink it and need `flashAttention`.
    /// - Parameter valueCacheType: the values' type (llama.cpp's `-ctv`), default `cacheType`.
    /// - Parameter flashAttention: llama.cpp's `-fa on` attention, bit for bit.
    /// - Parameter adapters: LoRA adapters applied on top of the weights, in order (see
    ///   `LoRAAdapter`; `ScaledAdapter(try LoRAAdapter(url: adapterURL), scale: 0.5)`). Each must
    ///   have been made for this model: one for another base throws a `SwiftletError` naming its file.
    /// - Parameter cacheBudget: the memory limit that the model's KV caches (its own and one per
    ///   session) count against, with every other model's of the budget; by default the process's
    ///   (`KVCacheBudget.shared`: 3/4 of physical memory minus the loaded weights, or
    ///   `SWIFTLET_KV_CACHE_LIMIT`). A session whose cache would not fit fails its generation with
    ///   `SwiftletError.kvCacheLimit`; closing sessions gives their share back.
    /// - Parameter progress: called on the loading thread as tensors are read.
    public static func load(_ url: URL, contextLength: Int? = nil, cacheType: KVCacheType = .f16,
                            valueCacheType: KVCacheType? = nil, flashAttention: Bool = false, adapters: [ScaledAdapter] = [],
                            cacheBudget: KVCacheBudget = .shared,
                            progress: (@Sendable (LoadProgress) -> Void)? = nil) async throws -> LanguageModel {
        let thread = InferenceThread(name: "swiftlet.inference")
        do {
            let loaded = try await thread.run {
                try Loaded(url: url, contextLength: contextLength, cache: (cacheType, valueCacheType, flashAttention), adapters: adapters,
                           cacheBudget: cacheBudget, progress: progress)
            }
            return LanguageModel(loaded, thread: thread)
        } catch {
            thread.stop()
            throw error
        }
    }

    /// Synchronous form of ``load(_:contextLength:cacheType:valueCacheType:flashAttention:adapters:cacheBudget:progress:)``
    /// (no page-in pass).
    public convenience init(url: URL, contextLength: Int? = nil, cacheType: KVCacheType = .f16,
                            valueCacheType: KVCacheType? = nil, flashAttention: Bool = false,
                            adapters: [ScaledAdapter] = [], cacheBudget: KVCacheBudget = .shared) throws {
        let loaded = try Loaded(url: url, contextLength: contextLength, cache: (cacheType, valueCacheType, flashAttention),
                                adapters: adapters, cacheBudget: cacheBudget, progress: nil)
        self.init(loaded, thread: InferenceThread(name: "swiftlet.inference"))
    }

    /// What loading produces, handed from the loading thread to the model.
    private struct Loaded: @unchecked Sendable {  // the transformer moves to the engine and is used only there
        let transformer: Transformer
        let tokenizer: any Tokenizer
        let chatTemplate: Result<ChatTemplate, SwiftletError>

        init(url: URL, contextLength: Int?, cache: (KVCacheType, KVCacheType?, Bool), adapters: [ScaledAdapter],
             cacheBudget: KVCacheBudget, progress: (@Sendable (LoadProgress) -> Void)?) throws {
            let file = try GGUFFile(url: url)
            if let progress { Self.pageIn(file, progress: progress) }
            transformer = try Transformer.load(gguf: file, contextLength: contextLength, cacheType: cache.0,
                                               valueCacheType: cache.1, flashAttention: cache.2, cacheBudget: cacheBudget)
            try transformer.setAdapters(adapters)
            tokenizer = try Tokenizers.load(gguf: file)
            do {
                chatTemplate = .success(try ChatTemplate(gguf: file))
            } catch let error as SwiftletError {
                chatTemplate = .failure(error)
            }
        }

        /// Touches every page of every tensor, reporting progress per tensor.
        private static func pageIn(_ file: GGUFFile, progress: @Sendable (LoadProgress) -> Void) {
            let tensors = file.tensors
            var report = LoadProgress(completedTensors: 0, totalTensors: tensors.count, completedBytes: 0,
                                      totalBytes: tensors.reduce(0) { $0 + $1.byteCount })
            progress(report)
            var checksum: UInt8 = 0
            for info in tensors {
                let bytes = file.data(for: info)
                var offset = 0
                while offset < bytes.count { checksum &+= bytes[offset]; offset += 4096 }
                report.completedTensors += 1
                report.completedBytes += info.byteCount
                progress(report)
            }
            withExtendedLifetime(checksum) {}
        }
    }

    private init(_ loaded: Loaded, thread: InferenceThread) {
        tokenizer = loaded.tokenizer
        config = loaded.transformer.config
        chatTemplate = loaded.chatTemplate
        contextLength = loaded.transformer.contextLength
        cacheBudget = loaded.transformer.cacheBudget
        sessionCacheBytes = loaded.transformer.defaultCache.byteCount
        self.thread = thread
        engine = InferenceEngine(transformer: loaded.transformer, executor: thread)
    }

    deinit { thread.stop() }

    /// Throws `SwiftletError.kvCacheLimit` unless `count` more sessions' caches fit in
    /// ``cacheBudget`` now (nothing is reserved: a server checks its slots at start).
    public func checkSessionsFit(_ count: Int, for what: String) throws {
        let (bytes, overflow) = max(count, 0).multipliedReportingOverflow(by: sessionCacheBytes)
        try cacheBudget.check(overflow ? nil : bytes, for: what)
    }

    /// A new id for a session's KV cache in the engine (0 is the model's own session).
    func makeSessionID() -> Int { sessionIDs.add(1, ordering: .relaxed).oldValue }

    /// Token ids of `text` as the model expects a prompt (with BOS when the model adds one,
    /// special-token markup such as `<|im_start|>` recognized).
    public func tokenize(_ text: String) -> [TokenID] {
        tokenizer.encode(text, addSpecial: true, parseSpecial: true)
    }

    /// Streams the continuation of `prompt` in the model's own session (whose cache keeps the last
    /// prompt, so a prompt that extends it only evaluates the new tokens).
    public func generate(prompt: String, parameters: GenerationParameters = GenerationParameters()) -> AsyncThrowingStream<GenerationChunk, Error> {
        generate(tokens: tokenize(prompt), parameters: parameters)
    }

    /// Streams the continuation of an already tokenized prompt.
    public func generate(tokens: [TokenID], parameters: GenerationParameters = GenerationParameters()) -> AsyncThrowingStream<GenerationChunk, Error> {
        generate(tokens: tokens, parameters: parameters, session: 0, onFinish: nil)
    }

    /// Streams a generation in session `session`; `onFinish` sees the whole text and the generated
    /// token ids of a generation that ended normally, before the stream's last chunk is delivered. With `toolCallFormat`,
    /// the last chunk carries the tool calls parsed from the whole reply.
    func generate(tokens: [TokenID], parameters: GenerationParameters, session: Int, toolCallFormat: ToolCallFormat? = nil,
                  onFinish: (@Sendable (String, [TokenID]) -> Void)?) -> AsyncThrowingStream<GenerationChunk, Error> {
        let (stream, continuation) = AsyncThrowingStream<GenerationChunk, Error>.makeStream()
        let cancelled = CancellationFlag()
        continuation.onTermination = { _ in cancelled.cancel() }
        let job = GenerationJob(tokenizer: tokenizer, prompt: tokens, parameters: parameters, toolCallFormat: toolCallFormat,
                                cancelled: cancelled, continuation: continuation, onFinish: onFinish)
        let engine = engine
        Task { await engine.run(job, session: session) }
        return stream
    }

    /// Streams the assistant's reply to `messages`, formatted with the model's chat template.
    /// (A ``ChatSession`` keeps the history for you.) With `tools`, the template presents them to
    /// the model and the final chunk carries the tool calls parsed from the reply (in the format
    /// the template prompts for); answer each with a `ChatMessage/tool(_:name:toolCallID:)`
    /// message and call `chat` again.
    public func chat(_ messages: [ChatMessage], tools: [ToolDefinition] = [], context: [String: JinjaValue] = [:],
                     parameters: GenerationParameters = GenerationParameters()) throws -> AsyncThrowingStream<GenerationChunk, Error> {
        let prompt = try formatChat(messages, tools: tools, context: context)
        let format = tools.isEmpty ? nil : try chatTemplate.get().toolCallFormat ?? .hermes
        return generate(tokens: tokenize(prompt), parameters: parameters, session: 0, toolCallFormat: format, onFinish: nil)
    }

    /// Perplexity of `text` measured as llama-perplexity does (see `Perplexity`): the text is
    /// tokenized whole (BOS added when the model adds one), split into chunks of `contextSize`
    /// tokens, and the second half of each chunk is scored. `progress` sees the running estimate.
    public func perplexity(text: String, contextSize: Int,
                           progress: @escaping @Sendable (Perplexity.Estimate) -> Void = { _ in }) async throws -> Perplexity.Estimate {
        let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let bos = tokenizer.addsBOS ? tokenizer.bosID : nil
        return try await engine.perplexity(tokens: tokens, contextSize: contextSize, bos: bos, progress: progress)
    }

    /// The prompt text for `messages` followed by the assistant's turn opening. The template
    /// sees the model's BOS/EOS text; a BOS it writes first is dropped when the tokenizer adds
    /// one itself (as llama.cpp does), so the prompt never starts with two.
    public func formatChat(_ messages: [ChatMessage], tools: [ToolDefinition] = [], context: [String: JinjaValue] = [:]) throws -> String {
        let bos = tokenizer.bosID.map { tokenizer.piece($0) } ?? ""
        let eos = tokenizer.eosID.map { tokenizer.piece($0) } ?? ""
        let text = try chatTemplate.get().render(messages: messages, tools: tools, addGenerationPrompt: true,
                                                 bosToken: bos, eosToken: eos, context: context)
        if tokenizer.addsBOS, !bos.isEmpty, text.hasPrefix(bos) { return String(text.dropFirst(bos.count)) }
        return text
    }
}

/// Owns the transformer and every session's KV cache; runs on the model's ``InferenceThread``, so
/// all of its methods are isolated to that one thread.
actor InferenceEngine {
    private let transformer: Transformer
    private let executor: InferenceThread
    private var sessions: [Int: GenerationSession] = [:]

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(transformer: Transformer, executor: InferenceThread) {
        self.transformer = transformer
        self.executor = executor
    }

    /// The session with id `id`, created on first use (id 0 uses the transformer's own cache).
    /// Every other session has a KV cache of its own, reserved in the transformer's
    /// ``KVCacheBudget`` before it is made: one that does not fit beside the others throws.
    private func session(_ id: Int) throws -> GenerationSession {
        if let session = sessions[id] { return session }
        let open = sessions.keys.count(where: { $0 != 0 })
        let cache = id == 0 ? nil : try transformer.makeCache(for: "a new session's KV cache (\(open) sessions open)")
        let session = GenerationSession(transformer: transformer, cache: cache)
        sessions[id] = session
        return session
    }

    func run(_ job: GenerationJob, session id: Int) async {
        await acquire(id)
        defer { release(id) }
        let vocabulary = job.parameters.constraint == nil ? nil : grammarVocabulary(for: job.tokenizer)
        let session: GenerationSession
        do {
            session = try self.session(id)
        } catch {
            return job.continuation.finish(throwing: error)
        }
        await job.run(session, grammarVocabulary: vocabulary, on: self)
    }

    /// Sessions with a generation (or other use of their cache) under way, and who waits for them.
    private var busySessions: Set<Int> = []
    private var sessionWaiters: [Int: [CheckedContinuation<Void, Never>]] = [:]

    /// Waits until no other generation uses session `id` (generations interleave per token, a
    /// session's cache holds one of them at a time).
    private func acquire(_ id: Int) async {
        if busySessions.insert(id).inserted { return }
        await withCheckedContinuation { sessionWaiters[id, default: []].append($0) }
    }

    /// Hands session `id` to its next waiter, in arrival order, or marks it free (and frees its
    /// cache when its owner is gone).
    private func release(_ id: Int) {
        guard var waiters = sessionWaiters[id], !waiters.isEmpty else {
            busySessions.remove(id)
            if closedSessions.contains(id) { forget(id) }
            return
        }
        let next = waiters.removeFirst()
        sessionWaiters[id] = waiters.isEmpty ? nil : waiters
        next.resume()
    }

    /// Token texts prepared for grammar matching, built on the first constrained generation.
    private var preparedGrammarVocabulary: GrammarVocabulary?

    private func grammarVocabulary(for tokenizer: any Tokenizer) -> GrammarVocabulary {
        if let v = preparedGrammarVocabulary { return v }
        let v = GrammarVocabulary(tokenizer: tokenizer)
        preparedGrammarVocabulary = v
        return v
    }

    /// Sessions whose owner is gone. A generation it started may still be queued (its task can
    /// reach the engine after the close) or running: `release` frees the cache such work made.
    /// Ids are never reused.
    private var closedSessions: Set<Int> = []

    /// Frees the cache of a session whose owner is gone; a generation running in it keeps the
    /// cache until it ends.
    func close(session id: Int) {
        closedSessions.insert(id)
        forget(id)
    }

    /// Drops session `id`'s cache. The transformer keeps the cache it evaluated last installed
    /// (each session installs its own before it evaluates): when that is the dropped one, the
    /// transformer's own goes back in, so the dropped cache is freed now.
    private func forget(_ id: Int) {
        guard let session = sessions.removeValue(forKey: id) else { return }
        if transformer.cache === session.cache { transformer.cache = transformer.defaultCache }
    }

    // MARK: - Batched decode steps

    /// Decode steps waiting for the next batched forward pass, and whether one is scheduled.
    private var pendingSteps: [(session: GenerationSession, token: TokenID, resume: CheckedContinuation<Void, Error>)] = []
    private var stepScheduled = false

    /// Appends `token` to `session` and returns its logits (in the session's own buffer, valid
    /// until its next step). Every generation that asks before the pass runs joins it: the pass
    /// is queued behind the work already waiting on the engine's thread (the other generations'
    /// sampling, a new request's prefill), so the decoding sessions advance together, one weight
    /// read for all of them, while a prefill still runs as soon as it arrives.
    func step(_ session: GenerationSession, token: TokenID) async throws -> UnsafeBufferPointer<Float> {
        try await withCheckedThrowingContinuation { (resume: CheckedContinuation<Void, Error>) in
            pendingSteps.append((session, token, resume))
            if !stepScheduled {
                stepScheduled = true
                Task { self.runPendingSteps() }
            }
        }
        return session.stepLogits!
    }

    private func runPendingSteps() {
        stepScheduled = false
        let batch = pendingSteps
        pendingSteps.removeAll(keepingCapacity: true)
        do {
            _ = try GenerationSession.step(batch.map(\.session), tokens: batch.map(\.token))
            for entry in batch { entry.resume.resume() }
        } catch {
            // Nothing was appended: let each sequence find its own error alone.
            for entry in batch {
                do {
                    _ = try GenerationSession.step([entry.session], tokens: [entry.token])
                    entry.resume.resume()
                } catch {
                    entry.resume.resume(throwing: error)
                }
            }
        }
    }

    func reset(session id: Int) { sessions[id]?.reset() }

    func savedState(session id: Int) async throws -> Data {
        await acquire(id)
        defer { release(id) }
        return try session(id).savedState()
    }

    func restore(session id: Int, state: Data) async throws {
        await acquire(id)
        defer { release(id) }
        try session(id).restore(state: state)
    }

    func perplexity(tokens: [TokenID], contextSize: Int, bos: TokenID?,
                    progress: (Perplexity.Estimate) -> Void) async throws -> Perplexity.Estimate {
        await acquire(0)
        defer { release(0) }
        let session = try session(0)
        session.reset()
        defer { session.reset() }
        transformer.cache = session.cache
        return try Perplexity.measure(transformer, tokens: tokens, contextSize: contextSize, bos: bos, progress: progress)
    }
}

/// Set when the consumer of a stream goes away or its task is cancelled.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// One generation: prefill, then sample / decode until a stop condition, streaming text.
struct GenerationJob: Sendable {
    let tokenizer: any Tokenizer
    let prompt: [TokenID]
    let parameters: GenerationParameters
    let toolCallFormat: ToolCallFormat?
    let cancelled: CancellationFlag
    let continuation: AsyncThrowingStream<GenerationChunk, Error>.Continuation
    let onFinish: (@Sendable (String, [TokenID]) -> Void)?

    /// Runs on `engine`'s thread; between decoded tokens it lets the engine's other queued work
    /// (other sessions' generations) run.
    func run(_ session: GenerationSession, grammarVocabulary: GrammarVocabulary? = nil, on engine: isolated InferenceEngine) async {
        do {
            try await generate(session, grammarVocabulary: grammarVocabulary, on: engine)
        } catch {
            continuation.finish(throwing: error)
        }
    }

    private func generate(_ session: GenerationSession, grammarVocabulary: GrammarVocabulary?, on engine: isolated InferenceEngine) async throws {
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
        if let k = p.logprobs, !(0 ... GenerationParameters.maxTopLogprobs).contains(k) {
            throw SwiftletError.invalidArgument("logprobs \(k) is outside 0...\(GenerationParameters.maxTopLogprobs)")
        }
        let matcher = try p.constraint.map { constraint -> GrammarMatcher in
            guard let grammarVocabulary else { throw SwiftletError.invalidArgument("no vocabulary prepared for the constraint") }
            return try GrammarMatcher(grammar: constraint.compiledGrammar(tokenizer: tokenizer), vocabulary: grammarVocabulary)
        }
        let prefill = try session.prefill(prompt, isCancelled: { cancelled.isCancelled })
        var logits = prefill.logits
        let promptSeconds = seconds(since: start)
        let sampler = Sampler(parameters: p.sampling, vocabSize: session.transformer.config.vocabSize)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        // Tool-call markup is often a control token (Qwen's <tool_call>): parse a rendering that keeps it.
        var markupDetokenizer = StreamingDetokenizer(tokenizer: tokenizer, renderSpecial: true)
        var markupReply = ""
        var text = StopStringFilter(stopStrings: p.stopStrings)
        var generated: [TokenID] = []
        generated.reserveCapacity(p.maxTokens)
        var firstTokenTime = 0.0
        var decodeStart = start
        var reason = StopReason.maxTokens
        var reply = ""

        while generated.count < p.maxTokens {
            if cancelled.isCancelled { reason = .cancelled; break }
            let token: TokenID
            if let matcher {
                guard let allowed = try session.tokens.withUnsafeBufferPointer({
                    try sampler.sample(logits, history: $0, constraint: matcher)
                }) else { reason = .constraintRejectedAllTokens; break }
                token = allowed
            } else {
                token = session.tokens.withUnsafeBufferPointer { sampler.sample(logits, history: $0) }
            }
            if generated.isEmpty { firstTokenTime = seconds(since: start); decodeStart = DispatchTime.now().uptimeNanoseconds }
            if p.stopAtEndOfGeneration && tokenizer.isEndOfGeneration(token) { reason = .endOfGeneration; break }
            try matcher?.accept(token)
            generated.append(token)
            let (newText, hitStop) = text.append(detokenizer.append(token))
            if toolCallFormat != nil { markupReply += markupDetokenizer.append(token) }
            reply += newText
            var chunk = GenerationChunk(text: newText, tokenIDs: [token], statistics: nil)
            if let k = p.logprobs { chunk.logprobs = [TokenLogprob.measure(logits, token: token, top: k)] }
            continuation.yield(chunk)
            if hitStop { reason = .stopString; break }
            if generated.count == p.maxTokens { break }
            if cancelled.isCancelled { reason = .cancelled; break }
            // Joins the other sessions' next tokens in one batched forward pass.
            logits = try await engine.step(session, token: token)
        }
        let stats = GenerationStatistics(
            promptTokens: prompt.count, promptTokensEvaluated: prefill.evaluated, generatedTokens: generated.count,
            promptSeconds: promptSeconds, generationSeconds: generated.isEmpty ? 0 : seconds(since: decodeStart),
            timeToFirstToken: firstTokenTime, stopReason: reason)
        let tail = reason == .stopString ? "" : text.append(detokenizer.finish()).0 + text.flush()
        if toolCallFormat != nil { markupReply += markupDetokenizer.finish() }
        // With tools, the session's history needs the markup to find the calls again.
        if reason != .cancelled { onFinish?(toolCallFormat == nil ? reply + tail : markupReply, generated) }
        var last = GenerationChunk(text: tail, tokenIDs: [], statistics: stats)
        if let toolCallFormat { last.toolCalls = ToolCallParser.parse(markupReply, format: toolCallFormat).calls }
        continuation.yield(last)
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
