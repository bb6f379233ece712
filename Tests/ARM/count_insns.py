#!/usr/bin/env python3
"""Executed aarch64 instructions per weight block of each quantized dot kernel, under qemu-aarch64.

Debian's qemu-user ships no TCG plugins (no libinsn.so), so this counts with qemu's own logs:
`-d in_asm` prints every translation block once with its instructions, `-d exec,nochain` logs
every execution of a block (chaining off, so none is skipped). Executed instructions = Σ over
executions of the block's length. The driver's `count` mode runs N dot products of one
4096-weight row; the difference between N = 6 and N = 1 removes start-up and set-up, so
per call = (I(6) − I(1)) / 5 and per block = per call / blocks per row.

  Tests/ARM/count_insns.py BINARY [CPU]     (BINARY: a static aarch64 arm_kernels_test)
"""
import os
import re
import subprocess
import sys
import tempfile

TYPES = [("q4_0", 32), ("q4_1", 32), ("q5_0", 32), ("q5_1", 32), ("q8_0", 32), ("iq4_nl", 32),
         ("q2_K", 256), ("q3_K", 256), ("q4_K", 256), ("q5_K", 256), ("q6_K", 256), ("iq4_xs", 256)]
VARIANTS = [(0, "generic"), (3, "neon"), (4, "dotprod")]
N = 4096
TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
INSN = re.compile(r"^0x([0-9a-f]+):")


def executed(binary, cpu, type_name, variant, calls, rows=1, tokens=1):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "qemu.log")
        subprocess.run(["qemu-aarch64", "-cpu", cpu, "-d", "in_asm,exec,nochain", "-D", log,
                        binary, "count", type_name, str(variant), str(calls), str(rows), str(tokens)],
                       check=True, stdout=subprocess.DEVNULL)
        sizes, counts = {}, {}
        block_pc, block_len = None, 0
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith("Trace"):
                    m = TRACE.match(line)
                    if m:
                        pc = int(m.group(1), 16)
                        counts[pc] = counts.get(pc, 0) + 1
                    continue
                m = INSN.match(line)
                if m:
                    if block_pc is None:
                        block_pc = int(m.group(1), 16)
                    block_len += 1
                elif line.strip() == "" or line.startswith("IN:"):
                    if block_pc is not None:
                        sizes.setdefault(block_pc, block_len)
                    block_pc, block_len = None, 0
        if block_pc is not None:
            sizes.setdefault(block_pc, block_len)
        missing = [pc for pc in counts if pc not in sizes]
        if missing:
            raise SystemExit(f"{len(missing)} executed blocks without a translation in the log")
        return sum(sizes[pc] * n for pc, n in counts.items())


def main():
    binary = sys.argv[1]
    cpu = sys.argv[2] if len(sys.argv) > 2 else "max"
    # The kernel the dispatcher runs on this CPU model (the ARMv8.0 cores lack dotprod; there the
    # dotprod column only measures the refused call).
    plain = cpu in ("cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72")
    runs = 1 if plain else 2
    print(f"executed instructions per weight block (4096-weight row, 1 token, qemu -cpu {cpu})")
    print(f"{'type':8}" + "".join(f"{name:>10}" for _, name in VARIANTS) + f"   generic/{VARIANTS[runs][1]}")
    worst = None
    for type_name, block in TYPES:
        per_block = []
        for variant, _ in VARIANTS:
            lo, hi = executed(binary, cpu, type_name, variant, 1), executed(binary, cpu, type_name, variant, 6)
            per_block.append((hi - lo) / 5 / (N // block))
        ratio = per_block[0] / per_block[runs]
        worst = ratio if worst is None else min(worst, ratio)
        print(f"{type_name:8}" + "".join(f"{v:10.1f}" for v in per_block) + f"   {ratio:6.2f}x")
    print(f"smallest ratio: {worst:.2f}x")
    if plain:
        return
    # Batched Q4_K: 4 rows x 4 tokens, where the i8mm variant takes 2 x 2 smmla tiles.
    per = []
    for variant in (0, 4, 5):
        lo = executed(binary, cpu, "q4_K", variant, 1, 4, 4)
        hi = executed(binary, cpu, "q4_K", variant, 6, 4, 4)
        per.append((hi - lo) / 5 / (N // 256) / 16)
    print(f"q4_K, 4 rows x 4 tokens, per super-block and (row, token): generic {per[0]:.1f}, "
          f"dotprod {per[1]:.1f}, i8mm {per[2]:.1f}")


if __name__ == "__main__":
    main()
