#!/usr/bin/env python3
"""Writes the two small LoRA adapters for SmolLM2-135M-Instruct used by the LoRA tests, as GGUF
files in llama.cpp's adapter format (general.type = adapter, adapter.type = lora,
adapter.lora.alpha, <tensor>.lora_a [in, rank], <tensor>.lora_b [rank, out]). Values are seeded
normal samples (numpy's PCG64), so the files are reproducible. Plain struct packing, GGUF v3."""
import struct, sys
import numpy as np

DIM, KV, FFN = 576, 192, 1536
SHAPES = {"attn_q": (DIM, DIM), "attn_k": (DIM, KV), "attn_v": (DIM, KV), "attn_output": (DIM, DIM),
          "ffn_gate": (DIM, FFN), "ffn_up": (DIM, FFN), "ffn_down": (FFN, DIM)}  # (in, out)

def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

def write(path, alpha, tensors):
    kv = [("general.architecture", 8, gguf_string("llama")), ("general.type", 8, gguf_string("adapter")),
          ("adapter.type", 8, gguf_string("lora")), ("adapter.lora.alpha", 6, struct.pack("<f", alpha))]
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
    for key, t, value in kv:
        out += gguf_string(key) + struct.pack("<I", t) + value
    offset, blobs = 0, []
    for name, array, ggml_type in tensors:
        data = array.astype(np.float32 if ggml_type == 0 else np.float16).tobytes()
        out += gguf_string(name) + struct.pack("<I", 2) + struct.pack("<QQ", array.shape[1], array.shape[0])
        out += struct.pack("<IQ", ggml_type, offset)
        blobs.append(data)
        offset += (len(data) + 31) // 32 * 32
    out += b"\0" * ((-len(out)) % 32)
    for data in blobs:
        out += data + b"\0" * ((-len(data)) % 32)
    open(path, "wb").write(out)

def adapter(seed, layers, roles, rank, ggml_type, b_std):
    rng = np.random.default_rng(seed)
    tensors = []
    for layer in layers:
        for role in roles:
            n_in, n_out = SHAPES[role]
            a = rng.standard_normal((rank, n_in)) / np.sqrt(n_in)   # rows: rank, row length: in
            b = rng.standard_normal((n_out, rank)) * b_std           # rows: out, row length: rank
            tensors.append((f"blk.{layer}.{role}.weight.lora_a", a, ggml_type))
            tensors.append((f"blk.{layer}.{role}.weight.lora_b", b, ggml_type))
    return tensors

if __name__ == "__main__":
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    # Rank 8, F32, every matrix of block 0 (B·(A·x) takes ggml_vec_dot_f32: k = 8).
    write(f"{directory}/smollm2-rank8-f32.gguf", 12.0, adapter(1, [0], list(SHAPES), 8, 0, 0.08))
    # Rank 16, F16, Q and FFN-down of blocks 2-3 (k = 16: tinyBLAS for both products).
    write(f"{directory}/smollm2-rank16-f16.gguf", 16.0, adapter(2, [2, 3], ["attn_q", "ffn_down"], 16, 1, 0.05))
