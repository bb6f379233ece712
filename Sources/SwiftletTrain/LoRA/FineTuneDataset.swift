import Foundation
import SwiftletTensor
import SwiftletTokenizers

/// One training example: token ids and, per token, whether predicting it is scored (a chat's
/// assistant turns; every token of plain text).
public struct FineTuneExample: Sendable, Equatable {
    public var tokens: [Int32]
    public var scored: [Bool]

    /// Tokens whose prediction is scored (the first token is never predicted).
    public var scoredCount: Int { scored.dropFirst().filter { $0 }.count }
}

/// The examples of a fine-tune, split into training and held-out sets.
public struct FineTuneDataset: Sendable {
    public var training: [FineTuneExample]
    public var heldOut: [FineTuneExample]
    /// Examples left out because truncation removed every scored token.
    public var dropped = 0

    /// Plain text: the tokenized text cut into windows of `sequenceLength` tokens, each predicted
    /// once, the last `heldOutFraction` of the windows held out. When the tokenizer adds a BOS
    /// token, every window starts with it (as llama-perplexity's chunks do: a model such as
    /// Gemma is far off without it) and predicts its first text token from it.
    public static func text(_ text: String, path: String, tokenizer: any Tokenizer, sequenceLength: Int,
                            heldOutFraction: Double) throws -> FineTuneDataset {
        try checkSequenceLength(sequenceLength)
        let bos = tokenizer.addsBOS ? tokenizer.bosID : nil
        let tokens = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let span = bos == nil ? sequenceLength + 1 : sequenceLength
        guard tokens.count >= span else {
            throw SwiftletError.invalidArgument("\(path) has \(tokens.count) tokens, fewer than one sequence of \(span)")
        }
        var examples: [FineTuneExample] = []
        var start = 0
        while start + (bos == nil ? 1 : 0) < tokens.count {
            var window = Array(tokens[start ..< min(tokens.count, start + span)])
            var scored = [Bool](repeating: true, count: window.count)
            if let bos { window.insert(bos, at: 0); scored.insert(false, at: 0) }
            examples.append(FineTuneExample(tokens: window, scored: scored))
            start += sequenceLength
        }
        return try split(examples, heldOutFraction: heldOutFraction, path: path)
    }

