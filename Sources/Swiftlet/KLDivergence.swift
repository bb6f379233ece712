import Foundation
import SwiftletTensor
import SwiftletModels

/// How far a model's next-token distributions are from a reference model's, measured as
/// llama-perplexity's `--kl-divergence` does, with its file format for the reference.
///
/// The reference ("base", usually the full-precision model) is run once with
/// ``writeBase(_:tokens:contextSize:bos:chunks:to:progress:)``: for the scored second half of
/// every chunk it stores the log-probabilities of the whole vocabulary, 16 bits each. Then
/// ``compare(_:base:bos:progress:)`` runs another model (a quantization of it) on the same tokens
/// and accumulates, per scored token, the KL divergence `Σ p_base·(log p_base − log p)`, the
/// change of the correct token's probability (Δp), whether both models rank the same token
/// first, and both perplexities.
///
/// File layout (little-endian, as llama-perplexity writes it): `"_logits_"`, u32 context size,
/// i32 vocabulary size, i32 chunk count, the i32 tokens of every chunk, then for each of the
/// `contextSize − 1 − contextSize/2` scored tokens of each chunk a row of
/// `2·⌈vocab/2⌉ + 4` u16: f32 scale, f32 minimum log-probability, then each token's
/// log-probability as `round((logit − min) / scale)` over at most 16 nats below the top logit.
public enum KLDivergence {
    /// The header of a base file.
    public struct BaseHeader: Sendable, Equatable {
        public var contextSize: Int
        public var vocabSize: Int
        public var chunkCount: Int
        /// Every token of the chunks, as in the text (not with the first replaced by BOS).
        public var tokens: [TokenID]

        /// u16 values per stored row.
        public var rowWidth: Int { 2 * ((vocabSize + 1) / 2) + 4 }
        /// Scored tokens per chunk.
        public var scoredPerChunk: Int { contextSize - 1 - contextSize / 2 }
        /// Bytes before the first row.
        public var headerBytes: Int { 8 + 4 * 3 + 4 * tokens.count }
    }

    static let magic = Array("_logits_".utf8)

    // MARK: - Row codec

