#!/usr/bin/env bash
# Fuzzes the GGUF reader and writer with libFuzzer (+ AddressSanitizer) for a bounded time and
# reports executions and crashes. Exit status 0 only when no crash was found.
#
# Seeds, written at run time under .build-fuzz/ (never committed): the first 2 MiB of each real
# GGUF under $SWIFTLET_MODELS_DIR (default Models/cache), and synthetic files Swiftlet writes
# (every metadata value type, every tensor type; see Fuzz/Sources/SwiftletFuzzGGUF).
#
# Usage: scripts/fuzz.sh [SECONDS]   (default 300; or FUZZ_SECONDS)
#        FUZZ_MAX_LEN=BYTES           largest input (default 2 MiB, the size of the seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-${FUZZ_SECONDS:-300}}
max_len=${FUZZ_MAX_LEN:-2097152}
models=${SWIFTLET_MODELS_DIR:-$root/Models/cache}
work=$root/.build-fuzz
corpus=$work/corpus-gguf      # inputs libFuzzer found interesting (kept between runs)
seeds=$work/seeds-gguf        # rewritten every run
artifacts=$work/artifacts-gguf

build=(swift build --package-path Fuzz -c release --sanitize=fuzzer --sanitize=address)
echo "fuzz: building the libFuzzer target (Fuzz/, --sanitize=fuzzer,address)"
"${build[@]}" --product SwiftletFuzzGGUF 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
bin="$("${build[@]}" --show-bin-path)/SwiftletFuzzGGUF"
[ -x "$bin" ] || { echo "fuzz: build failed" >&2; exit 2; }

rm -rf "$seeds"
mkdir -p "$corpus" "$seeds" "$artifacts"
found=0
for f in "$models"/*/*.gguf; do
  [ -f "$f" ] || continue
  head -c 2097152 "$f" > "$seeds/$(basename "$f" .gguf).head2m.gguf"
  found=$((found + 1))
done
[ "$found" -gt 0 ] || echo "fuzz: no real GGUF under $models (run python3 Models/fetch.py); synthetic seeds only"

log=$work/fuzz-gguf.log
echo "fuzz: running for ${seconds}s (log $log)"
set +e
SWIFTLET_FUZZ_SEEDS="$seeds" ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$bin" "$corpus" "$seeds" \
  -max_total_time="$seconds" -max_len="$max_len" -timeout=30 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
status=$?
set -e

execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
echo "fuzz: ${execs:-?} executions in ${seconds}s (${rate:-?}/s), ${cov:-cov: ?}, libFuzzer exit $status, crash artifacts: $crashes (in $artifacts)"
if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
  tail -40 "$log"
  exit 1
fi
