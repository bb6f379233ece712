#!/usr/bin/env bash
# The performance-regression gate (`make bench-gate`). Two gates, one verdict and exit code each:
#
#   scripts/bench-gate.sh [check]         deterministic gate: instruction counts under valgrind's
#                                         callgrind of the fixed single-threaded workloads of
#                                         Sources/SwiftletGateWorkloads against
#                                         Benchmarks/Baselines/gate-instructions.json. Exit 1 when a
#                                         workload grows more than BENCH_GATE_THRESHOLD percent
#                                         (default 1); improvements are reported, never fail.
#   scripts/bench-gate.sh update          same run, then rewrites the baseline (on request only)
#   scripts/bench-gate.sh wallclock [REF] wall-clock gate: builds REF (default origin/main, else
#                                         main) in a temporary worktree, then alternates baseline
#                                         and candidate runs of the timed workloads with same-run
#                                         references (OpenBLAS sgemm, streaming read, llama-bench
#                                         when LLAMA_BENCH names it); the Hodges-Lehmann time ratio
#                                         and its Wilcoxon interval decide, with more rounds while
#                                         a verdict is open. Exit 1 only when the interval lies
#                                         wholly above 1 + BENCH_GATE_WALL_THRESHOLD percent.
#   scripts/bench-gate.sh report [DIR]    renders the history as DIR/index.html (SVG trend charts)
#                                         and DIR/summary.md (for a pull request)
#
# Each check appends one JSON line per workload to BENCH_GATE_HISTORY (default
# .build/bench-gate/history.jsonl). Environment: BENCH_GATE_GROUPS (space-separated subset of
# `SwiftletGateWorkloads groups`), BENCH_GATE_JOBS (parallel valgrind processes, default 2),
# BENCH_GATE_ROUNDS (wall-clock A/B rounds always run, default 10), BENCH_GATE_MAX_ROUNDS (up to
# this many while a verdict is open, default 30), BENCH_GATE_CONFIDENCE (default 0.95),
# BENCH_GATE_WALL_GROUPS (default
# "wall-smollm2 wall-gemma3"), BENCH_GATE_REPEAT (timed runs per process, default 3),
# BENCH_GATE_BIN (count this already built SwiftletGateWorkloads instead of building),
# BENCH_GATE_BASE_DIR (where the baseline is built), BENCH_GATE_CLOCK (cpu: thread CPU time, the
# default; wall), BENCH_GATE_NORMALIZE=1 (verdict on reference-normalised ratios),
# SWIFTLET_GATE_INJECT (test-only slowdown: extra passes over each quantized activation row).
set -euo pipefail
# The whole script is one brace group, read before it runs: editing the file cannot change a run.
{
main() {
cd "$(dirname "$SCRIPT")/.."
export SWIFTLET_MODELS_DIR=${SWIFTLET_MODELS_DIR:-$PWD/Models/cache}
# Deterministic runs: one thread everywhere, Swift's per-process hash seed fixed.
export SWIFTLET_THREADS=1 OPENBLAS_NUM_THREADS=1 SWIFT_DETERMINISTIC_HASHING=1
MODE=${1:-check}
BASELINE=Benchmarks/Baselines/gate-instructions.json
HISTORY=${BENCH_GATE_HISTORY:-.build/bench-gate/history.jsonl}
WORK=.build/bench-gate
BIN=${BENCH_GATE_BIN:-.build-cli/release/SwiftletGateWorkloads}
mkdir -p "$WORK" "$(dirname "$HISTORY")"

build_workloads() {  # $1: package dir, $2: scratch path
    local log; log=$(mktemp)
    if ! swift build -c release --package-path "$1" --scratch-path "$2" --product SwiftletGateWorkloads > "$log" 2>&1; then
        tail -n 30 "$log" >&2; rm -f "$log"; exit 1
    fi
    rm -f "$log"
}

if [ ! -d "$SWIFTLET_MODELS_DIR/smollm2-135m-instruct-q4_1" ]; then
    echo "bench-gate: models missing in $SWIFTLET_MODELS_DIR (run make models)"
    [ "${SWIFTLET_REQUIRE_MODELS:-}" = 1 ] && exit 1
    exit 0
fi

case "$MODE" in
check|update)
    command -v valgrind >/dev/null || { echo "bench-gate: valgrind missing (scripts/install-deps.sh installs it)"; exit 1; }
    [ -n "${BENCH_GATE_BIN:-}" ] || build_workloads . .build-cli
    run=$WORK/run.$$
    rm -rf "$run" && mkdir -p "$run"
    trap 'rm -rf "$run"' EXIT
    # valgrind 3.19 cannot read the DWARF 5 of Swift binaries; the symbol table is enough.
    strip --strip-debug -o "$run/SwiftletGateWorkloads" "$BIN"
    groups=${BENCH_GATE_GROUPS:-$("$BIN" groups | grep -v '^wall-' | tr '\n' ' ')}
    start=$(date +%s)
    echo "bench-gate: callgrind on ${groups}(${BENCH_GATE_JOBS:-2} at a time)" >&2
    printf '%s\n' $groups | xargs -P "${BENCH_GATE_JOBS:-2}" -I{} sh -c \
        'valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no --toggle-collect=swiftlet_gate_measured \
           --dump-after=swiftlet_gate_measured --callgrind-out-file="$1/{}.cg.%p" \
           "$1/SwiftletGateWorkloads" run {} > "$1/{}.out" 2> "$1/{}.err" || { echo "bench-gate: group {} failed:" >&2; tail -n 20 "$1/{}.err" >&2; exit 255; }' \
        _ "$run"
    echo "bench-gate: callgrind took $(( $(date +%s) - start )) s" >&2
    python3 scripts/bench_gate.py instructions --run "$run" --groups "$groups" --baseline "$BASELINE" \
        --threshold "${BENCH_GATE_THRESHOLD:-1}" --history "$HISTORY" --mode "$MODE" \
        ${BENCH_GATE_GROUPS:+--partial}
    ;;
wallclock)
    ref=${2:-}
    if [ -z "$ref" ]; then
        ref=main; git rev-parse -q --verify origin/main >/dev/null && ref=origin/main
    fi
    base_sha=$(git rev-parse "$ref^{commit}")
    base_dir=${BENCH_GATE_BASE_DIR:-${TMPDIR:-/tmp}/swiftlet-gate-base-$base_sha}
    if [ ! -x "$base_dir/.build/release/SwiftletGateWorkloads" ]; then
        [ -d "$base_dir/src" ] || git worktree add --detach "$base_dir/src" "$base_sha" >/dev/null
        echo "bench-gate: building the baseline $ref ($base_sha) in $base_dir" >&2
        build_workloads "$base_dir/src" "$base_dir/.build"
    fi
    build_workloads . .build-cli
    python3 scripts/bench_gate.py wallclock --baseline-bin "$base_dir/.build/release/SwiftletGateWorkloads" \
        --candidate-bin "$BIN" --base-ref "$ref@${base_sha:0:10}" --rounds "${BENCH_GATE_ROUNDS:-10}" \
        --max-rounds "${BENCH_GATE_MAX_ROUNDS:-30}" --confidence "${BENCH_GATE_CONFIDENCE:-0.95}" \
        --groups "${BENCH_GATE_WALL_GROUPS:-wall-smollm2 wall-gemma3}" --repeat "${BENCH_GATE_REPEAT:-3}" \
        --clock "${BENCH_GATE_CLOCK:-cpu}" ${BENCH_GATE_NORMALIZE:+--normalize} \
        --threshold "${BENCH_GATE_WALL_THRESHOLD:-5}" --history "$HISTORY" ${LLAMA_BENCH:+--llama-bench "$LLAMA_BENCH"}
    ;;
report)
    python3 scripts/bench_gate.py report --history "$HISTORY" --out "${2:-$WORK/report}"
    ;;
*)
    sed -n '2,30p' "$SCRIPT"; exit 2 ;;
esac
}
SCRIPT=$0
main "$@"
exit $?
}
