#!/usr/bin/env bash
# The package-benchmark suites of Benchmarks/ (QuantBenchmarks, ModelBenchmarks, TensorBenchmarks)
# with package-benchmark's baseline workflow — the performance-regression check.
#
#   scripts/bench-suite.sh                 run every suite, print the results
#   scripts/bench-suite.sh update NAME     run and store the results as baseline NAME
#                                          (under Benchmarks/.benchmarkBaselines, not committed)
#   scripts/bench-suite.sh check NAME      run and compare with baseline NAME: exit non-zero when a
#                                          p50 regresses beyond SWIFTLET_BENCH_TOLERANCE percent
#                                          (default 10; set in the suites' thresholds)
#   scripts/bench-suite.sh compare NAME    run and print the differences, never fail
#
# Environment: SWIFTLET_BENCH_SMOKE=1 for short runs, FILTER (a regex of benchmark names),
# TARGET (a regex of suite names), SWIFTLET_MODELS_DIR (the real models, Models/cache).
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"
export SWIFTLET_MODELS_DIR=${SWIFTLET_MODELS_DIR:-$(cd .. && pwd)/Models/cache}
args=(--no-progress)
[ -n "${FILTER:-}" ] && args+=(--filter "$FILTER")
[ -n "${TARGET:-}" ] && args+=(--target "$TARGET")
swift_pkg=(swift package --allow-writing-to-package-directory benchmark)

case "${1:-run}" in
    run) "${swift_pkg[@]}" "${args[@]}" ;;
    update) "${swift_pkg[@]}" baseline update "${2:?baseline name}" "${args[@]}" ;;
    compare) "${swift_pkg[@]}" baseline compare "${2:?baseline name}" "${args[@]}" ;;
    check)
        # Exit codes of package-benchmark: 0 equal, 2 regression, 4 improvements only.
        set +e
        "${swift_pkg[@]}" baseline check "${2:?baseline name}" "${args[@]}"
        status=$?
        set -e
        if [ "$status" -eq 4 ]; then echo "bench-suite: improvements only"; exit 0; fi
        exit "$status" ;;
    *) echo "usage: $0 [run | update NAME | check NAME | compare NAME]" >&2; exit 2 ;;
esac
