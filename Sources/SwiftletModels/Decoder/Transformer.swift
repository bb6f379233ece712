import SwiftletTensor
import SwiftletQuant
import CSwiftletKernels
import Foundation

/// Which positions of an evaluated batch produce logits.
public enum LogitSelection: Sendable {
    /// Only the last token (generation).
    case last
    /// Every token (reference comparisons).
    case all
    /// Tokens from this index of the evaluated sequence on (perplexity scores the second half).
    case from(Int)
}

/// Every activation buffer of the forward pass, allocated once for `maxBatch` tokens (llama2.c's
/// run state): evaluating tokens never allocates.
final class RunState {
    let maxBatch: Int
    /// Residual stream `[maxBatch, dim]`.
    let x: UnsafeMutablePointer<Float>
    /// Normed input of a sub-block `[maxBatch, dim]`.
    let xb: UnsafeMutablePointer<Float>
    /// Output of a sub-block before the residual add `[maxBatch, dim]`.
    let xb2: UnsafeMutablePointer<Float>
    /// Moved to one row at a time while a batched decode step attends per sequence.
    var q: UnsafeMutablePointer<Float>       // [maxBatch, qDim]
    let k: UnsafeMutablePointer<Float>       // [maxBatch, kvDim]
    let v: UnsafeMutablePointer<Float>       // [maxBatch, kvDim]
    var attention: UnsafeMutablePointer<Float> // [maxBatch, qDim]
    let gate: UnsafeMutablePointer<Float>    // [maxBatch, ffnDim]
    let up: UnsafeMutablePointer<Float>      // [maxBatch, ffnDim]
    /// Attention scores, one row of `contextLength` per query head.
    let scores: UnsafeMutablePointer<Float>
    /// Per-thread score blocks of attention, `attentionScratchStride` floats apart: a block of
    /// queries × every position it may see (plus a chunk of padding for the f16 kernels).
    let attentionScratch: UnsafeMutablePointer<Float>
    let attentionScratchStride: Int
    /// Per-thread scratch of flash attention, `flashScratchStride` floats apart.
    let flashScratch: UnsafeMutablePointer<Float>
    let flashScratchStride: Int
    /// Split-KV partials of one decode step: `[queryHead][chunk][M, S, VKQ]`, up to one chunk
    /// per thread.
    let flashPartials: UnsafeMutablePointer<Float>
    /// Logits of up to `logitRows` tokens `[logitRows, vocab]`.
    let logits: UnsafeMutablePointer<Float>
    let logitRows: Int
    /// Activation scratch for the quantized matmuls.
    let scratch: UnsafeMutableRawBufferPointer
    private var all: [UnsafeMutablePointer<Float>] = []

    init(config c: TransformerConfig, weights: TransformerWeights, maxBatch: Int, contextLength: Int, logitRows: Int,
         threads: Int, flashAttention: Bool) {
        self.maxBatch = maxBatch
        self.logitRows = logitRows
        var all: [UnsafeMutablePointer<Float>] = []
        func make(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            all.append(p)
            return p
        }
        x = make(maxBatch * c.dim); xb = make(maxBatch * c.dim); xb2 = make(maxBatch * c.dim)
        q = make(maxBatch * c.qDim); k = make(maxBatch * c.kvDim); v = make(maxBatch * c.kvDim)
        attention = make(maxBatch * c.qDim)
        gate = make(maxBatch * c.ffnDim); up = make(maxBatch * c.ffnDim)
        scores = make(c.headCount * contextLength)
        attentionScratchStride = min(Transformer.attentionBlockRows, maxBatch) * (contextLength + 128)
        attentionScratch = make(max(threads, 1) * attentionScratchStride)
        let groupRows = min(Transformer.attentionBlockRows, maxBatch) * (c.headCount / max(c.kvHeadCount, 1))
        flashScratchStride = flashAttention
            ? max(swiftlet_fa_tiled_scratch(Int32(groupRows), Int32(c.headDim)),
                  swiftlet_fa_attend_scratch(Int32(groupRows), Int32(c.headDim)))
            : 1
        flashScratch = make(max(threads, 1) * flashScratchStride)
        flashPartials = make(flashAttention ? c.headCount * max(threads, 1) * (c.headDim + 2) : 1)
        logits = make(logitRows * c.vocabSize)
        self.all = all

        var bytes = QuantizedMatrix.activationScratchBytes(type: weights.output.type, cols: c.dim, tokens: logitRows)
        for l in weights.layers {
            for m in [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown] {
                bytes = max(bytes, QuantizedMatrix.activationScratchBytes(type: m.type, cols: m.cols, tokens: maxBatch))
            }
        }
        scratch = .allocate(byteCount: bytes, alignment: 64)
        scratch.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        for p in all { p.deallocate() }
        scratch.deallocate()
    }
}

