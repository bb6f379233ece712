#!/usr/bin/env python3
"""Writes the synthetic F32 models and importance matrix that the llama-quantize fixtures were made
from (deterministic: fixed seed). Usage: make_fixture.py OUTDIR"""
import sys, numpy as np, gguf

out = sys.argv[1]
rng = np.random.default_rng(20261130)

def weights(rows, cols):
    col_scale = np.exp(rng.normal(0, 0.7, cols)).astype(np.float32)
    w = rng.normal(0, 0.05, (rows, cols)).astype(np.float32) * col_scale
    # outliers, a zero block and a constant block: the scale searches' edge cases
    idx = rng.integers(0, rows * cols, max(1, rows * cols // 200))
    w.flat[idx] *= 12
    if cols >= 64:
        w[0, 32:64] = 0
        w[-1, 0:32] = 0.25
    return w

def model(path, tied):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("swiftlet-quant-fixture")
    w.add_context_length(256)
    w.add_embedding_length(256)
    w.add_block_count(8)
    w.add_feed_forward_length(96)
    w.add_head_count(4)
    w.add_head_count_kv(1)
    w.add_rope_dimension_count(64)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    names = {}
    def add(name, arr):
        names[name] = arr
        w.add_tensor(name, arr)
    add("token_embd.weight", weights(16, 256))
    if not tied:
        add("output.weight", weights(16, 256))
    add("output_norm.weight", np.ones(256, np.float32))
    for i in range(8):
        add(f"blk.{i}.attn_norm.weight", (1 + 0.1 * rng.normal(size=256)).astype(np.float32))
        add(f"blk.{i}.attn_q.weight", weights(8, 256))
        add(f"blk.{i}.attn_k.weight", weights(4, 256))
        add(f"blk.{i}.attn_v.weight", weights(4, 256))
        add(f"blk.{i}.attn_output.weight", weights(8, 256))
        add(f"blk.{i}.ffn_norm.weight", (1 + 0.1 * rng.normal(size=256)).astype(np.float32))
        add(f"blk.{i}.ffn_gate.weight", weights(8, 256))
        add(f"blk.{i}.ffn_up.weight", weights(8, 256))
        # 96 columns: no k-quant fits (fallback); 40 in the last layer: nothing fits (F16)
        add(f"blk.{i}.ffn_down.weight", weights(4, 40 if i == 7 else 96))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    return names

names = model(f"{out}/synthetic-f32.gguf", tied=False)
model(f"{out}/synthetic-tied-f32.gguf", tied=True)

# An importance matrix in llama-imatrix's GGUF layout for every 2-D weight but token_embd.
im = gguf.GGUFWriter(f"{out}/synthetic-imatrix.gguf", "")
im.kv_data[0].pop("general.architecture", None)
im.add_string("general.type", "imatrix")
im.add_array("imatrix.datasets", ["synthetic"])
im.add_uint32("imatrix.chunk_count", 3)
im.add_uint32("imatrix.chunk_size", 256)
for name in sorted(n for n, a in names.items() if a.ndim == 2 and n != "token_embd.weight"):
    cols = names[name].shape[1]
    im.add_tensor(f"{name}.in_sum2", (np.exp(rng.normal(0, 1.0, cols)) * 768).astype(np.float32).reshape(1, cols))
    im.add_tensor(f"{name}.counts", np.array([[768.0]], np.float32))
im.write_header_to_file(); im.write_kv_data_to_file(); im.write_tensors_to_file(); im.close()
