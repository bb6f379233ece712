#!/usr/bin/env bash
# Runs Swiftlet's tensor benchmarks (called by `make bench`).
#   Benchmarks/run.sh            side-by-side figures (tensor-bench) + package-benchmark suites
#   Benchmarks/run.sh --quick    side-by-side figures only
# Extra arguments after `--` go to `swift package benchmark` (e.g. `-- baseline update main`).
set -euo pipefail
cd "$(dirname "$0")"

quick=0
passthrough=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --) shift; passthrough=("$@"); break ;;
        *) echo "usage: $0 [--quick] [-- benchmark-plugin-args]" >&2; exit 2 ;;
    esac
    shift
done

swift build -c release --product tensor-bench
./.build/release/tensor-bench "${RUNS:-10}"

if [ "$quick" = 0 ]; then
    if [ ${#passthrough[@]} -eq 0 ]; then
        swift package --allow-writing-to-package-directory benchmark
    else
        swift package --allow-writing-to-package-directory benchmark "${passthrough[@]}"
    fi
fi
