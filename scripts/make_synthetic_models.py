#!/usr/bin/env python3
"""Write small random-weight GGUF models of the architectures Swiftlet has no real model of in its
catalog (Qwen3, Llama 3.x RoPE scaling, Phi-3), deterministically: the same bytes on every machine.

Each model carries the real tokenizer of SmolLM2 (copied from its GGUF) and Q8_0 / f32 weights drawn
from NumPy's legacy RandomState (a frozen stream). Q8_0 blocks are written directly (random scale,
random int8), so no quantizer is involved. The logits fixtures in Tests/Fixtures/synthetic-models
were made by llama.cpp on these files; the test regenerates the files and checks their sha256.

Usage: make_synthetic_models.py SMOLLM2.gguf OUT_DIR
"""
import os
import sys

import numpy as np
import gguf

Q8 = gguf.GGMLQuantizationType.Q8_0


def q8_0(rng, rows, cols, std):
    """A rows x cols Q8_0 matrix with weights of about `std`, as raw blocks (rows, cols/32*34)."""
    assert cols % 32 == 0
    blocks = rows * cols // 32
    quants = rng.randint(-127, 128, size=(blocks, 32)).astype(np.int8)
    # Uniform int8 has a standard deviation of ~73.6; vary the block scales by ±50 %.
    scales = (std / 73.6 * (0.5 + rng.random_sample(blocks))).astype(np.float16)
    raw = np.empty((blocks, 34), dtype=np.uint8)
    raw[:, :2] = scales.view(np.uint8).reshape(blocks, 2)
    raw[:, 2:] = quants.view(np.uint8)
    return raw.reshape(rows, cols // 32 * 34)


def norm(rng, n):
    return (1 + 0.2 * rng.standard_normal(n)).astype(np.float32)


def copy_tokenizer(writer, source):
    for key, field in source.fields.items():
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), vtype, sub_type=field.types[1])
        else:
            writer.add_key_value(key, field.contents(), vtype)
    return len(source.fields["tokenizer.ggml.tokens"].contents())


def llama3_rope_factors(head_dim, base, factor, low, high, original):
    """Llama 3's frequency factors, as the GGUF converter computes them."""
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * np.pi / f
        if wavelen < original / high:
            out.append(1.0)
        elif wavelen > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# name: (architecture, seed, hyperparameters, extra metadata)
MODELS = {
    "qwen3": ("qwen3", 3, dict(dim=64, heads=4, kv=2, head_dim=32, ffn=128, layers=2, base=1e6, tied=True), {}),
    "llama3": ("llama", 31, dict(dim=64, heads=4, kv=2, head_dim=16, ffn=128, layers=2, base=5e5, rope_freqs=True), {}),
    "llama-linear": ("llama", 32, dict(dim=64, heads=4, kv=2, head_dim=16, ffn=128, layers=2, base=1e4),
                     {"rope.scaling.type": "linear", "rope.scaling.factor": 4.0}),
    "llama-yarn": ("llama", 33, dict(dim=64, heads=4, kv=2, head_dim=16, ffn=128, layers=2, base=1e4),
                   {"rope.scaling.type": "yarn", "rope.scaling.factor": 4.0,
                    "rope.scaling.original_context_length": 16}),
    "phi3": ("phi3", 4, dict(dim=64, heads=4, kv=2, head_dim=16, ffn=128, layers=2, base=1e4, fused=True),
             {"attention.sliding_window": 2047}),
}


def write_model(name, source, out_dir):
    arch, seed, h, extra = MODELS[name]
    rng = np.random.RandomState(seed)
    path = os.path.join(out_dir, f"{name}.gguf")
    w = gguf.GGUFWriter(path, arch)
    # Not the architecture's name: llama.cpp changes token attributes for models named "phi3".
    w.add_name(f"swiftlet-synthetic-{seed}")
    p = arch + "."
    dim, hd, ffn = h["dim"], h["head_dim"], h["ffn"]
    q_dim, kv_dim = h["heads"] * hd, h["kv"] * hd
    w.add_uint32(p + "context_length", 256)
    w.add_uint32(p + "embedding_length", dim)
    w.add_uint32(p + "feed_forward_length", ffn)
    w.add_uint32(p + "block_count", h["layers"])
    w.add_uint32(p + "attention.head_count", h["heads"])
    w.add_uint32(p + "attention.head_count_kv", h["kv"])
    w.add_uint32(p + "attention.key_length", hd)
    w.add_uint32(p + "attention.value_length", hd)
    w.add_float32(p + "attention.layer_norm_rms_epsilon", 1e-6)
    w.add_float32(p + "rope.freq_base", h["base"])
    w.add_uint32(p + "rope.dimension_count", hd)
    for key, value in extra.items():
        if isinstance(value, str):
            w.add_string(p + key, value)
        elif isinstance(value, float):
            w.add_float32(p + key, value)
        else:
            w.add_uint32(p + key, value)
    vocab = copy_tokenizer(w, source)

    w.add_tensor("token_embd.weight", q8_0(rng, vocab, dim, 1.0), raw_dtype=Q8)
    w.add_tensor("output_norm.weight", norm(rng, dim))
    if not h.get("tied"):
        w.add_tensor("output.weight", q8_0(rng, vocab, dim, 4.0 / np.sqrt(dim)), raw_dtype=Q8)
    if h.get("rope_freqs"):
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(hd, h["base"], 8.0, 1.0, 4.0, 64))
    for layer in range(h["layers"]):
        b = f"blk.{layer}."
        w.add_tensor(b + "attn_norm.weight", norm(rng, dim))
        if h.get("fused"):
            w.add_tensor(b + "attn_qkv.weight", q8_0(rng, q_dim + 2 * kv_dim, dim, 1 / np.sqrt(dim)), raw_dtype=Q8)
        else:
            w.add_tensor(b + "attn_q.weight", q8_0(rng, q_dim, dim, 1 / np.sqrt(dim)), raw_dtype=Q8)
            w.add_tensor(b + "attn_k.weight", q8_0(rng, kv_dim, dim, 1 / np.sqrt(dim)), raw_dtype=Q8)
            w.add_tensor(b + "attn_v.weight", q8_0(rng, kv_dim, dim, 1 / np.sqrt(dim)), raw_dtype=Q8)
        if arch == "qwen3":
            w.add_tensor(b + "attn_q_norm.weight", norm(rng, hd))
            w.add_tensor(b + "attn_k_norm.weight", norm(rng, hd))
        w.add_tensor(b + "attn_output.weight", q8_0(rng, dim, q_dim, 1 / np.sqrt(q_dim)), raw_dtype=Q8)
        w.add_tensor(b + "ffn_norm.weight", norm(rng, dim))
        if h.get("fused"):
            w.add_tensor(b + "ffn_up.weight", q8_0(rng, 2 * ffn, dim, 1 / np.sqrt(dim)), raw_dtype=Q8)
        else:
            w.add_tensor(b + "ffn_gate.weight", q8_0(rng, ffn, dim, 1 / np.sqrt(dim)), raw_dtype=Q8)
            w.add_tensor(b + "ffn_up.weight", q8_0(rng, ffn, dim, 1 / np.sqrt(dim)), raw_dtype=Q8)
        w.add_tensor(b + "ffn_down.weight", q8_0(rng, dim, ffn, 1 / np.sqrt(ffn)), raw_dtype=Q8)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source = gguf.GGUFReader(sys.argv[1])
    os.makedirs(sys.argv[2], exist_ok=True)
    for name in MODELS:
        print(write_model(name, source, sys.argv[2]))


if __name__ == "__main__":
    main()
