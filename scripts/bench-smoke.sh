#!/usr/bin/env bash
# CI's short performance smoke (`make bench-smoke`) on SmolLM2-135M Q4_1, checked against the
# committed baseline Benchmarks/Baselines/smoke.json: `swiftlet bench` pp64 and tg32, tg16 at
# depth 512 over an f16 and over a q8_0 cache (flash attention on), and `swiftlet batched-bench`
# decoding 4 sequences together.
#
#   scripts/bench-smoke.sh            run and check: exit 1 when a test's t/s falls more than
#                                     BENCH_TOLERANCE percent (default 50) below the baseline, or
#                                     the peak RSS exceeds file + KV cache + 64 MiB
#   scripts/bench-smoke.sh --update   run and rewrite the baseline (do it on a quiet machine)
#
# Uses the release CLI of `make build` (.build-cli) (built here if missing); about 20 s after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${SWIFTLET_MODELS_DIR:-$PWD/Models/cache}
MODEL=$MODELS/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf
BASELINE=Benchmarks/Baselines/smoke.json
SWIFTLET=${SWIFTLET:-.build-cli/release/swiftlet}
TOLERANCE=${BENCH_TOLERANCE:-50}

if [ ! -f "$MODEL" ]; then
    echo "bench-smoke: $MODEL missing (run make models)"
    [ "${SWIFTLET_REQUIRE_MODELS:-}" = 1 ] && exit 1
    exit 0
fi
[ -x "$SWIFTLET" ] || swift build -c release --scratch-path .build-cli --product swiftlet
out=$(mktemp); depth=$(mktemp); batched=$(mktemp)
trap 'rm -f "$out" "$depth" "$batched"' EXIT
"$SWIFTLET" bench -m "$MODEL" -p 64 -n 32 -t 2 -r 3 -o json > "$out"
"$SWIFTLET" bench -m "$MODEL" -p 0 -n 16 -d 512 -t 2 -r 3 -o jsonl > "$depth"
"$SWIFTLET" bench -m "$MODEL" -p 0 -n 16 -d 512 -t 2 -r 3 -ctk q8_0 -ctv q8_0 -fa 1 -o jsonl >> "$depth"
"$SWIFTLET" batched-bench -m "$MODEL" -npp 32 -ntg 16 -npl 4 -t 2 -o jsonl > "$batched"

python3 - "$out" "$BASELINE" "$TOLERANCE" "${1:-}" "$depth" "$batched" <<'PY'
import json, sys
run_path, baseline_path, tolerance, mode, depth_path, batched_path = sys.argv[1:7]
tolerance = float(tolerance)
records = json.load(open(run_path))
records += [json.loads(l) for l in open(depth_path) if l.strip()]
def key(r):
    name = 'pp%d' % r['n_prompt'] if r['n_gen'] == 0 else 'tg%d' % r['n_gen']
    if r.get('n_depth', 0): name += ' @ d%d' % r['n_depth']
    if r.get('type_k', 'f16') != 'f16' or r.get('type_v', 'f16') != 'f16': name += ' %s/%s' % (r['type_k'], r['type_v'])
    return f"{name} t{r['n_threads']}"
current = {key(r): r for r in records}
for l in open(batched_path):
    if not l.strip(): continue
    b = json.loads(l)   # llama-batched-bench's jsonl fields; speed = all tokens over the whole time
    current[f"batched {b['pl']}x(pp{b['pp']}+tg{b['tg']}) t{b['n_threads']}"] = {"avg_ts": b["speed"], "stddev_ts": 0.0}
failures = []
for k, r in current.items():
    extra = ""
    if "bandwidth_bound_fraction" in r:
        extra = f"  ({100 * r['bandwidth_bound_fraction']:.1f}% of the bandwidth bound)"
    print(f"bench-smoke: {k}: {r['avg_ts']:.2f} ± {r['stddev_ts']:.2f} t/s{extra}")
first = records[0]
if "peak_rss_bytes" in first:
    peak, bound = first["peak_rss_bytes"], first["peak_rss_bound_bytes"]
    print(f"bench-smoke: load → first token {first['load_to_first_token_ms']:.1f} ms, "
          f"peak RSS {peak / 2**20:.1f} MiB (bound {bound / 2**20:.1f} MiB)")
    if peak > bound:
        failures.append(f"peak RSS {peak / 2**20:.1f} MiB over the bound {bound / 2**20:.1f} MiB")
if mode == "--update":
    if failures: print("bench-smoke: " + "; ".join(failures)); sys.exit(1)
    json.dump({k: {"avg_ts": r["avg_ts"], "stddev_ts": r["stddev_ts"]} for k, r in current.items()},
              open(baseline_path, "w"), indent=2, sort_keys=True)
    print(f"bench-smoke: baseline written to {baseline_path}")
    sys.exit(0)
try:
    baseline = json.load(open(baseline_path))
except FileNotFoundError:
    print(f"bench-smoke: no baseline at {baseline_path}; run with --update"); sys.exit(0)
for k, b in baseline.items():
    if k not in current:
        failures.append(f"{k} missing from the run"); continue
    ratio = current[k]["avg_ts"] / b["avg_ts"]
    verdict = "REGRESSION" if ratio < 1 - tolerance / 100 else "ok"
    print(f"bench-smoke: {k}: {ratio:.2f}× baseline ({b['avg_ts']:.2f} t/s) {verdict}")
    if verdict != "ok":
        failures.append(f"{k} at {ratio:.2f}× baseline (tolerance {tolerance:.0f}%)")
if failures:
    print("bench-smoke: FAILED: " + "; ".join(failures)); sys.exit(1)
print("bench-smoke: ok")
PY