    /// llama.cpp's `nearest_int`: round to nearest via the float mantissa trick (ties to even).
    @inline(__always)
    static func nearestInt(_ value: Float) -> Int32 {
        let v = value + 12_582_912
        return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) - 0x0040_0000
    }

    /// Encodes one row of logits as a base row (`row.count == rowWidth`) and returns the negative
    /// log-likelihood of `target`, both exactly as llama-perplexity computes them.
    public static func encode(_ logits: UnsafeBufferPointer<Float>, target: Int, into row: UnsafeMutableBufferPointer<UInt16>) -> Double {
        let n = logits.count
        var maxLogit = logits[0], minLogit = logits[0]
        for i in 1..<n { maxLogit = max(maxLogit, logits[i]); minLogit = min(minLogit, logits[i]) }
        minLogit = max(minLogit, maxLogit - 16)
        var sumExp = 0.0
        for i in 0..<n { sumExp += Double(expf(logits[i] - maxLogit)) }
        let logSumExp = Float(log(sumExp))
        let minLogProb = minLogit - maxLogit - logSumExp
        let scale = (maxLogit - minLogit) / 65535
        UnsafeMutableRawPointer(row.baseAddress!).storeBytes(of: scale, as: Float.self)
        UnsafeMutableRawPointer(row.baseAddress!).storeBytes(of: minLogProb, toByteOffset: 4, as: Float.self)
        let values = UnsafeMutableBufferPointer(rebasing: row[4...])
        if scale != 0 {
            let inverse = 1 / scale
            for i in 0..<n {
                values[i] = logits[i] > minLogit ? UInt16(truncatingIfNeeded: nearestInt(inverse * (logits[i] - minLogit))) : 0
            }
        } else {
            for i in 0..<n { values[i] = 0 }
        }
        for i in n..<values.count { values[i] = 0 }
        return Double(maxLogit + logSumExp - logits[target])
    }

    // MARK: - Accumulation

    /// Running sums over the scored tokens (llama-perplexity's `kl_divergence_result`).
    public struct Accumulator: Sendable {
        public var sumNLL = 0.0, sumNLL2 = 0.0
        public var sumNLLBase = 0.0, sumNLLBase2 = 0.0
        public var sumNLLTimesBase = 0.0
        public var sumKLD = 0.0, sumKLD2 = 0.0
        public var sumPDiff = 0.0, sumPDiff2 = 0.0, sumPDiff4 = 0.0
        public var maxPDiff: Float = 0
        public var sameTop = 0
        public var count = 0
        /// Each token's KL divergence and Δp, in order.
        public var kldValues: [Float] = []
        public var pDiffValues: [Float] = []

        public init() {}

        /// Adds one token: `logits` of the model under test, `base` the stored row, `target` the
        /// next token. Float/double steps as llama-perplexity's, so the figures agree.
        public mutating func add(_ logits: UnsafeBufferPointer<Float>, base: UnsafeBufferPointer<UInt16>, target: Int) {
            let n = logits.count
            var maxLogit = logits[0], top = 0
            for i in 1..<n where logits[i] > maxLogit { maxLogit = logits[i]; top = i }
            var sumExp = 0.0
            for i in 0..<n { sumExp += Double(expf(logits[i] - maxLogit)) }
            let logSumExp = Float(log(sumExp))
            let raw = UnsafeRawPointer(base.baseAddress!)
            let scale = raw.loadUnaligned(as: Float.self)
            let minLogProb = raw.loadUnaligned(fromByteOffset: 4, as: Float.self)
            let probs = UnsafeBufferPointer(rebasing: base[4...])

            let nll: Float = maxLogit + logSumExp - logits[target]
            sumNLL += Double(nll); sumNLL2 += Double(nll * nll)
            let nllBase: Float = -(scale * Float(probs[target]) + minLogProb)
            sumNLLBase += Double(nllBase); sumNLLBase2 += Double(nllBase * nllBase)
            sumNLLTimesBase += Double(nll * nllBase)

            let logNorm = maxLogit + logSumExp
            var kld = 0.0, topBase = -1
            var maxLogBase: Float = 0
            for i in 0..<n {
                let logBase = scale * Float(probs[i]) + minLogProb
                if i == 0 || logBase > maxLogBase { maxLogBase = logBase; topBase = i }
                if logBase > -16 {
                    let pBase = expf(logBase)
                    kld += Double(pBase * (logBase - logits[i] + logNorm))
                }
            }
            sumKLD += kld; sumKLD2 += kld * kld
            count += 1
            if top == topBase { sameTop += 1 }

            let pBase = expf(-nllBase), p = expf(-nll)
            let pDiff = p - pBase
            sumPDiff += Double(pDiff)
            let pDiff2 = Double(pDiff * pDiff)
            sumPDiff2 += pDiff2; sumPDiff4 += pDiff2 * pDiff2
            maxPDiff = max(maxPDiff, abs(pDiff))
            kldValues.append(Float(kld)); pDiffValues.append(pDiff)
        }
    }

    /// A mean and its standard error, as llama-perplexity computes them (0 error under 11 values).
    public struct Estimate: Sendable, Equatable, Codable {
        public var value: Double
        public var uncertainty: Double
    }

    static func meanAndUncertainty(_ sum: Double, _ sum2: Double, _ count: Int) -> Estimate {
        guard count >= 1 else { return Estimate(value: 0, uncertainty: 0) }
        let f = sum / Double(count)
        let df = sum2 / Double(count) - f * f
        return Estimate(value: f, uncertainty: df > 0 && count > 10 ? (df / Double(count - 1)).squareRoot() : 0)
    }

    static func covariance(_ a: Double, _ b: Double, _ ab: Double, _ count: Int) -> Double {
        guard count >= 10 else { return 0 }
        return (ab / Double(count) - (a / Double(count)) * (b / Double(count))) / Double(count - 1)
    }

    /// Every figure llama-perplexity prints after a KL-divergence run.
    public struct Statistics: Sendable, Codable, Equatable {
        public var tokenCount: Int
        public var perplexity: Estimate
        public var basePerplexity: Estimate
        /// Correlation of the two models' per-token log-likelihoods.
        public var logPerplexityCorrelation: Double
        public var logPerplexityRatio: Estimate
        public var perplexityRatio: Estimate
        public var perplexityDifference: Estimate
        public var meanKLD: Estimate
        public var maximumKLD: Double
        /// KLD at the 99.9, 99, 95, 90, 50 (median), 10, 5, 1 and 0.1 percentiles.
        public var kldPercentiles: [String: Double]
        public var minimumKLD: Double
        /// Mean Δp (probability of the correct token, model minus base).
        public var meanPDiff: Estimate
        public var maximumPDiff: Double
        /// Δp at the 99.9, 99, 95, 90, 75, 50, 25, 10, 5, 1 and 0.1 percentiles.
        public var pDiffPercentiles: [String: Double]
        public var minimumPDiff: Double
        public var rmsPDiff: Estimate
        /// Fraction of tokens where both models put the same token first.
        public var sameTop: Estimate

        /// The llama-perplexity percentile of sorted values (linear between neighbours).
        static func percentile(_ sorted: [Float], _ fraction: Float) -> Float {
            if fraction <= 0 { return sorted.first! }
            if fraction >= 1 { return sorted.last! }
            var p = fraction * Float(sorted.count - 1)
            let ip = Int(p); p -= Float(ip)
            return (1 - p) * sorted[ip] + p * sorted[min(ip + 1, sorted.count - 1)]
        }

        static func median(_ sorted: [Float]) -> Float {
            sorted.count % 2 == 0 ? 0.5 * (sorted[sorted.count / 2] + sorted[sorted.count / 2 - 1]) : sorted[sorted.count / 2]
        }

        /// The figures of an accumulation (at least one token).
        public init(_ a: Accumulator) {
            tokenCount = a.count
            let logPPL = meanAndUncertainty(a.sumNLL, a.sumNLL2, a.count)
            let ppl = exp(logPPL.value)
            perplexity = Estimate(value: ppl, uncertainty: ppl * logPPL.uncertainty)
            let logBase = meanAndUncertainty(a.sumNLLBase, a.sumNLLBase2, a.count)
            let basePPL = exp(logBase.value)
            basePerplexity = Estimate(value: basePPL, uncertainty: basePPL * logBase.uncertainty)
            let cov = covariance(a.sumNLL, a.sumNLLBase, a.sumNLLTimesBase, a.count)
            logPerplexityCorrelation = cov / (logPPL.uncertainty * logBase.uncertainty)
            let ratio = logPPL.value - logBase.value
            let ratioError = (logPPL.uncertainty * logPPL.uncertainty + logBase.uncertainty * logBase.uncertainty - 2 * cov).squareRoot()
            logPerplexityRatio = Estimate(value: ratio, uncertainty: ratioError)
            perplexityRatio = Estimate(value: exp(ratio), uncertainty: exp(ratio) * ratioError)
            let pplCov = ppl * basePPL * cov
            perplexityDifference = Estimate(value: ppl - basePPL, uncertainty: (perplexity.uncertainty * perplexity.uncertainty
                + basePerplexity.uncertainty * basePerplexity.uncertainty - 2 * pplCov).squareRoot())
            meanKLD = meanAndUncertainty(a.sumKLD, a.sumKLD2, a.count)
            let kld = a.kldValues.sorted(), dp = a.pDiffValues.sorted()
            maximumKLD = Double(kld.last ?? 0); minimumKLD = Double(kld.first ?? 0)
            var kp: [String: Double] = [:]
            if !kld.isEmpty {
                for (name, f) in [("99.9", Float(0.999)), ("99.0", 0.990), ("95.0", 0.950), ("90.0", 0.900), ("10.0", 0.100),
                                  ("5.0", 0.050), ("1.0", 0.010), ("0.1", 0.001)] {
                    kp[name] = Double(Self.percentile(kld, f))
                }
                kp["median"] = Double(Self.median(kld))
            }
            kldPercentiles = kp
            meanPDiff = meanAndUncertainty(a.sumPDiff, a.sumPDiff2, a.count)
            maximumPDiff = Double(dp.last ?? 0); minimumPDiff = Double(dp.first ?? 0)
            var pp: [String: Double] = [:]
            if !dp.isEmpty {
                for (name, f) in [("99.9", Float(0.999)), ("99.0", 0.990), ("95.0", 0.950), ("90.0", 0.900), ("75.0", 0.750),
                                  ("25.0", 0.250), ("10.0", 0.100), ("5.0", 0.050), ("1.0", 0.010), ("0.1", 0.001)] {
                    pp[name] = Double(Self.percentile(dp, f))
                }
                pp["median"] = Double(Self.median(dp))
            }
            pDiffPercentiles = pp
            let mse = meanAndUncertainty(a.sumPDiff2, a.sumPDiff4, a.count)
            let rms = mse.value.squareRoot()
            rmsPDiff = Estimate(value: rms, uncertainty: 0.5 / rms * mse.uncertainty)
            let top = Double(a.sameTop) / Double(a.count)
            sameTop = Estimate(value: top, uncertainty: (top * (1 - top) / Double(a.count - 1)).squareRoot())
        }

        /// The running line llama-perplexity prints after each chunk (chunk, PPL, ln ratio, KLD,
        /// Δp RMS, same top).
        public static func chunkLine(_ chunk: Int, _ a: Accumulator) -> String {
            let logPPL = meanAndUncertainty(a.sumNLL, a.sumNLL2, a.count)
            let ppl = exp(logPPL.value)
            let logBase = meanAndUncertainty(a.sumNLLBase, a.sumNLLBase2, a.count)
            let cov = covariance(a.sumNLL, a.sumNLLBase, a.sumNLLTimesBase, a.count)
            let ratioError = (logPPL.uncertainty * logPPL.uncertainty + logBase.uncertainty * logBase.uncertainty - 2 * cov).squareRoot()
            let kld = meanAndUncertainty(a.sumKLD, a.sumKLD2, a.count)
            let mse = meanAndUncertainty(a.sumPDiff2, a.sumPDiff4, a.count)
            let rms = mse.value.squareRoot()
            let top = Double(a.sameTop) / Double(a.count)
            return String(format: "%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%",
                          chunk, ppl, ppl * logPPL.uncertainty, logPPL.value - logBase.value, ratioError,
                          kld.value, kld.uncertainty, 100 * rms, 100 * 0.5 / rms * mse.uncertainty,
                          100 * top, 100 * (top * (1 - top) / Double(a.count - 1)).squareRoot())
        }

        /// The closing report, line for line as llama-perplexity prints it.
        public var report: String {
            var l: [String] = []
            func f(_ format: String, _ args: CVarArg...) { l.append(String(format: format, arguments: args)) }
            l.append("====== Perplexity statistics ======")
            f("Mean PPL(Q)                   : %10.6f ± %10.6f", perplexity.value, perplexity.uncertainty)
            f("Mean PPL(base)                : %10.6f ± %10.6f", basePerplexity.value, basePerplexity.uncertainty)
            f("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%", 100 * logPerplexityCorrelation)
            f("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f", logPerplexityRatio.value, logPerplexityRatio.uncertainty)
            f("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f", perplexityRatio.value, perplexityRatio.uncertainty)
            f("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f", perplexityDifference.value, perplexityDifference.uncertainty)
            l.append("")
            l.append("====== KL divergence statistics ======")
            f("Mean    KLD: %10.6f ± %10.6f", meanKLD.value, meanKLD.uncertainty)
            f("Maximum KLD: %10.6f", maximumKLD)
            for p in ["99.9", "99.0", "95.0", "90.0"] { f("%@%%   KLD: %10.6f", p, kldPercentiles[p] ?? 0) }
            f("Median  KLD: %10.6f", kldPercentiles["median"] ?? 0)
            for p in ["10.0", "5.0", "1.0", "0.1"] { f("%@%%   KLD: %10.6f", p.count < 4 ? " " + p : p, kldPercentiles[p] ?? 0) }
            f("Minimum KLD: %10.6f", minimumKLD)
            l.append("")
            l.append("====== Token probability statistics ======")
            f("Mean    Δp: %6.3f ± %5.3f %%", 100 * meanPDiff.value, 100 * meanPDiff.uncertainty)
            f("Maximum Δp: %6.3f%%", 100 * maximumPDiff)
            for p in ["99.9", "99.0", "95.0", "90.0", "75.0"] { f("%@%%   Δp: %6.3f%%", p, 100 * (pDiffPercentiles[p] ?? 0)) }
            f("Median  Δp: %6.3f%%", 100 * (pDiffPercentiles["median"] ?? 0))
            for p in ["25.0", "10.0", "5.0", "1.0", "0.1"] { f("%@%%   Δp: %6.3f%%", p.count < 4 ? " " + p : p, 100 * (pDiffPercentiles[p] ?? 0)) }
            f("Minimum Δp: %6.3f%%", 100 * minimumPDiff)
            f("RMS Δp    : %6.3f ± %5.3f %%", 100 * rmsPDiff.value, 100 * rmsPDiff.uncertainty)
            f("Same top p: %6.3f ± %5.3f %%", 100 * sameTop.value, 100 * sameTop.uncertainty)
            return l.joined(separator: "\n")
        }
    }

    // MARK: - Runs

    /// Runs the base model over `tokens` as llama-perplexity does (chunks of `contextSize`, BOS
    /// first, second half scored), writes the base file to `url` (through a temporary file) and
    /// returns the perplexity.
    ///
    /// - Throws: `invalidArgument` when the text has fewer than 2 × `contextSize` tokens;
    ///   `io` when the file cannot be written.
    @discardableResult
    public static func writeBase(_ transformer: Transformer, tokens: [TokenID], contextSize: Int, bos: TokenID?, chunks: Int? = nil,
                                 to url: URL, progress: (Perplexity.Estimate) -> Void = { _ in }) throws -> Perplexity.Estimate {
        guard contextSize >= 2, contextSize <= transformer.contextLength else {
            throw SwiftletError.invalidArgument("context \(contextSize) must be in 2...\(transformer.contextLength)")
        }
        guard tokens.count >= 2 * contextSize else {
            throw SwiftletError.invalidArgument("you need at least \(2 * contextSize) tokens to evaluate perplexity with a context of \(contextSize); the text tokenizes to only \(tokens.count) tokens")
        }
        let vocab = transformer.config.vocabSize
        let chunkCount = min(chunks ?? Int.max, tokens.count / contextSize)
        let header = BaseHeader(contextSize: contextSize, vocabSize: vocab, chunkCount: chunkCount,
                                tokens: Array(tokens.prefix(chunkCount * contextSize)))
        let width = header.rowWidth, first = contextSize / 2, scored = header.scoredPerChunk

        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: temporary) else {
            throw SwiftletError.io(path: url.path, reason: "cannot create a file beside it")
        }
        var finished = false
        defer {
            try? handle.close()
            if !finished { try? FileManager.default.removeItem(at: temporary) }
        }
        var head = Data(magic)
        func append<T>(_ v: T) { withUnsafeBytes(of: v) { head.append(contentsOf: $0) } }
        append(UInt32(contextSize)); append(Int32(vocab)); append(Int32(chunkCount))
        for t in header.tokens { append(t) }
        do { try handle.write(contentsOf: head) } catch {
            throw SwiftletError.io(path: url.path, reason: "write failed: \(error.localizedDescription)")
        }

        var rows = [UInt16](repeating: 0, count: scored * width)
        var nll = 0.0, nll2 = 0.0, count = 0
        var chunkTokens = [TokenID](repeating: 0, count: contextSize)
        var estimate = Perplexity.Estimate(chunk: 0, chunkCount: chunkCount, tokenCount: 0, perplexity: .nan, standardError: .nan)
        for chunk in 0..<chunkCount {
            let start = chunk * contextSize
            for i in 0..<contextSize { chunkTokens[i] = tokens[start + i] }
            if let bos { chunkTokens[0] = bos }
            try rows.withUnsafeMutableBufferPointer { out in
                try chunkTokens.withUnsafeBufferPointer { p in
                    try transformer.evaluate(p, at: 0, logits: .from(first)) { index, logits in
                        guard index < contextSize - 1 else { return }
                        let r = index - first
                        let v = encode(logits, target: Int(tokens[start + index + 1]),
                                       into: UnsafeMutableBufferPointer(rebasing: out[r * width ..< (r + 1) * width]))
                        nll += v; nll2 += v * v; count += 1
                    }
                }
            }
            do { try rows.withUnsafeBytes { try handle.write(contentsOf: Data($0)) } } catch {
                throw SwiftletError.io(path: url.path, reason: "write failed: \(error.localizedDescription)")
            }
            let mean = nll / Double(count), variance = nll2 / Double(count) - mean * mean
            estimate = Perplexity.Estimate(chunk: chunk + 1, chunkCount: chunkCount, tokenCount: count, perplexity: exp(mean),
                                           standardError: count > 1 && variance > 0 ? exp(mean) * (variance / Double(count - 1)).squareRoot() : 0)
            progress(estimate)
        }
        try? handle.close()
        do {
            if FileManager.default.fileExists(atPath: url.path) {
                _ = try FileManager.default.replaceItemAt(url, withItemAt: temporary)
            } else {
                try FileManager.default.moveItem(at: temporary, to: url)
            }
        } catch {
            throw SwiftletError.io(path: url.path, reason: "cannot move the finished file into place: \(error.localizedDescription)")
        }
        finished = true
        return estimate
    }

    /// Reads and checks a base file's header.
    public static func readHeader(_ data: Data, path: String) throws -> BaseHeader {
        guard data.count >= 20, Array(data.prefix(8)) == magic else {
            throw SwiftletError.malformedFile(path: path, reason: "does not look like a file containing log-probabilities (no \"_logits_\" magic)")
        }
        func int32(_ offset: Int) -> Int32 { data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int32.self) } }
        let context = Int(UInt32(bitPattern: int32(8))), vocab = Int(int32(12)), chunks = Int(int32(16))
        guard context >= 2, context <= 1 << 24, vocab > 0, vocab <= 1 << 24, chunks > 0, chunks <= 1 << 24 else {
            throw SwiftletError.malformedFile(path: path, reason: "implausible header: context \(context), vocabulary \(vocab), chunks \(chunks)")
        }
        let tokenCount = context * chunks
        var header = BaseHeader(contextSize: context, vocabSize: vocab, chunkCount: chunks, tokens: [])
        let rowsBytes = chunks.multipliedReportingOverflow(by: header.scoredPerChunk * header.rowWidth * 2)
        let total = rowsBytes.partialValue.addingReportingOverflow(20 + 4 * tokenCount)
        guard !rowsBytes.overflow, !total.overflow, data.count == total.partialValue else {
            throw SwiftletError.truncatedFile(path: path, what: "\(chunks) chunks of \(context) tokens and their log-probabilities (file has \(data.count) bytes)")
        }
        header.tokens = data.withUnsafeBytes { raw in
            (0..<tokenCount).map { raw.loadUnaligned(fromByteOffset: 20 + 4 * $0, as: TokenID.self) }
        }
        guard header.tokens.allSatisfy({ $0 >= 0 && Int($0) < vocab }) else {
            throw SwiftletError.malformedFile(path: path, reason: "a token id lies outside the vocabulary of \(vocab)")
        }
        return header
    }

    /// Runs `transformer` on the tokens stored in the base file at `url` and compares its
    /// distributions with the stored ones. `progress` gets the running accumulation after each chunk.
    ///
    /// - Throws: `malformedFile` / `truncatedFile` for a file that is not a complete base file;
    ///   `invalidArgument` when its vocabulary differs from the model's or its context does not fit.
    public static func compare(_ transformer: Transformer, base url: URL, bos: TokenID?,
                               progress: (_ chunk: Int, _ chunkCount: Int, Accumulator) -> Void = { _, _, _ in }) throws -> Accumulator {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw SwiftletError.io(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let header = try readHeader(data, path: url.path)
        guard header.vocabSize == transformer.config.vocabSize else {
            throw SwiftletError.invalidArgument("inconsistent vocabulary (\(header.vocabSize) in \(url.lastPathComponent) vs \(transformer.config.vocabSize) in the model)")
        }
        guard header.contextSize <= transformer.contextLength else {
            throw SwiftletError.invalidArgument("\(url.lastPathComponent) has been computed with \(header.contextSize), while the current context is \(transformer.contextLength)")
        }
        let n = header.contextSize, first = n / 2, width = header.rowWidth, scored = header.scoredPerChunk
        var acc = Accumulator()
        acc.kldValues.reserveCapacity(scored * header.chunkCount); acc.pDiffValues.reserveCapacity(scored * header.chunkCount)
        var chunkTokens = [TokenID](repeating: 0, count: n)
        try data.withUnsafeBytes { raw in
            let rows = UnsafeBufferPointer(start: (raw.baseAddress! + header.headerBytes).assumingMemoryBound(to: UInt16.self),
                                           count: header.chunkCount * scored * width)
            for chunk in 0..<header.chunkCount {
                let start = chunk * n
                for i in 0..<n { chunkTokens[i] = header.tokens[start + i] }
                if let bos { chunkTokens[0] = bos }
                try chunkTokens.withUnsafeBufferPointer { p in
                    try transformer.evaluate(p, at: 0, logits: .from(first)) { index, logits in
                        guard index < n - 1 else { return }
                        let r = chunk * scored + index - first
                        acc.add(logits, base: UnsafeBufferPointer(rebasing: rows[r * width ..< (r + 1) * width]),
                                target: Int(header.tokens[start + index + 1]))
                    }
                }
                progress(chunk + 1, header.chunkCount, acc)
            }
        }
        return acc
    }
}
