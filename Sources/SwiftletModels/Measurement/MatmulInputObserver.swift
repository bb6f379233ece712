/// A weight matrix of the decoder, named as in the GGUF file (`blk.3.attn_q.weight`).
public struct MatmulWeight: Sendable, Hashable {
    /// What the matrix does in its block.
    public enum Role: String, Sendable, CaseIterable {
        case attentionQuery = "attn_q", attentionKey = "attn_k", attentionValue = "attn_v"
        case attentionOutput = "attn_output"
        case ffnGate = "ffn_gate", ffnUp = "ffn_up", ffnDown = "ffn_down"
    }

    /// Block index.
    public var layer: Int
    public var role: Role

    public init(layer: Int, role: Role) {
        self.layer = layer; self.role = role
    }

    /// The tensor's name in the model file.
    public var tensorName: String { "blk.\(layer).\(role.rawValue).weight" }
}

/// Sees the f32 input of every weight matrix product of a ``Transformer``'s blocks, before the
/// product quantizes it: `rows` rows of the matrix's column count, one per token of the step.
/// Used to accumulate an importance matrix (llama-imatrix's collector sees the same tensors).
///
/// Called on the evaluating thread, once per matrix even when several matrices share one input
/// (Q, K and V; gate and up), in the order llama.cpp's graph multiplies them.
public protocol MatmulInputObserver: AnyObject {
    func observe(_ weight: MatmulWeight, input: UnsafeBufferPointer<Float>, rows: Int)
}

extension Transformer {
    /// Hands `input` (`rows` × `cols`) to the observer for each of `roles`; a single branch when
    /// no observer is set.
    @inline(__always)
    func observeInput(layer: Int, _ first: MatmulWeight.Role, _ second: MatmulWeight.Role? = nil,
                      _ third: MatmulWeight.Role? = nil, input: UnsafePointer<Float>, rows: Int, cols: Int) {
        guard let observer = matmulInputObserver else { return }
        let buffer = UnsafeBufferPointer(start: input, count: rows * cols)
        observer.observe(MatmulWeight(layer: layer, role: first), input: buffer, rows: rows)
        if let second { observer.observe(MatmulWeight(layer: layer, role: second), input: buffer, rows: rows) }
        if let third { observer.observe(MatmulWeight(layer: layer, role: third), input: buffer, rows: rows) }
    }
}
