#!/usr/bin/env bash
# Fuzzes Swiftlet's parsers and tokenizers with libFuzzer (coverage-guided: the Swift sources are
# built with sanitizer coverage, see Fuzz/Package.swift), AddressSanitizer and LeakSanitizer, for
# a bounded time per target, and prints executions, edges, corpus size and crashes per target.
# Exit status 0 only when no target crashed, leaked, timed out or ran out of memory.
#
# Targets (Fuzz/Sources/SwiftletFuzz): gguf (GGUF reader + writer round trip), safetensors
# (safetensors, config.json, tokenizer.json), imatrix (llama-imatrix's GGUF and .dat files), bpe,
# spm, wordpiece (the three tokenizers on arbitrary text, special-token markup included), jinja
# (chat templates), grammar (GBNF, JSON Schema and regex to GBNF, the matcher), server (the OpenAI
# request bodies the server decodes).
#
# Seeds: Fuzz/Seeds/<target> (committed, small), plus for gguf the first 2 MiB of each real GGUF
# under $SWIFTLET_MODELS_DIR and synthetic files the target writes, for jinja the chat templates
# and for grammar the grammars and schemas of Tests/Fixtures. The corpus libFuzzer grows is kept
# under $FUZZ_CORPUS_DIR/corpus-<target> (default .build-fuzz) between runs.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#        (defaults: $FUZZ_SECONDS or 60, every target; $FUZZ_TARGETS may list targets too;
#        $FUZZ_BIN runs that binary instead of building; FUZZ_TRACE_CMP=0 builds without
#        comparison tracing, for long campaigns)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-${FUZZ_SECONDS:-60}}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"${FUZZ_TARGETS:-gguf safetensors imatrix bpe spm wordpiece jinja grammar server}"
export SWIFTLET_MODELS_DIR=${SWIFTLET_MODELS_DIR:-$root/Models/cache}
export SWIFTLET_FIXTURES_DIR=$root/Tests/Fixtures
work=$root/.build-fuzz
corpora=${FUZZ_CORPUS_DIR:-$work}

mkdir -p "$work"
if [ -n "${FUZZ_BIN:-}" ]; then
  bin=$FUZZ_BIN  # a copy made earlier, for long campaigns that must not see a rebuild
else
  echo "fuzz: building Fuzz/ (sanitizer coverage, AddressSanitizer)"
  # FUZZ_TRACE_CMP=0: the volume build without comparison tracing (Fuzz/Package.swift), kept apart.
  scratch=$work/build
  [ "${FUZZ_TRACE_CMP:-1}" = 0 ] && scratch=$work/build-notrace
  build=(env SWIFTLET_FUZZ_TRACE_CMP="${FUZZ_TRACE_CMP:-1}" swift build --package-path Fuzz -c release
         --sanitize=fuzzer --sanitize=address --scratch-path "$scratch" --product SwiftletFuzz)
  if ! "${build[@]}" >"$work/build.log" 2>&1; then
    grep -E "error|warning: unre" "$work/build.log" | head -20 >&2 || tail -20 "$work/build.log" >&2
    echo "fuzz: build failed (log $work/build.log)" >&2
    exit 2
  fi
  bin="$("${build[@]}" --show-bin-path)/SwiftletFuzz"
fi

max_len() {
  case $1 in
    gguf) echo 1048576 ;;       # real headers are ~1-2 MB (the tokenizer arrays)
    safetensors) echo 65536 ;;
    jinja) echo 20480 ;;        # the largest fixture template is 16.7 kB
    server) echo 16384 ;;
    # Tokenizers cost ~1.3 us per input byte instrumented (four passes: two encodes, two decodes),
    # so 4 kB inputs ran at a few hundred per second; 1 kB holds every special token and pre-
    # tokenizer rule many times over. Linear time on large texts is Tests/Hostile's job.
    bpe | spm | wordpiece) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

# malloc_context_size=0: AddressSanitizer records no stack for each allocation. Unwinding and
# storing Swift's deep stacks on every malloc took a fifth of each execution; errors and leaks are
# still caught, and the stacks come back when the saved input is run again without it:
#   ASAN_OPTIONS=malloc_context_size=30 SWIFTLET_FUZZ_TARGET=<target> <binary> <artifact>
failed=0
printf "fuzz: %-12s %12s %9s %8s %8s %8s  %s\n" target executions exec/s edges corpus crashes log
for target in "${targets[@]}"; do
  corpus=$corpora/corpus-$target seeds=$work/seeds-$target artifacts=$work/artifacts-$target
  log=$work/fuzz-$target.log
  rm -rf "$seeds"
  mkdir -p "$corpus" "$seeds" "$artifacts"
  [ -d "Fuzz/Seeds/$target" ] && cp Fuzz/Seeds/"$target"/* "$seeds"/
  if [ "$target" = gguf ]; then
    for f in "$SWIFTLET_MODELS_DIR"/*/*.gguf; do
      [ -f "$f" ] && head -c 2097152 "$f" >"$seeds/$(basename "$f" .gguf).head2m.gguf"
    done
  fi
  dict=()
  [ -f "Fuzz/Dictionaries/$target.dict" ] && dict=(-dict="Fuzz/Dictionaries/$target.dict")
  set +e
  SWIFTLET_FUZZ_TARGET=$target SWIFTLET_FUZZ_SEEDS="$seeds" \
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=1:malloc_context_size=0:${ASAN_OPTIONS:-}" \
    "$bin" "$corpus" "$seeds" "${dict[@]}" -max_total_time="$seconds" -max_len="$(max_len "$target")" \
      -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  status=$?
  set -e
  # (A run that died before its statistics leaves these empty; `|| true` keeps set -e quiet.)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  edges=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  corpus_size=$(find "$corpus" -type f | wc -l)
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  printf "fuzz: %-12s %12s %9s %8s %8s %8s  %s\n" "$target" "${execs:-?}" "${rate:-?}" "${edges:-?}" "$corpus_size" "$crashes" "$log"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ] || [ -z "$edges" ]; then
    echo "fuzz: $target failed (libFuzzer exit $status, artifacts in $artifacts):" >&2
    grep -E "ERROR|SUMMARY|Fatal error|fatal|==[0-9]+==" "$log" | head -20 >&2 || tail -40 "$log" >&2
    failed=1
  fi
done
exit $failed