/// A decoder-only transformer over quantized weights: the forward pass shared by the
/// architectures, whose blocks (`DecoderBlock.swift`) differ as each architecture's file declares.
///
/// Not thread-safe: one evaluation at a time (the `Swiftlet.LanguageModel` serializes access).
public final class Transformer: @unchecked Sendable {  // one evaluation at a time; `LanguageModel`'s inference thread serializes access
    public let config: TransformerConfig
    public let weights: TransformerWeights
    /// Positions the KV cache holds (prompt plus generated tokens).
    public let contextLength: Int
    /// Tokens evaluated per batched step in prefill.
    public let maxBatch: Int
    /// The KV cache evaluations read and write. Several conversations can share one transformer
    /// by each owning a cache (``makeCache()``) and installing it before they evaluate.
    public var cache: KVCache {
        didSet { precondition(cache.fits(self), "a KV cache made for another model or context length") }
    }
    let state: RunState
    let pool: ComputePool
    /// How the architecture's blocks depart from Llama's.
    let block: BlockVariant
    /// Precomputed RoPE angles for `ropeBase` and `ropeBaseLocal` (Gemma 3's sliding layers).
    let ropeTable: RoPE.Table
    let ropeTableLocal: RoPE.Table
    /// Positions with precomputed RoPE angles; later ones are computed per call (same values).
    static let ropeTablePositions = 8192
    /// One-thread pool for products run inside a `pool` dispatch.
    let serialPool = ComputePool(threadCount: 1)
    /// Debugging: when set, receives the named intermediate activations of the forward pass
    /// (`attn_norm-3`, `Qcur-3`, `kqv_out-3`, …, named as in llama.cpp's graph; rows of all
    /// tokens of the step) to compare with a reference implementation tensor by tensor
    /// (`swiftlet dump-activations`). Costs one branch per op when unset.
    public var activationTap: ((String, UnsafeBufferPointer<Float>) -> Void)?
    /// When set, sees the input of every weight matrix product of the blocks (an importance
    /// matrix collector). One branch per product when unset.
    public var matmulInputObserver: (any MatmulInputObserver)?
    /// Asked before every layer of a batched evaluation; when it returns true the evaluation stops
    /// and throws ``SwiftletError/cancelled``, so a long prompt can be abandoned within one layer.
    public var interruption: (() -> Bool)?
    /// The applied LoRA adapters (``setAdapters(_:)``).
    var lora: LoRABinding?
    /// Set during a batched decode step (`decode(_:at:caches:)`): the sequence of each row.
    var sequenceRows: SequenceRows?

    @inline(__always)
    func tap(_ name: @autoclosure () -> String, _ p: UnsafePointer<Float>, _ count: Int) {
        if let activationTap { activationTap(name(), UnsafeBufferPointer(start: p, count: count)) }
    }

