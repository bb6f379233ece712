import Foundation
import Swiftlet
import SwiftletTestSupport

/// A small random-weight Llama checkpoint in Hugging Face form (config.json, BF16
/// model.safetensors, tokenizer.json, tokenizer_config.json, README.md), laid out like
/// SmolLM2-135M-Instruct but with 2 layers of width 64. The tokenizer is SmolLM2's real one,
/// rebuilt from the SmolLM2 GGUF's vocabulary, merges and chat template. Deterministic: the same
/// bytes on every run, so a conversion's SHA-256 can be compared with the file llama.cpp's
/// converter made from the same folder (`Tests/Fixtures/convert/SOURCE.md`).
enum TinyLlamaCheckpoint {
    static let hidden = 64, intermediate = 128, layers = 2, heads = 4, kvHeads = 2, vocab = 49152

    /// Writes the folder `directory` (created if needed).
    static func write(to directory: URL, smolLM2 gguf: GGUFFile) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func json(_ object: Any, _ name: String) throws {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            try data.write(to: directory.appendingPathComponent(name))
        }
        try json([
            "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "hidden_act": "silu", "hidden_size": hidden,
            "initializer_range": 0.02, "intermediate_size": intermediate, "max_position_embeddings": 8192,
            "mlp_bias": false, "model_type": "llama", "num_attention_heads": heads, "num_hidden_layers": layers,
            "num_key_value_heads": kvHeads, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": NSNull(),
            "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
            "transformers_version": "4.42.3", "use_cache": true, "vocab_size": vocab,
        ] as [String: Any], "config.json")

        let tokens = try gguf.stringArray("tokenizer.ggml.tokens")
        let types = try gguf.int32Array("tokenizer.ggml.token_type")
        let merges = try gguf.stringArray("tokenizer.ggml.merges")
        var vocabulary: [String: Int] = [:]
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            vocabulary[token] = id
            if types[id] == 3 {
                added.append(["id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false, "special": true])
            }
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        try json([
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]],
            "post_processor": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocabulary, "merges": merges] as [String: Any],
        ] as [String: Any], "tokenizer.json")
        try json([
            "add_prefix_space": false, "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>",
            "chat_template": try gguf.string("tokenizer.chat_template"), "clean_up_tokenization_spaces": false,
            "model_max_length": 8192, "tokenizer_class": "GPT2Tokenizer", "vocab_size": vocab,
        ] as [String: Any], "tokenizer_config.json")
        try Data("""
            ---
            library_name: transformers
            license: apache-2.0
            language:
            - en
            base_model:
            - HuggingFaceTB/SmolLM2-135M
            tags:
            - test
            ---

            # A random-weight model for converter tests.

            """.utf8).write(to: directory.appendingPathComponent("README.md"))

        var rng = SplitMix64(seed: 20_261_130)
        func bf16(_ shape: [Int], scale: Float, offset: Float = 0) -> [UInt8] {
            let count = shape.reduce(1, *)
            var bytes = [UInt8](repeating: 0, count: 2 * count)
            for i in 0..<count {
                let u = Float(rng.next() >> 40) / Float(1 << 24)  // [0, 1)
                let v = HalfPrecision.bf16(from: offset + scale * (2 * u - 1))
                bytes[2 * i] = UInt8(v & 0xFF); bytes[2 * i + 1] = UInt8(v >> 8)
            }
            return bytes
        }
        var tensors: [SafetensorsWriter.Tensor] = []
        func add(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
            tensors.append(.init(name: name, dtype: .bf16, shape: shape, bytes: bf16(shape, scale: scale, offset: offset)))
        }
        let headDim = hidden / heads
        add("model.embed_tokens.weight", [vocab, hidden], scale: 0.5)
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            add(p + "input_layernorm.weight", [hidden], scale: 0.1, offset: 1)
            add(p + "self_attn.q_proj.weight", [heads * headDim, hidden], scale: 0.2)
            add(p + "self_attn.k_proj.weight", [kvHeads * headDim, hidden], scale: 0.2)
            add(p + "self_attn.v_proj.weight", [kvHeads * headDim, hidden], scale: 0.2)
            add(p + "self_attn.o_proj.weight", [hidden, heads * headDim], scale: 0.2)
            add(p + "post_attention_layernorm.weight", [hidden], scale: 0.1, offset: 1)
            add(p + "mlp.gate_proj.weight", [intermediate, hidden], scale: 0.2)
            add(p + "mlp.up_proj.weight", [intermediate, hidden], scale: 0.2)
            add(p + "mlp.down_proj.weight", [hidden, intermediate], scale: 0.2)
        }
        add("model.norm.weight", [hidden], scale: 0.1, offset: 1)
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
    }
}
