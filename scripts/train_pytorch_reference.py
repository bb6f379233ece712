#!/usr/bin/env python3
"""PyTorch side of Swiftlet's training parity check (Tests/Fixtures/train-pytorch/).

Reads a `llama` GGUF of initial weights written by `swiftlet train --max-steps 0`, runs the same
Llama forward pass in PyTorch (F32) on one batch cut from a text file (byte-level tokens), and
writes the loss and every parameter's gradient to a GGUF that the Swift test compares with.

    python3 scripts/train_pytorch_reference.py INIT.gguf CORPUS.txt OUT.gguf --batch 2 --seq 16

Also `--bench`: times forward+backward+AdamW steps of the same architecture at the given
batch and sequence length (for the side-by-side speed figure), printing tokens/s.
Needs `pip install torch gguf numpy`. Not used by CI.
"""
import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
import gguf


def read_model(path):
    r = gguf.GGUFReader(path)
    def field(name):
        f = r.fields[name]
        return f.parts[f.data[0]].tolist()[0]
    cfg = dict(
        dim=field("llama.embedding_length"), layers=field("llama.block_count"),
        heads=field("llama.attention.head_count"), kv_heads=field("llama.attention.head_count_kv"),
        ffn=field("llama.feed_forward_length"), eps=field("llama.attention.layer_norm_rms_epsilon"),
        base=field("llama.rope.freq_base"))
    weights = {}
    for t in r.tensors:
        a = np.array(t.data, dtype=np.float32)
        shape = [int(x) for x in reversed(t.shape.tolist())]  # rows first
        weights[t.name] = torch.tensor(a.reshape(shape), requires_grad=True)
    return cfg, weights


def rope_tables(seq, head_dim, base):
    # llama.cpp's angle order: theta_0 = position, theta_{i+1} = theta_i * base^(-2/head_dim), in F32.
    scale = np.float32(base) ** np.float32(-2.0 / head_dim)
    cos = np.zeros((seq, head_dim // 2), np.float32)
    sin = np.zeros((seq, head_dim // 2), np.float32)
    for p in range(seq):
        theta = np.float32(p)
        for i in range(head_dim // 2):
            cos[p, i] = np.cos(theta, dtype=np.float32)
            sin[p, i] = np.sin(theta, dtype=np.float32)
            theta = np.float32(theta * scale)
    return torch.tensor(cos), torch.tensor(sin)


def rope(x, cos, sin):
    # x: [B, L, H, hd]; interleaved pairs (x[2i], x[2i+1]), llama.cpp's mode for `llama` GGUFs.
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def forward(cfg, w, inputs, targets):
    B, L = inputs.shape
    H, KV, D = cfg["heads"], cfg["kv_heads"], cfg["dim"]
    hd = D // H
    cos, sin = rope_tables(L, hd, cfg["base"])
    mask = torch.full((L, L), float("-inf")).triu(1)
    x = w["token_embd.weight"][inputs]
    for l in range(cfg["layers"]):
        p = lambda n: w[f"blk.{l}.{n}"]
        h = rms_norm(x, p("attn_norm.weight"), cfg["eps"])
        q = rope(F.linear(h, p("attn_q.weight")).view(B, L, H, hd), cos, sin).transpose(1, 2)
        k = rope(F.linear(h, p("attn_k.weight")).view(B, L, KV, hd), cos, sin).transpose(1, 2)
        v = F.linear(h, p("attn_v.weight")).view(B, L, KV, hd).transpose(1, 2)
        k = k.repeat_interleave(H // KV, dim=1)  # query head h reads key/value head h // (H / KV)
        v = v.repeat_interleave(H // KV, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5 + mask, dim=-1)
        a = (att @ v).transpose(1, 2).reshape(B, L, D)
        x = x + F.linear(a, p("attn_output.weight"))
        h = rms_norm(x, p("ffn_norm.weight"), cfg["eps"])
        x = x + F.linear(F.silu(F.linear(h, p("ffn_gate.weight"))) * F.linear(h, p("ffn_up.weight")),
                         p("ffn_down.weight"))
    logits = F.linear(rms_norm(x, w["output_norm.weight"], cfg["eps"]), w["output.weight"])
    return F.cross_entropy(logits.reshape(B * L, -1), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("corpus")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--bench", type=int, default=0, help="time this many training steps instead")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg, w = read_model(args.model)
    data = np.frombuffer(open(args.corpus, "rb").read(), dtype=np.uint8).astype(np.int64)
    B, L = args.batch, args.seq
    if args.bench:
        opt = torch.optim.AdamW(list(w.values()), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
        rng = np.random.default_rng(1)
        def batch():
            starts = rng.integers(0, len(data) - L - 1, B)
            return (torch.tensor(np.stack([data[s:s + L] for s in starts])),
                    torch.tensor(np.stack([data[s + 1:s + L + 1] for s in starts])))
        for i in range(args.bench + 2):
            if i == 2:
                start = time.perf_counter()
            inputs, targets = batch()
            loss = forward(cfg, w, inputs, targets)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(w.values()), 1.0)
            opt.step()
        seconds = time.perf_counter() - start
        print(f"pytorch {torch.__version__}: {args.bench} steps of {B}x{L} tokens in {seconds:.2f} s = "
              f"{args.bench * B * L / seconds:.0f} tokens/s ({args.threads} threads), last loss {loss.item():.4f}")
        return
    inputs = torch.tensor(data[: B * L].reshape(B, L))
    targets = torch.tensor(data[1: B * L + 1].reshape(B, L))
    loss = forward(cfg, w, inputs, targets)
    loss.backward()
    out = gguf.GGUFWriter(args.out, "llama")
    out.add_float32("swiftlet.test.loss", float(loss.item()))
    out.add_uint32("swiftlet.test.batch", B)
    out.add_uint32("swiftlet.test.sequence_length", L)
    out.add_array("swiftlet.test.inputs", inputs.reshape(-1).tolist())
    out.add_array("swiftlet.test.targets", targets.reshape(-1).tolist())
    out.add_string("swiftlet.test.torch_version", torch.__version__)
    for name, t in w.items():
        out.add_tensor("grad." + name, t.grad.numpy().astype(np.float32))
    out.write_header_to_file()
    out.write_kv_data_to_file()
    out.write_tensors_to_file()
    out.close()
    print(f"loss {loss.item():.8f}; wrote {args.out}")


if __name__ == "__main__":
    main()