    /// - Parameters:
    ///   - cacheType: element type of the cached keys (and of the values unless `valueCacheType`
    ///     is given), as llama.cpp's `--cache-type-k`.
    ///   - valueCacheType: element type of the cached values (`--cache-type-v`); quantized types
    ///     need flash attention.
    ///   - flashAttention: attend with the online-softmax kernels in the order of llama.cpp's
    ///     `-fa on` (bit for bit), instead of its `-fa off` graph.
    ///   - attentionRotation: rotate queries, keys and values for a quantized cache as llama.cpp
    ///     does (see ``KVCache/init(layers:kvHeads:headDim:capacity:keyType:valueType:flashAttention:rotation:budget:for:)``).
    ///   - cacheBudget: the memory limit this transformer's KV caches count against, its own
    ///     included (``KVCacheBudget``); its weights lower the budget's default limit.
    public init(config: TransformerConfig, weights: TransformerWeights, contextLength: Int,
                maxBatch: Int = 512, cacheType: KVCacheType = .f16, valueCacheType: KVCacheType? = nil,
                flashAttention: Bool = false, attentionRotation: Bool = KVCache.rotationDefault,
                cacheBudget: KVCacheBudget = .shared, pool: ComputePool = .shared) throws {
        try config.validate()
        guard contextLength > 0, maxBatch > 0 else {
            throw SwiftletError.invalidArgument("context length \(contextLength) and batch \(maxBatch) must be positive")
        }
        let valueType = valueCacheType ?? cacheType
        try KVCache.check(keyType: cacheType, valueType: valueType, headDim: config.headDim, flashAttention: flashAttention)
        weightsHeld = cacheBudget.holdWeights(weights, bytes: weights.matrixBytes)
        // The own cache's reservation also holds the score buffers, which grow with the context.
        let reservation = try cacheBudget.reserve(
            Self.contextBytes(config: config, contextLength: contextLength, maxBatch: min(maxBatch, contextLength),
                              threads: pool.threadCount, keyType: cacheType, valueType: valueType),
            for: "context length \(contextLength) (its KV cache and attention buffers)")
        self.config = config
        self.block = config.architecture.block
        self.weights = weights
        self.contextLength = contextLength
        self.maxBatch = min(maxBatch, contextLength)
        self.pool = pool
        self.flashAttention = flashAttention
        self.cacheBudget = cacheBudget
        cache = try KVCache(layers: config.layerCount, kvHeads: config.kvHeadCount, headDim: config.headDim, capacity: contextLength,
                            keyType: cacheType, valueType: valueType, flashAttention: flashAttention,
                            rotation: attentionRotation, reservation: reservation)
        defaultCache = cache
        let tablePositions = min(contextLength, Self.ropeTablePositions)
        var scaling = config.ropeScaling
        if let factors = weights.ropeFrequencyFactors { scaling.frequencyFactors = factors }
        ropeTable = try RoPE.Table(ropeDim: config.ropeDim, base: config.ropeBase, maxPositions: tablePositions,
                                   scaling: scaling)
        ropeTableLocal = config.ropeBaseLocal == config.ropeBase && scaling == RoPE.Scaling() ? ropeTable
            : try RoPE.Table(ropeDim: config.ropeDim, base: config.ropeBaseLocal, maxPositions: tablePositions)
        state = RunState(config: config, weights: weights, maxBatch: self.maxBatch, contextLength: contextLength,
                         logitRows: min(8, self.maxBatch), threads: pool.threadCount, flashAttention: flashAttention)
    }

    /// Bytes of a context's KV cache and the attention buffers that grow with it (score rows,
    /// per-thread attention blocks), or nil when the size overflows.
    static func contextBytes(config c: TransformerConfig, contextLength: Int, maxBatch: Int, threads: Int,
                             keyType: KVCacheType, valueType: KVCacheType) -> Int? {
        guard let cache = KVCache.byteCount(layers: c.layerCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                            capacity: contextLength, keyType: keyType, valueType: valueType),
              contextLength <= (Int.max - 512) / 4 else { return nil }
        let scoreRows = c.headCount.addingReportingOverflow(max(threads, 1) * min(attentionBlockRows, maxBatch))
        guard !scoreRows.overflow else { return nil }
        let scores = scoreRows.partialValue.multipliedReportingOverflow(by: 4 * (contextLength + 128))
        guard !scores.overflow else { return nil }
        let total = cache.addingReportingOverflow(scores.partialValue)
        return total.overflow ? nil : total.partialValue
    }

