import CSwiftletKernels
import SwiftletTensor

extension Transformer {
    /// The LoRA adapters applied in the forward pass, in application order.
    public var adapters: [ScaledAdapter] { lora?.adapters ?? [] }

    /// Applies `adapters` (replacing any applied before; empty removes them) from the next
    /// evaluation on. Each adapted product becomes `W·x + scale·B·(A·x)`, computed in llama.cpp's
    /// float order, so logits equal llama.cpp's with the same `--lora` / `--lora-scaled` files.
    ///
    /// - Throws: ``SwiftletError/invalidArgument(_:)`` naming the adapter's file when it was made
    ///   for another architecture, adapts a tensor the base lacks or has a NaN or infinite scale, and
    ///   ``SwiftletError/shapeMismatch(op:detail:)`` when its factors do not fit the base's matrix
    ///   (an adapter for another model of the same architecture).
    public func setAdapters(_ adapters: [ScaledAdapter]) throws {
        try ScaledAdapter.checkScales(adapters)
        lora = adapters.isEmpty ? nil
            : try LoRABinding(adapters: adapters, config: config, maxBatch: maxBatch, logitRows: state.logitRows)
    }

    /// `out += Σ scale·B·(A·input)` over the adapters of `role` in block `layer`; one branch when
    /// no adapter is applied.
    @inline(__always)
    func addAdapters(layer: Int, _ role: MatmulWeight.Role, input: UnsafePointer<Float>, tokens: Int,
                     into out: UnsafeMutablePointer<Float>) {
        guard let lora else { return }
        for p in lora.products[layer][role.index] { addLoRA(p, lora, input: input, tokens: tokens, into: out) }
    }

    /// The unembedding's adapters on `tokens` normed rows.
    @inline(__always)
    func addOutputAdapters(input: UnsafePointer<Float>, tokens: Int, into out: UnsafeMutablePointer<Float>) {
        guard let lora else { return }
        for p in lora.output { addLoRA(p, lora, input: input, tokens: tokens, into: out) }
    }

    private func addLoRA(_ p: LoRAProduct, _ b: LoRABinding, input: UnsafePointer<Float>, tokens: Int,
                         into out: UnsafeMutablePointer<Float>) {
        // ggml converts the activations to f16 before an F16 weight's product.
        var x = input
        if p.aIsF16 {
            b.rounded.update(from: input, count: tokens * p.inputs)
            swiftlet_gc_round_f16(b.rounded, tokens * p.inputs)
            x = UnsafePointer(b.rounded)
        }
        let inner = b.inner, rank = p.rank
        pool.parallelFor(min(rank, pool.threadCount)) { c in
            let chunks = min(rank, self.pool.threadCount)
            swiftlet_gc_mul_mat_float(p.aIsF16 ? 1 : 0, p.a, p.inputs, rank, rank * c / chunks, rank * (c + 1) / chunks,
                                      x, tokens, inner, rank)
        }
        var t = UnsafePointer(inner)
        if p.bIsF16 {
            b.rounded.update(from: inner, count: tokens * rank)
            swiftlet_gc_round_f16(b.rounded, tokens * rank)
            t = UnsafePointer(b.rounded)
        }
        let delta = b.delta, outputs = p.outputs
        let chunks = min(outputs, 4 * pool.threadCount)
        pool.parallelFor(chunks) { c in
            swiftlet_gc_mul_mat_float(p.bIsF16 ? 1 : 0, p.b, rank, p.bRows, outputs * c / chunks, outputs * (c + 1) / chunks,
                                      t, tokens, delta, outputs)
        }
        swiftlet_gc_add_scaled(out, delta, p.scale, tokens * outputs)
    }
}
