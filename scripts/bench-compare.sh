#!/usr/bin/env bash
# Side-by-side speed of Swiftlet and llama.cpp's llama-bench on the same models, same arguments,
# runs alternating (peer, Swiftlet, Swiftlet, peer, …) so that machine load hits both alike.
#
#   scripts/bench-compare.sh LLAMA_BENCH [MODEL:THREADS ...]
#
# LLAMA_BENCH is the path of an already built llama-bench binary (nothing here builds it).
# Without MODEL:THREADS pairs: SmolLM2-135M Q4_1 at 1 and 2 threads, Gemma 3 270M Q4_K_M at 2.
# Environment: P (prompt tokens, 512), N (generated tokens, 128), R (repetitions, 3),
# ROUNDS (alternating rounds per configuration, 2), SWIFTLET (CLI path, .build-cli/release/swiftlet),
# SWIFTLET_MODELS_DIR (Models/cache). Prints a markdown table with the ratios, and keeps the raw
# JSON records under ${OUT:-.build/bench-compare}.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 /path/to/llama-bench [model.gguf:threads ...]" >&2
    exit 2
fi
PEER=$1; shift
MODELS=${SWIFTLET_MODELS_DIR:-$PWD/Models/cache}
SMOL=$MODELS/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf
GEMMA=$MODELS/gemma-3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf
if [ $# -eq 0 ]; then set -- "$SMOL:1" "$SMOL:2" "$GEMMA:2"; fi
P=${P:-512} N=${N:-128} R=${R:-3} ROUNDS=${ROUNDS:-2}
SWIFTLET=${SWIFTLET:-.build-cli/release/swiftlet}
OUT=${OUT:-.build/bench-compare}
mkdir -p "$OUT"
[ -x "$SWIFTLET" ] || swift build -c release --scratch-path .build-cli --product swiftlet >&2

run_peer() { "$PEER" -m "$1" -p "$P" -n "$N" -t "$2" -r "$R" -o json > "$3" 2> "$3.log"; }
run_ours() { "$SWIFTLET" bench -m "$1" -p "$P" -n "$N" -t "$2" -r "$R" -o json --no-extras > "$3" 2> "$3.log"; }

records=()
for config in "$@"; do
    model=${config%:*} threads=${config##*:}
    [ -f "$model" ] || { echo "missing model $model" >&2; exit 1; }
    for round in $(seq 1 "$ROUNDS"); do
        tag="$OUT/$(basename "$model" .gguf)-t$threads-r$round"
        echo "round $round: $(basename "$model") t=$threads (load: $(cut -d' ' -f1 /proc/loadavg))" >&2
        if [ $((round % 2)) -eq 1 ]; then
            run_peer "$model" "$threads" "$tag-peer.json"; run_ours "$model" "$threads" "$tag-swiftlet.json"
        else
            run_ours "$model" "$threads" "$tag-swiftlet.json"; run_peer "$model" "$threads" "$tag-peer.json"
        fi
        records+=("$tag-peer.json" "$tag-swiftlet.json")
    done
done

python3 - "${records[@]}" <<'PY'
import json, sys, collections
# (model, threads, test) -> {"peer": [avg_ts per round], "swiftlet": [...]}
rows = collections.OrderedDict()
for path in sys.argv[1:]:
    side = "peer" if path.endswith("-peer.json") else "swiftlet"
    with open(path) as f:
        for rec in json.load(f):
            test = f"pp{rec['n_prompt']}" if rec["n_gen"] == 0 else f"tg{rec['n_gen']}"
            key = (rec["model_filename"].split("/")[-1], rec["n_threads"], test)
            rows.setdefault(key, {"peer": [], "swiftlet": []})[side].append((rec["avg_ts"], rec["stddev_ts"]))
print("| model | threads | test | llama.cpp t/s | Swiftlet t/s | Swiftlet / llama.cpp |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for (model, threads, test), v in rows.items():
    def mean(xs): return sum(x for x, _ in xs) / len(xs) if xs else float("nan")
    def sd(xs): return sum(s for _, s in xs) / len(xs) if xs else float("nan")
    peer, ours = mean(v["peer"]), mean(v["swiftlet"])
    print(f"| {model} | {threads} | {test} | {peer:.2f} ± {sd(v['peer']):.2f} | {ours:.2f} ± {sd(v['swiftlet']):.2f} | {ours / peer:.2f}× |")
PY
