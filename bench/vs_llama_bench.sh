#!/usr/bin/env bash
# calq's runtime benchmark (bench_runtime) and llama.cpp's llama-bench on the same model, one run,
# side by side: prefill pp512 and decode tg128, 2 threads, on the synthetic 1.1 B Llama shape.
#
# Usage: bench/vs_llama_bench.sh [LLAMA_BIN_DIR]
#   LLAMA_BIN_DIR   folder with llama-bench (llama.cpp or ik_llama.cpp build/bin); without it, or
#                   when it has no llama-bench, only calq's rows are measured.
# Environment: CALQ_BUILD (default build/: calq, bench_runtime), WORK (default
#   out/vs-llama-bench in the checkout, git-ignored: the models, ~13 GB), THREADS (2), PRESET (llama-1b), LAYERS (the preset's),
#   REPS (2).
#
# The models are made once (reused when present): `calq synth` (bf16 storage, Llama-2 tokenizer)
# and the same shape stored f16 (run at f32 compute, as an f16 Hugging Face checkpoint runs; beside
# llama-bench on its F16 GGUF), GGUF f32 / bf16 / Q4_0 / Q8_0 exports of the bf16 one (`calq
# export --format gguf`: both engines read these files; the Q4_0 file has a Q8_0 output matrix,
# calq export's default for 4-bit types), a W4 g128 RTN quantization exported in the GPTQ layout,
# and a naive W8A8 quantization state (per-token int8 activations). calq loads each through
# load_model(), as `calq eval` / `calq generate` do; the Q4_0 and Q8_0 files run twice, with bf16
# activations (the default) and with int8 activations in blocks of 32 (`--int8-acts`: llama.cpp's
# arithmetic for them), both beside llama-bench's row.
set -euo pipefail

LLAMA_BIN=${1:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${CALQ_BUILD:-$ROOT/build}
WORK=${WORK:-$ROOT/out/vs-llama-bench}
THREADS=${THREADS:-2}
PRESET=${PRESET:-llama-1b}
REPS=${REPS:-2}
CALQ=$BUILD/calq
TOK=${CALQ_DATA:-$ROOT/../shared}/tokenizers/llama2
for b in "$CALQ" "$BUILD/bench_runtime"; do
  [[ -x $b ]] || { echo "vs_llama_bench: $b not built (cmake --build build --target calq_cli bench_runtime)" >&2; exit 2; }
done
mkdir -p "$WORK"
S=$WORK/$PRESET
layers=()
[[ -n ${LAYERS:-} ]] && layers=(--layers "$LAYERS")

# ---- models (made once) ----
if [[ ! -f $S/config.json ]]; then
  "$CALQ" synth --preset "$PRESET" --dtype bf16 "${layers[@]}" --tokenizer "$TOK" -o "$S"
fi
for t in f32 bf16 q4_0 q8_0; do
  [[ -f $S-$t.gguf ]] || "$CALQ" export "$S" --format gguf --type "$t" -o "$S-$t.gguf"
done
S16=$S-f16
[[ -f $S16/config.json ]] || "$CALQ" synth --preset "$PRESET" --dtype f16 "${layers[@]}" --tokenizer "$TOK" -o "$S16"
[[ -f $S-f16.gguf ]] || "$CALQ" export "$S16" --format gguf --type f16 -o "$S-f16.gguf"
if [[ ! -f $WORK/w4g128/gptq/config.json ]]; then
  "$CALQ" quantize "$S" --method rtn --bits 4 --group-size 128 --format gptq --no-fake -o "$WORK/w4g128"
fi
if [[ ! -f $WORK/w8a8/qstate/state.json ]]; then
  [[ -f $WORK/calib.safetensors ]] ||
    "$CALQ" calib build random-tokens --tokenizer "$S" -n 8 -T 128 -o "$WORK/calib.safetensors"
  "$CALQ" quantize "$S" --method naive-w8a8 --calib "$WORK/calib.safetensors" --no-fake -o "$WORK/w8a8"
fi

# ---- one run: calq, then llama-bench ----
echo "== $(date -u +%FT%TZ), $(nproc) CPUs, loadavg before: $(cat /proc/loadavg)"
# OpenMP workers sleep when idle (OMP_WAIT_POLICY=passive), as in `calq` itself (docs/performance.md,
# "Threads on a shared machine"): spinning workers of a 2-thread decode step fight any other load.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} "$BUILD/bench_runtime" --threads "$THREADS" --reps "$REPS" --tokens 512 --gen 128 \
  --row "f32=$S@f32" --row "f16=$S16@f32" --row "bf16=$S" --row "W4 g128 (GPTQ)=$WORK/w4g128/gptq" \
  --row "Q4_0=$S-q4_0.gguf" --row "Q8_0=$S-q8_0.gguf" --row "W8A8=$WORK/w8a8/qstate" \
  --row "Q4_0 int8-acts=$S-q4_0.gguf@int8" --row "Q8_0 int8-acts=$S-q8_0.gguf@int8" | tee "$WORK/calq.md"
echo "== loadavg after calq: $(cat /proc/loadavg)"

if [[ -z $LLAMA_BIN || ! -x $LLAMA_BIN/llama-bench ]]; then
  echo "vs_llama_bench: no llama-bench given (arg 1: a llama.cpp build/bin folder); calq's rows only."
  exit 0
fi
: > "$WORK/llama.txt"; : > "$WORK/llama.md"
for t in f32 f16 bf16 q4_0 q8_0; do
  # Markdown output: the last two columns are the test (pp512, tg128) and "t/s ± stddev".
  "$LLAMA_BIN/llama-bench" -m "$S-$t.gguf" -p 512 -n 128 -t "$THREADS" -r "$REPS" -o md 2>/dev/null | tee -a "$WORK/llama.md" |
    awk -F"|" -v t="$t" 'NF > 3 && $(NF - 2) ~ /(pp|tg)[0-9]/ { test = $(NF - 2); gsub(/ /, "", test); split($(NF - 1), v, " ");
      print t, test, v[1] }' >> "$WORK/llama.txt"
done
echo "== loadavg after llama-bench: $(cat /proc/loadavg)"

# ---- side by side: calq's rows (bench_runtime's "| name | pp512 | ... | tg128 | ..." table) ----
echo
echo "| weights | calq pp512 tok/s | llama-bench pp512 tok/s | calq tg128 tok/s | llama-bench tg128 tok/s |"
echo "|---|---|---|---|---|"
awk -F'|' -v res="$WORK/llama.txt" '
  BEGIN { while ((getline l < res) > 0) { split(l, f, " "); if (f[2] ~ /^pp/) pp[f[1]] = f[3]; else tg[f[1]] = f[3] } }
  /^\| [^|]+ \| [0-9.]+ \| / { name = $2; gsub(/^ +| +$/, "", name); key = tolower(name); sub(/ .*/, "", key);
    k = (key == "q4_0" || key == "q8_0" || key == "f32" || key == "f16" || key == "bf16") ? key : "";
    printf "| %s | %s | %s | %s | %s |\n", name, $3 + 0, (k in pp) ? pp[k] : "-", $7 + 0, (k in tg) ? tg[k] : "-" }' \
  "$WORK/calq.md"
