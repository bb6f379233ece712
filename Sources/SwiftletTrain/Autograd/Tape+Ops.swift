import SwiftletTensor

/// The graph builders: each checks shapes, allocates the op's output once and records the op.
extension Tape {
    /// op(a) · op(b), op = transpose when the flag is set.
    public func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false,
                       name: String = "matmul") throws -> Variable {
        let m = transposeA ? a.columns : a.rows, k = transposeA ? a.rows : a.columns
        let kb = transposeB ? b.columns : b.rows, n = transposeB ? b.rows : b.columns
        guard k == kb else {
            throw SwiftletError.shapeMismatch(op: name, detail: "op(A) is \(m)×\(k), op(B) is \(kb)×\(n)")
        }
        let c = try activation(name, rows: m, columns: n)
        record(MatMulOp(a, b, transA: transposeA, transB: transposeB, output: c, pool: pool))
        return c
    }

    /// x · Wᵀ for a weight stored `[out, in]` row-major (GGUF's layout of a linear layer).
    public func linear(_ x: Variable, weight: Variable, name: String = "linear") throws -> Variable {
        try matmul(x, weight, transposeB: true, name: name)
    }

    /// Rows of `table` picked by `tokens`. Ids must be below `table.rows` (the data loader checks).
    public func embedding(_ table: Variable, tokens: TokenBuffer, name: String = "embedding") throws -> Variable {
        let out = try activation(name, rows: tokens.count, columns: table.columns)
        record(EmbeddingOp(table: table, tokens: tokens, output: out))
        return out
    }

    /// Root-mean-square normalization of each row, times `weight` (`[1, columns]`).
    public func rmsNorm(_ x: Variable, weight: Variable, eps: Float, name: String = "rms_norm") throws -> Variable {
        guard weight.count == x.columns else {
            throw SwiftletError.shapeMismatch(op: name, detail: "weight has \(weight.count) values for rows of \(x.columns)")
        }
        let out = try activation(name, rows: x.rows, columns: x.columns)
        record(RMSNormOp(x: x, weight: weight, eps: eps, output: out, pool: pool))
        return out
    }

    /// Rotary position embedding of `heads` heads per row, row t at position t mod `sequenceLength`.
    public func rope(_ x: Variable, heads: Int, sequenceLength: Int, base: Float,
                     convention: RoPEConvention = .interleaved, name: String = "rope") throws -> Variable {
        guard heads > 0, x.columns % heads == 0, (x.columns / heads) % 2 == 0, sequenceLength > 0,
              x.rows % sequenceLength == 0 else {
            throw SwiftletError.shapeMismatch(op: name, detail: "\(x.rows)×\(x.columns) in \(heads) heads, sequences of \(sequenceLength)")
        }
        let out = try activation(name, rows: x.rows, columns: x.columns)
        record(try RoPEOp(x: x, heads: heads, headDim: x.columns / heads, sequenceLength: sequenceLength, base: base,
                          convention: convention, output: out, pool: pool))
        return out
    }

    /// Causal softmax(Q·Kᵀ/√d)·V per head; `heads` must be a multiple of `kvHeads`.
    public func attention(q: Variable, k: Variable, v: Variable, sequenceLength: Int, heads: Int, kvHeads: Int,
                          name: String = "attention") throws -> Variable {
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0, q.columns % heads == 0, sequenceLength > 0,
              q.rows % sequenceLength == 0, k.rows == q.rows, v.rows == q.rows,
              k.columns == kvHeads * (q.columns / heads), v.columns == k.columns else {
            throw SwiftletError.shapeMismatch(op: name, detail: "q \(q.rows)×\(q.columns), k \(k.rows)×\(k.columns), v \(v.rows)×\(v.columns), \(heads)/\(kvHeads) heads, sequences of \(sequenceLength)")
        }
        let out = try activation(name, rows: q.rows, columns: q.columns)
        record(AttentionOp(q: q, k: k, v: v, batch: q.rows / sequenceLength, sequenceLength: sequenceLength,
                           heads: heads, kvHeads: kvHeads, headDim: q.columns / heads, output: out, pool: pool))
        return out
    }

    /// silu(gate) ⊙ up.
    public func swiglu(gate: Variable, up: Variable, name: String = "swiglu") throws -> Variable {
        guard gate.rows == up.rows, gate.columns == up.columns else {
            throw SwiftletError.shapeMismatch(op: name, detail: "gate \(gate.rows)×\(gate.columns), up \(up.rows)×\(up.columns)")
        }
        let out = try activation(name, rows: gate.rows, columns: gate.columns)
        record(SwiGLUOp(gate: gate, up: up, output: out, pool: pool))
        return out
    }

    /// x · sigmoid(x).
    public func silu(_ x: Variable, name: String = "silu") throws -> Variable {
        let out = try activation(name, rows: x.rows, columns: x.columns)
        record(SwiGLUOp(gate: x, up: nil, output: out, pool: pool))
        return out
    }

    /// a + b.
    public func add(_ a: Variable, _ b: Variable, name: String = "add") throws -> Variable {
        guard a.rows == b.rows, a.columns == b.columns else {
            throw SwiftletError.shapeMismatch(op: name, detail: "\(a.rows)×\(a.columns) + \(b.rows)×\(b.columns)")
        }
        let out = try activation(name, rows: a.rows, columns: a.columns)
        record(AddOp(a, b, output: out))
        return out
    }

    /// Mean cross-entropy of `logits` rows against `targets` (a 1×1 variable).
    public func crossEntropy(_ logits: Variable, targets: TokenBuffer, name: String = "loss") throws -> Variable {
        guard targets.count == logits.rows else {
            throw SwiftletError.shapeMismatch(op: name, detail: "\(targets.count) targets for \(logits.rows) rows")
        }
        let out = try activation(name, rows: 1, columns: 1)
        record(CrossEntropyOp(logits: logits, targets: targets, output: out, pool: pool))
        return out
    }
}
