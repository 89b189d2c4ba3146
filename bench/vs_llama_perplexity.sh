#!/usr/bin/env bash
# Side-by-side perplexity throughput: `calq eval ppl` against llama.cpp's `llama-perplexity` on
# the same model (a synthetic llama-1b, bf16 storage: `calq synth`, exported to GGUF by
# `calq export --format gguf`), the same WikiText-2 test text, the same ctx, chunk count and
# thread count, one engine after the other (docs/performance.md, "Evaluation throughput").
#
# Protocol: calq runs `--protocol llama.cpp`, the protocol llama-perplexity implements: the first
# token of every window is BOS, the logits of the second half are scored (ctx - 1 - ctx/2
# predictions per window). Both feed chunks * ctx tokens through the whole model.
#
# Reported per engine: "scoring tok/s" = tokens fed / time of the evaluation passes (calq: the
# results file's scoring_s: the forward passes, the weights being packed at load; llama.cpp: its
# "prompt eval time"), "process tok/s" = tokens fed / wall time of the whole command (load,
# tokenization, scoring), and "t/cpu-s" = tokens fed / CPU seconds of the whole command (user +
# system, all threads: robust to other load at -t 1; at -t 2 llama.cpp's spinning threads count
# too). Ratios = calq / llama.cpp.
#
# Usage: bench/vs_llama_perplexity.sh LLAMA_BIN_DIR [TYPES] [CHUNKS] [CTX] [THREADS]
#   LLAMA_BIN_DIR  folder with llama-perplexity (and llama-quantize); env LLAMA_BIN works too.
#                  Absent: prints a message and exits 0 (nothing to compare against).
#   TYPES          comma list of bf16, f32, q8_0, q4_0 (default bf16). bf16: calq --bf16 on the
#                  safetensors model vs the BF16 GGUF; f32: calq f32 vs the F32 GGUF; q8_0/q4_0:
#                  calq --bf16 on the GGUF itself (packed quantized weights) vs the same file.
#   CHUNKS=8 CTX=512 THREADS=2.  Env: CALQ_BUILD (default build/), WORK (default out/vs-llama-perplexity
#   in the checkout, git-ignored, kept between runs so the model is built once; ~7 GB for bf16+f32), CALQ_BATCH
#   (calq's --batch; default: calq's own), REPS (default 1: each engine REPS times, alternating),
#   CALQ_BASELINE (a second calq build folder, e.g. of the main branch: run too, before calq, in
#   every rep, and reported as "calq-base" with its own ratios, for before/after figures from one run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
llama=${1:-${LLAMA_BIN:-}}
types=${2:-bf16}
chunks=${3:-8}
ctx=${4:-512}
threads=${5:-2}
reps=${REPS:-1}
if [ -z "$llama" ] || [ ! -x "$llama/llama-perplexity" ]; then
  echo "vs_llama_perplexity: no llama-perplexity in '${llama}' (give llama.cpp's bin folder as the first argument or LLAMA_BIN); skipped"
  exit 0
fi
build=${CALQ_BUILD:-$root/build}
baseline=${CALQ_BASELINE:-}
[ -n "$baseline" ] && baseline=$(cd "$baseline" && pwd)
calq="$build/calq"
data=${CALQ_DATA:-$root/../shared}
text="$data/data/wikitext-2-raw/wiki.test.raw"
work=${WORK:-$root/out/vs-llama-perplexity}
mkdir -p "$work"
# absolute paths, then run inside $work (llama-perplexity writes llama.log into its working folder)
llama=$(cd "$llama" && pwd) build=$(cd "$build" && pwd) data=$(cd "$data" && pwd) work=$(cd "$work" && pwd)
calq="$build/calq" text="$data/data/wikitext-2-raw/wiki.test.raw"
cd "$work"
export CALQ_PROGRESS=0

model="$work/llama-1b"
if [ ! -f "$model/model.safetensors" ]; then
  rm -rf "$model"
  "$calq" synth --preset llama-1b --dtype bf16 -o "$model" >/dev/null
  cp "$data/tokenizers/llama2/tokenizer.json" "$data/tokenizers/llama2/tokenizer_config.json" "$model/"
fi
gguf() {  # the GGUF of type $1, exported once
  local f="$work/llama-1b-$1.gguf"
  [ -f "$f" ] || "$calq" export "$model" --format gguf --type "$1" --pure -o "$f" >/dev/null
  echo "$f"
}