    /// The cache made with the transformer.
    public let defaultCache: KVCache

    /// The limit the transformer's KV caches count against.
    public let cacheBudget: KVCacheBudget
    /// Keeps the weights counted in ``cacheBudget`` while the transformer lives.
    private let weightsHeld: KVCacheBudget.Reservation

    /// Whether attention runs as llama.cpp's flash attention (`-fa on`).
    public let flashAttention: Bool

    /// A new, empty KV cache of this transformer's shape, context length and element types, its
    /// bytes reserved in ``cacheBudget`` (`what` names it in the error when they do not fit).
    public func makeCache(for what: String = "another KV cache") throws -> KVCache {
        try KVCache(layers: config.layerCount, kvHeads: config.kvHeadCount, headDim: config.headDim, capacity: contextLength,
                    keyType: defaultCache.keyType, valueType: defaultCache.valueType, flashAttention: flashAttention,
                    rotation: defaultCache.rotation, budget: cacheBudget, for: what)
    }

    /// Logits of the last evaluated token, valid until the next evaluation.
    public var lastLogits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: state.logits, count: config.vocabSize)
    }

    /// Runs `tokens` at positions `start ..< start + tokens.count` (the cache must hold the
    /// positions before `start`) and hands the logits of the selected positions to `body`
    /// as `(index in tokens, logits)`. With `.last`, `lastLogits` holds the final row afterwards.
    public func evaluate(_ tokens: UnsafeBufferPointer<TokenID>, at start: Int, logits selection: LogitSelection = .last,
                         _ body: (Int, UnsafeBufferPointer<Float>) -> Void = { _, _ in }) throws {
        guard start >= 0, start + tokens.count <= contextLength else {
            throw SwiftletError.contextOverflow(requested: start + tokens.count, limit: contextLength)
        }
        for t in tokens where t < 0 || t >= config.vocabSize {
            throw SwiftletError.invalidArgument("token id \(t) outside the vocabulary (\(config.vocabSize))")
        }
        var done = 0
        while done < tokens.count {
            let n = min(maxBatch, tokens.count - done)
            guard forward(UnsafeBufferPointer(rebasing: tokens[done ..< done + n]), at: start + done) else {
                throw SwiftletError.cancelled
            }
            let wanted: Range<Int>
            switch selection {
            case .all: wanted = 0 ..< tokens.count
            case .last: wanted = tokens.count - 1 ..< tokens.count
            case .from(let first): wanted = max(0, min(first, tokens.count)) ..< tokens.count
            }
            let rows = wanted.clamped(to: done ..< done + n)
            if !rows.isEmpty {
                computeLogits(rows: rows.lowerBound - done ..< rows.upperBound - done) { i, row in body(done + i, row) }
            }
            done += n
        }
    }

    /// One decode step: runs `token` at `position` and returns its logits (valid until the next
    /// call). Allocation-free.
    public func decode(_ token: TokenID, at position: Int) throws -> UnsafeBufferPointer<Float> {
        guard position >= 0, position < contextLength else {
            throw SwiftletError.contextOverflow(requested: position + 1, limit: contextLength)
        }
        guard token >= 0, token < config.vocabSize else {
            throw SwiftletError.invalidArgument("token id \(token) outside the vocabulary (\(config.vocabSize))")
        }
        var t = token
        _ = withUnsafePointer(to: &t) { forward(UnsafeBufferPointer(start: $0, count: 1), at: position, interruptible: false) }
        computeLogits(rows: 0 ..< 1) { _, _ in }
        return lastLogits
    }

    // MARK: - Forward pass

    /// Embeds `tokens` and runs every block; the residual stream ends in `state.x`. Returns false
    /// when ``interruption`` stopped it (the cache then holds partial rows past `start`).
    func forward(_ tokens: UnsafeBufferPointer<TokenID>, at start: Int, interruptible: Bool = true) -> Bool {
        let dim = config.dim, s = state
        for (t, token) in tokens.enumerated() {
            let row = s.x + t * dim
            weights.tokenEmbedding.dequantizeRow(Int(token), into: row)
            if config.embeddingScale != 1 { VectorOps.scale(row, by: config.embeddingScale, count: dim) }
        }
        for layer in 0..<config.layerCount {
            if interruptible, let interruption, interruption() { return false }
            attentionBlock(layer, tokens: tokens.count, start: start)
            feedForwardBlock(layer, tokens: tokens.count)
        }
        return true
    }

    /// Final norm and unembedding of rows `rows` of the residual stream, `logitRows` at a time.
    func computeLogits(rows: Range<Int>, _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        let s = state, dim = config.dim, vocab = config.vocabSize
        var r = rows.lowerBound
        while r < rows.upperBound {
            let n = min(s.logitRows, rows.upperBound - r)
            rmsNorm(s.x + r * dim, weight: weights.outputNorm, rows: n, width: dim, into: s.xb)
            linear(weights.output, s.xb, tokens: n, into: s.logits)
            addOutputAdapters(input: s.xb, tokens: n, into: s.logits)
            if let cap = config.finalLogitSoftcap {
                for i in 0..<(n * vocab) { s.logits[i] = cap * tanhf(s.logits[i] / cap) }
            }
            for i in 0..<n { body(r + i, UnsafeBufferPointer(start: s.logits + i * vocab, count: vocab)) }
            // Leave the last computed row at the start of the buffer for `lastLogits`.
            if n > 1 { s.logits.update(from: s.logits + (n - 1) * vocab, count: vocab) }
            r += n
        }
    }

    // MARK: - Building blocks shared by the architectures

    /// `out = W · input` for `tokens` rows: a matrix-vector product when decoding, a batched
    /// matmul (one weight read for all tokens) in prefill.
    @inline(__always)
    func linear(_ w: QuantizedMatrix, _ input: UnsafePointer<Float>, tokens: Int, into out: UnsafeMutablePointer<Float>) {
        if tokens == 1 {
            w.matvec(input, into: out, scratch: state.scratch, pool: pool)
        } else if sequenceRows != nil {
            w.matmulPerToken(input, tokens: tokens, into: out, scratch: state.scratch, pool: pool)
        } else {
            w.matmul(input, tokens: tokens, into: out, scratch: state.scratch, pool: pool)
        }
    }

    /// Runs `body` over ranges covering `0..<rows`: in parallel on the pool for a prefill batch,
    /// serially for a few rows (decode), where a dispatch costs more than it saves. For per-row
    /// and elementwise ops, whose results do not depend on the split (ggml's threads split
    /// rows the same way).
    @inline(__always)
    func forRows(_ rows: Int, _ body: (Range<Int>) -> Void) {
        let threads = pool.threadCount
        guard rows >= Self.parallelRowsMinimum, threads > 1 else { body(0..<rows); return }
        pool.parallelChunks(rows, chunk: (rows + 2 * threads - 1) / (2 * threads)) { range, _ in body(range) }
    }

    /// Rows from which `forRows` spreads a per-row op over the pool.
    static let parallelRowsMinimum = 16

    /// RMSNorm of each of `rows` rows of `width` (in place allowed).
    @inline(__always)
    func rmsNorm(_ input: UnsafePointer<Float>, weight: UnsafeMutableBufferPointer<Float>, rows: Int, width: Int,
                 into out: UnsafeMutablePointer<Float>) {
        // ggml's summation order (in double), so results match llama.cpp bit for bit.
        let w = weight.baseAddress!, eps = config.normEpsilon
        forRows(rows) { r in
            swiftlet_gc_rms_norm(input + r.lowerBound * width, w, width, r.count, eps, out + r.lowerBound * width)
        }
    }

    /// `rows[t] += bias` for each of `tokens` rows of `bias.count` floats (ggml_add's broadcast).
    @inline(__always)
    func addBias(_ bias: UnsafeMutableBufferPointer<Float>, to rows: UnsafeMutablePointer<Float>, tokens: Int) {
        for t in 0..<tokens {
            let row = rows + t * bias.count
            VectorOps.add(row, bias.baseAddress!, out: row, count: bias.count)
        }
    }

    /// `x += delta` over `tokens` residual rows.
    @inline(__always)
    func addResidual(_ delta: UnsafePointer<Float>, tokens: Int) {
        let x = state.x, dim = config.dim
        forRows(tokens) { r in
            let offset = r.lowerBound * dim
            VectorOps.add(x + offset, delta + offset, out: x + offset, count: r.count * dim)
        }
    }

    /// Rotates the first `ropeDim` dimensions of every head of q and k by their positions.
    /// `local` selects the angles of `ropeBaseLocal`.
    func applyRoPE(tokens: Int, start: Int, local: Bool) {
        let c = config, s = state, table = local ? ropeTableLocal : ropeTable
        forRows(tokens) { range in for t in range {
            let position = sequenceRows?.positions[t] ?? start + t
            table.apply(s.q + t * c.qDim, heads: c.headCount, headDim: c.headDim, position: position,
                        convention: c.ropeConvention)
            table.apply(s.k + t * c.kvDim, heads: c.kvHeadCount, headDim: c.headDim, position: position,
                        convention: c.ropeConvention)
        } }
    }

    /// Causal multi-head attention of the `tokens` queries in `state.q` over the cached keys and
    /// values of layer `layer` (which already hold this batch), into `state.attention`.
    /// `window` > 0 limits each query to the `window` most recent positions, itself included.
    /// `scale` multiplies the scores (1 when the architecture scales the queries itself).
    func attention(layer: Int, tokens: Int, start: Int, window: Int, scale: Float) {
        let c = config, s = state, cache = self.cache
        let headDim = c.headDim, groupSize = c.headCount / c.kvHeadCount
        let ctx = contextLength
        if cache.flashAttention {
            flashAttention(layer: layer, tokens: tokens, start: start, window: window, scale: scale)
            return
        }
        if cache.valueType == .f16 {
            attentionF16(layer: layer, tokens: tokens, start: start, window: window, scale: scale)
            return
        }
        if tokens > 1 {
            batchedAttention(layer: layer, tokens: tokens, start: start, window: window, scale: scale)
            return
        }
        pool.parallelFor(c.headCount) { h in
            let kvHead = h / groupSize
            let keys = cache.keys + cache.headOffset(layer: layer, head: kvHead)
            let values = cache.values + cache.headOffset(layer: layer, head: kvHead)
            let scores = s.scores + h * ctx
            for t in 0..<tokens {
                let position = start + t
                let first = window > 0 ? max(0, position - window + 1) : 0
                let count = position - first + 1
                let query = s.q + t * c.qDim + h * headDim
                let out = s.attention + t * c.qDim + h * headDim
                out.update(repeating: 0, count: headDim)
                for j in 0..<count {
                    scores[j] = VectorOps.dot(query, keys + (first + j) * headDim, count: headDim) * scale
                }
                VectorOps.softmax(scores, count: count)
                for j in 0..<count {
                    VectorOps.axpy(scores[j], values + (first + j) * headDim, out, count: headDim)
                }
            }
        }
    }
}
