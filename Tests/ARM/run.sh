#!/usr/bin/env bash
# ARM64 kernel check under emulation (`make test-arm`): builds Tests/ARM/arm_kernels_test.c with
# the kernels of Sources/CSwiftletKernels for aarch64 and runs it under qemu-aarch64 as a CPU with
# dotprod + i8mm (-cpu max) and as a plain ARMv8.0 NEON core (-cpu cortex-a53). First, the Apple
# syntax check (Tests/ARM/apple-check.sh).
#
# Two builds: clang (the compiler SwiftPM uses; objects linked by the aarch64 GCC driver) and GCC.
# GCC ignores `#pragma STDC FP_CONTRACT OFF`, so ggml_compat.c and flash_attn.c are built with -ffp-contract=off
# there, as clang honours the pragma.
#
#   Tests/ARM/run.sh [ROWS]   (default 10000 random rows per type; real rows need the models)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-10000}
out=${ARM_BUILD_DIR:-.build/arm}
mkdir -p "$out"
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v $tool >/dev/null || { echo "test-arm: $tool missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
bash Tests/ARM/apple-check.sh
src=Sources/CSwiftletKernels
inc="-I$src/include -I$src"
objs_gcc=() objs_clang=() jobs_pids=()
clang_bin=$(command -v clang || true)
resource=""
[ -n "$clang_bin" ] && resource=$("$clang_bin" -print-resource-dir 2>/dev/null || true)
sysinc=/usr/aarch64-linux-gnu/include
for f in "$src"/*.c Tests/ARM/arm_kernels_test.c; do
  base=$(basename "$f" .c)
  contract=""
  case "$base" in ggml_compat|flash_attn) contract="-ffp-contract=off" ;; esac
  aarch64-linux-gnu-gcc -O2 -std=gnu11 -Wall -Wno-unknown-pragmas $contract $inc -c "$f" -o "$out/$base.gcc.o" &
  jobs_pids+=($!)
  objs_gcc+=("$out/$base.gcc.o")
  if [ -n "$resource" ] && [ -d "$sysinc" ]; then
    "$clang_bin" --target=aarch64-linux-gnu -nostdlibinc -isystem "$resource/include" -isystem "$sysinc" \
      -O2 -std=gnu11 -Wall $inc -c "$f" -o "$out/$base.clang.o" &
    jobs_pids+=($!)
    objs_clang+=("$out/$base.clang.o")
  fi
done
for pid in "${jobs_pids[@]}"; do wait "$pid"; done
aarch64-linux-gnu-gcc -static "${objs_gcc[@]}" -lm -lpthread -o "$out/arm_kernels_test.gcc"
builds=(gcc)
if [ ${#objs_clang[@]} -gt 0 ]; then
  aarch64-linux-gnu-gcc -static "${objs_clang[@]}" -lm -lpthread -o "$out/arm_kernels_test.clang"
  builds=(clang gcc)
else
  echo "test-arm: no clang with an aarch64 target found; GCC build only" >&2
fi
export SWIFTLET_MODELS_DIR=${SWIFTLET_MODELS_DIR:-$PWD/Models/cache}
status=0
for build in "${builds[@]}"; do
  # The two CPU models run side by side.
  pids=()
  for cpu in max cortex-a53; do
    qemu-aarch64 -cpu $cpu "$out/arm_kernels_test.$build" check "$rows" > "$out/$build-$cpu.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  for cpu in max cortex-a53; do
    echo "== $build, qemu -cpu $cpu"
    cat "$out/$build-$cpu.log"
    grep -q "all equal to the generic twins" "$out/$build-$cpu.log" || status=1
  done
done
exit $status