# runs a command (its output in $work/out) and sets $wall_s and $cpu_s (user + system seconds of
# the process and its threads: on a busy machine the fairer measure at -t 1)
timed() {
  local TIMEFORMAT='%R %U %S' tm
  { tm=$( { time "$@" >"$work/out" 2>&1; } 2>&1 ); } || { cat "$work/out" >&2; exit 1; }
  wall_s=$(echo "$tm" | awk '{ printf "%.2f", $1 }')
  cpu_s=$(echo "$tm" | awk '{ printf "%.2f", $2 + $3 }')
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

tokens=$((chunks * ctx))
echo "calq vs llama-perplexity: llama-1b synthetic, WikiText-2 test, ctx $ctx, $chunks chunks ($tokens tokens fed), -t $threads"
printf '%-6s %-10s %9s %9s %9s %12s %12s %12s %s\n' type engine ppl wall_s cpu_s "scoring t/s" "process t/s" \
  "t/cpu-s" "load before/after"
IFS=, read -r -a list <<<"$types"
for t in "${list[@]}"; do
  case "$t" in
    bf16) cm="$model" cflags=(--bf16) gf=$(gguf bf16) ;;
    f32) cm="$model" cflags=() gf=$(gguf f32) ;;
    q8_0 | q4_0) gf=$(gguf "$t") cm="$gf" cflags=(--bf16 --tokenizer "$model") ;;
    *) echo "unknown type $t (bf16, f32, q8_0, q4_0)" >&2; exit 2 ;;
  esac
  batch=()
  [ -n "${CALQ_BATCH:-}" ] && batch=(--batch "$CALQ_BATCH")
  for r in $(seq 1 "$reps"); do
    engines=()
    [ -n "$baseline" ] && engines+=("calq-base:$baseline/calq")
    engines+=("calq:$calq")
    for e in "${engines[@]}"; do
      name=${e%%:*} bin=${e#*:}
      l0=$(cut -d' ' -f1 /proc/loadavg)
      timed "$bin" -t "$threads" eval ppl "$cm" "${cflags[@]}" "${batch[@]}" --data "$text" --ctx "$ctx" \
        --chunks "$chunks" --protocol llama.cpp --out "$work/calq.json"
      l1=$(cut -d' ' -f1 /proc/loadavg)
      cp=$(grep -o '"ppl": *[0-9.e+-]*' "$work/calq.json" | head -1 | sed 's/.*: *//')
      cs=$(grep -o '"scoring_s": *[0-9.e+-]*' "$work/calq.json" | sed 's/.*: *//')
      ct=$(div "$tokens" "$cs")
      cw=$(div "$tokens" "$wall_s")
      cc=$(div "$tokens" "$cpu_s")
      printf '%-6s %-10s %9.2f %9.1f %9.1f %12s %12s %12s %s\n' "$t" "$name" "$cp" "$wall_s" "$cpu_s" "$ct" "$cw" "$cc" "$l0/$l1"
      rm -f "$work/calq.json"
      [ "$name" = calq-base ] && bt=$ct bw=$cw bc=$cc
    done

    l0=$(cut -d' ' -f1 /proc/loadavg)
    timed "$llama/llama-perplexity" -m "$gf" -f "$text" -c "$ctx" --chunks "$chunks" -t "$threads"
    l1=$(cut -d' ' -f1 /proc/loadavg)
    lp=$(grep -o 'Final estimate: PPL = [0-9.]*\|PPL over [0-9]* chunks for n_ctx=[0-9]* = [0-9.]*' "$work/out" |
      tail -1 | sed 's/.*= *//')
    # "prompt eval time =  136239.37 ms /  4096 tokens"
    lms=$(grep 'prompt eval time' "$work/out" | tail -1 | sed 's/.*= *\([0-9.]*\) ms.*/\1/')
    lt=$(div "$((tokens * 1000))" "$lms")
    lw=$(div "$tokens" "$wall_s")
    lc=$(div "$tokens" "$cpu_s")
    printf '%-6s %-10s %9.2f %9.1f %9.1f %12s %12s %12s %s\n' "$t" llama.cpp "$lp" "$wall_s" "$cpu_s" "$lt" "$lw" "$lc" "$l0/$l1"
    [ -n "$baseline" ] &&
      echo "$t ratio calq-base/llama.cpp: scoring $(div "$bt" "$lt")x, process $(div "$bw" "$lw")x, per CPU-second $(div "$bc" "$lc")x"
    echo "$t ratio calq/llama.cpp: scoring $(div "$ct" "$lt")x, process $(div "$cw" "$lw")x, per CPU-second $(div "$cc" "$lc")x"
  done
done
