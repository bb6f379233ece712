#!/usr/bin/env bash
# Issue 11's KLD bar: quantize a full-precision GGUF to each type with `swiftlet quantize`, then
# measure every quantized file twice against the full-precision model on the same text —
# `swiftlet perplexity --kl-divergence` and llama.cpp's `llama-perplexity --kl-divergence`, each
# against the base log-probabilities its own tool stored — and print a markdown table of mean
# PPL(Q) and mean KLD side by side with their relative differences.
#
# usage: scripts/kld-compare.sh SOURCE-F32.gguf TEXT OUTDIR [CTX] [CHUNKS]
# env:   LLAMA_BIN   folder holding llama-perplexity (required; not part of this repository)
#        SWIFTLET    the swiftlet binary (default .build-cli/release/swiftlet)
#        TYPES       space-separated types (default: the ten types of the bar)
#        THREADS     threads for both tools (default 2)
#        FA          flash attention for both tools, on or off (default off)
#        LLAMA_ARGS  extra llama-perplexity arguments (default none; e.g. -nr: no weight repacking,
#                    which also sets SWIFTLET_NO_REPACK=1 so Swiftlet follows that order)
# Files already in OUTDIR are reused, so an interrupted run continues where it stopped.
set -euo pipefail

src=${1:?source GGUF}; text=${2:?text file}; out=${3:?output folder}
ctx=${4:-512}; chunks=${5:-4}
: "${LLAMA_BIN:?set LLAMA_BIN to the folder holding llama-perplexity}"
swiftlet=${SWIFTLET:-.build-cli/release/swiftlet}
types=${TYPES:-Q4_0 Q5_1 Q8_0 Q2_K Q3_K_M Q4_K_M Q5_K_S Q6_K IQ4_NL IQ4_XS}
threads=${THREADS:-2}
fa=${FA:-off}
read -r -a llama_args <<< "${LLAMA_ARGS:-}"
for a in "${llama_args[@]}"; do
    case "$a" in -nr|--no-repack) export SWIFTLET_NO_REPACK=1 ;; esac
done
mkdir -p "$out"

llama() {  # llama-perplexity with the common settings; the batch is one chunk
    "$LLAMA_BIN/llama-perplexity" -c "$ctx" -b "$ctx" -t "$threads" -fa "$fa" "${llama_args[@]}" "$@"
}

if [ ! -s "$out/base.swiftlet.log" ]; then
    echo "base log-probabilities: swiftlet" >&2
    "$swiftlet" perplexity -m "$src" -f "$text" -c "$ctx" --chunks "$chunks" -t "$threads" -fa "$fa" \
        --kl-divergence-base "$out/base.swiftlet.kld" > "$out/base.swiftlet.log.tmp" 2>/dev/null
    mv "$out/base.swiftlet.log.tmp" "$out/base.swiftlet.log"
fi
if [ ! -s "$out/base.llama.log" ]; then
    echo "base log-probabilities: llama-perplexity" >&2
    llama -m "$src" -f "$text" --chunks "$chunks" --kl-divergence-base "$out/base.llama.kld" \
        > "$out/base.llama.log.tmp" 2>&1
    mv "$out/base.llama.log.tmp" "$out/base.llama.log"
fi

for t in $types; do
    q="$out/$t.gguf"
    [ -s "$q" ] || { echo "quantize $t" >&2; "$swiftlet" quantize "$src" "$q" "$t" "$threads" 2>/dev/null; }
    if [ ! -s "$out/$t.swiftlet.log" ]; then
        echo "$t: swiftlet --kl-divergence" >&2
        "$swiftlet" perplexity -m "$q" -c "$ctx" -t "$threads" -fa "$fa" --kl-divergence-base "$out/base.swiftlet.kld" \
            --kl-divergence > "$out/$t.swiftlet.log.tmp" 2>/dev/null
        mv "$out/$t.swiftlet.log.tmp" "$out/$t.swiftlet.log"
    fi
    if [ ! -s "$out/$t.llama.log" ]; then
        echo "$t: llama-perplexity --kl-divergence" >&2
        llama -m "$q" --kl-divergence-base "$out/base.llama.kld" --kl-divergence > "$out/$t.llama.log.tmp" 2>&1
        mv "$out/$t.llama.log.tmp" "$out/$t.llama.log"
    fi
done

# The figures printed by both tools in llama-perplexity's format.
field() { grep -a "$2" "$1" | tail -n 1 | sed -E 's/.*: *//; s/ *±.*//; s/ *%.*//'; }
reldiff() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "–"; else printf "%+.4f %%", 100 * (a - b) / b }'; }

{
    echo "Source \`$(basename "$src")\`, text \`$(basename "$text")\`, -c $ctx, $chunks chunks, $threads threads;" \
         "-fa $fa, llama-perplexity ${llama_args[*]:-(no extra flags)}; each tool against its own base file." \
         "Base PPL: Swiftlet $(grep -a 'Final estimate' "$out/base.swiftlet.log" | sed 's/.*PPL = //; s/ +.*//')," \
         "llama.cpp $(grep -a 'Final estimate' "$out/base.llama.log" | sed 's/.*PPL = //; s/ +.*//')."
    echo
    echo "| type | MiB | PPL(Q) Swiftlet | PPL(Q) llama.cpp | Δ | mean KLD Swiftlet | mean KLD llama.cpp | Δ | same top p S / L |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in $types; do
        s="$out/$t.swiftlet.log"; l="$out/$t.llama.log"
        ps=$(field "$s" 'Mean PPL(Q) '); pl=$(field "$l" 'Mean PPL(Q) ')
        ks=$(field "$s" 'Mean    KLD'); kl=$(field "$l" 'Mean    KLD')
        ts=$(field "$s" 'Same top p'); tl=$(field "$l" 'Same top p')
        mib=$(awk -v b="$(stat -L -c %s "$out/$t.gguf")" 'BEGIN { printf "%.1f", b / 1048576 }')
        echo "| $t | $mib | $ps | $pl | $(reldiff "$ps" "$pl") | $ks | $kl | $(reldiff "$ks" "$kl") | $ts / $tl % |"
    done
} | tee "$out/table.md"
