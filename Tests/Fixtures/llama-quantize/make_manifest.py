#!/usr/bin/env python3
"""Runs llama-quantize on the synthetic models (make_fixture.py) in every configuration the test
checks and prints one line per output: source, options, type, FNV-1a-64 of the whole file, bytes.
Usage, in the folder make_fixture.py wrote:  make_manifest.py PATH/TO/llama-quantize > expected.tsv"""
import subprocess, sys, os

q = sys.argv[1]
types = "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS F16 BF16 F32".split()

def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h

def run(src, opts, t):
    subprocess.run([q, *opts.split(), src, "out.gguf", t, "2"], check=True, capture_output=True)
    data = open("out.gguf", "rb").read()
    print(f"{src}\t{opts}\t{t}\t{fnv1a64(data):016x}\t{len(data)}")

for src in ["synthetic-f32.gguf", "synthetic-tied-f32.gguf"]:
    for t in types: run(src, "", t)
    for t in types + ["Q2_K_S"]: run(src, "--imatrix synthetic-imatrix.gguf", t)
    run(src, "--pure", "Q4_K_M")
    run(src, "--pure", "Q3_K_S")
    run(src, "--leave-output-tensor", "Q4_K_M")
    run(src, "--output-tensor-type q8_0 --token-embedding-type q5_k", "Q3_K_M")
    run(src, "--token-embedding-type f16", "Q6_K")
os.remove("out.gguf")