    /// JSONL conversations, one per line: `{"messages": [{"role": "user", "content": "…"},
    /// {"role": "assistant", "content": "…"}, …]}`, rendered with the model's chat template; only
    /// the assistant turns (their text and end-of-turn markup) are scored. Blank lines are skipped.
    ///
    /// - Throws: ``SwiftletError/malformedFile(path:reason:)`` naming the line for a line that is
    ///   not such an object, has no assistant turn, or that the template cannot render.
    public static func chat(jsonl: String, path: String, tokenizer: any Tokenizer, template: ChatTemplate,
                            sequenceLength: Int, heldOutFraction: Double) throws -> FineTuneDataset {
        try checkSequenceLength(sequenceLength)
        var examples: [FineTuneExample] = []
        var dropped = 0
        for (index, line) in jsonl.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { continue }
            func fail(_ reason: String) -> SwiftletError { .malformedFile(path: path, reason: "line \(index + 1): \(reason)") }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
                throw fail("not valid JSON")
            }
            guard let messages = (object as? [String: Any])?["messages"] as? [Any], !messages.isEmpty else {
                throw fail("expected an object with a non-empty \"messages\" array")
            }
            var chat: [ChatMessage] = []
            for (i, m) in messages.enumerated() {
                guard let m = m as? [String: Any], let role = m["role"] as? String, let content = m["content"] as? String else {
                    throw fail("message \(i + 1) needs string \"role\" and \"content\"")
                }
                chat.append(ChatMessage(role: role, content: content))
            }
            guard chat.contains(where: { $0.role == "assistant" }) else { throw fail("the conversation has no assistant turn") }
            var example = try render(chat, tokenizer: tokenizer, template: template, fail: fail)
            if example.tokens.count > sequenceLength + 1 {
                example.tokens.removeLast(example.tokens.count - sequenceLength - 1)
                example.scored.removeLast(example.scored.count - sequenceLength - 1)
            }
            if example.scoredCount == 0 { dropped += 1; continue }
            examples.append(example)
        }
        var dataset = try split(examples, heldOutFraction: heldOutFraction, path: path)
        dataset.dropped = dropped
        return dataset
    }

    /// Tokens of a conversation as inference formats it (``ChatTemplate`` text, BOS handled as
    /// llama.cpp does), with the assistant turns marked scored. The template is rendered for each
    /// prefix of the conversation so that the turn boundaries are exact.
    /// The longest sequence a fine-tune takes: the training graph holds at most 65,536 tokens
    /// per batch (``LoRATrainingModel``), and `sequenceLength + 1` must not overflow.
    public static let maxSequenceLength = 1 << 16

    static func checkSequenceLength(_ sequenceLength: Int) throws {
        guard (2...maxSequenceLength).contains(sequenceLength) else {
            throw SwiftletError.invalidArgument("sequence length \(sequenceLength) must be in 2...\(maxSequenceLength)")
        }
    }

    static func render(_ chat: [ChatMessage], tokenizer: any Tokenizer, template: ChatTemplate,
                       fail: (String) -> SwiftletError) throws -> FineTuneExample {
        let bos = tokenizer.bosID.map { tokenizer.piece($0) } ?? ""
        let eos = tokenizer.eosID.map { tokenizer.piece($0) } ?? ""
        func text(_ messages: ArraySlice<ChatMessage>, prompt: Bool) throws -> String {
            var t: String
            do {
                t = try template.render(messages: Array(messages), tools: [], addGenerationPrompt: prompt,
                                        bosToken: bos, eosToken: eos, context: [:])
            } catch { throw fail("the chat template cannot render it: \(error)") }
            if tokenizer.addsBOS, !bos.isEmpty, t.hasPrefix(bos) { t.removeFirst(bos.count) }
            return t
        }
        var pieces: [(String, Bool)] = []
        var done = ""
        for (i, m) in chat.enumerated() where m.role == "assistant" {
            let before = try text(chat[..<i], prompt: true)
            let through = try text(chat[...i], prompt: false)
            guard before.hasPrefix(done), through.hasPrefix(before) else {
                throw fail("the chat template does not render this conversation turn by turn")
            }
            pieces.append((String(before.dropFirst(done.count)), false))
            pieces.append((String(through.dropFirst(before.count)), true))
            done = through
        }
        let whole = try text(chat[...], prompt: false)
        if whole.hasPrefix(done), whole.count > done.count { pieces.append((String(whole.dropFirst(done.count)), false)) }
        var example = FineTuneExample(tokens: [], scored: [])
        if tokenizer.addsBOS, let b = tokenizer.bosID { example.tokens.append(b); example.scored.append(false) }
        for (piece, scored) in pieces where !piece.isEmpty {
            let ids = tokenizer.encode(piece, addSpecial: false, parseSpecial: true)
            example.tokens += ids
            example.scored += [Bool](repeating: scored, count: ids.count)
        }
        return example
    }

    static func split(_ examples: [FineTuneExample], heldOutFraction: Double, path: String) throws -> FineTuneDataset {
        guard heldOutFraction >= 0, heldOutFraction < 1 else {
            throw SwiftletError.invalidArgument("held-out fraction \(heldOutFraction) must be in [0, 1)")
        }
        let heldOut = heldOutFraction > 0 ? max(1, Int((Double(examples.count) * heldOutFraction).rounded())) : 0
        guard examples.count - heldOut >= 1 else {
            throw SwiftletError.invalidArgument("\(path) has \(examples.count) usable examples: too few to hold \(heldOut) out and train on the rest")
        }
        return FineTuneDataset(training: Array(examples.dropLast(heldOut)), heldOut: Array(examples.suffix(heldOut)))
    }

    /// Writes `examples` (at most `batch`, each at most `sequenceLength + 1` tokens) into the
    /// graph's inputs and targets; missing rows and positions are padded with `pad` and unscored.
    public static func fill(_ examples: ArraySlice<FineTuneExample>, batch: Int, sequenceLength: Int, pad: Int32,
                            inputs: TokenBuffer, targets: TokenBuffer) {
        for b in 0..<batch {
            let example = b < examples.count ? examples[examples.startIndex + b] : nil
            for i in 0..<sequenceLength {
                let row = b * sequenceLength + i
                if let e = example, i + 1 < e.tokens.count {
                    inputs.ids[row] = e.tokens[i]
                    targets.ids[row] = e.scored[i + 1] ? e.tokens[i + 1] : -1
                } else {
                    inputs.ids[row] = example.flatMap { i < $0.tokens.count ? $0.tokens[i] : nil } ?? pad
                    targets.ids[row] = -1
                }
            }
        }
    }
}
