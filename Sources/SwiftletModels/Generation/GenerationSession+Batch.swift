import SwiftletTensor

extension GenerationSession {
    /// The logits this session's last batched step returned (`nil` before its first).
    public var stepLogits: UnsafeBufferPointer<Float>? { batchLogits.map { UnsafeBufferPointer($0) } }

    /// Appends `tokens[i]` to `sessions[i]` for every i in one batched forward pass (each weight
    /// block read once for all sessions; see ``Transformer/decode(_:at:caches:_:)``) and returns
    /// each session's logits predicting its next token. Each session's logits equal what
    /// ``step(_:)`` would give it alone, bit for bit. They live in a buffer of the session's own,
    /// valid until that session's next batched step (other evaluations of the transformer, such as
    /// another session's prefill, do not touch them).
    ///
    /// The sessions must share one transformer and be distinct; each needs a free position.
    public static func step(_ sessions: [GenerationSession], tokens: [TokenID]) throws -> [UnsafeBufferPointer<Float>] {
        guard sessions.count == tokens.count else {
            throw SwiftletError.invalidArgument("batched step: \(sessions.count) sessions, \(tokens.count) tokens")
        }
        guard let transformer = sessions.first?.transformer else { return [] }
        guard sessions.allSatisfy({ $0.transformer === transformer }) else {
            throw SwiftletError.invalidArgument("batched step: the sessions run on different transformers")
        }
        let vocab = transformer.config.vocabSize
        let outputs = sessions.map { session in
            if let buffer = session.batchLogits { return buffer }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: vocab)
            buffer.initialize(repeating: 0)
            session.batchLogits = buffer
            return buffer
        }
        try transformer.decode(tokens, at: sessions.map(\.tokens.count), caches: sessions.map(\.cache)) { i, logits in
            _ = outputs[i].update(fromContentsOf: logits)
        }
        for (session, token) in zip(sessions, tokens) { session.tokens.append(token) }
        return outputs.map { UnsafeBufferPointer($0) }
    }
}
