#!/usr/bin/env bash
# The demo study report: small, fast loose inputs on the data pack's models, then `calq report`.
#   stories260K (real, 260K parameters): 9 calibration sets in three groups (quality: TinyStories,
#     C4, punctuation, random tokens; content: ARC-Challenge, PIQA; language: eng/fra/zho FLORES),
#     statistics of each, GPTQ w4g32 / AWQ w4g32 / SmoothQuant W8A8 / naive W8A8 calibrated on
#     each, RTN w3/w4/w8 and GPTQ w3 for the bits axis; perplexity (TinyStories) and ARC/PIQA
#     accuracy of every model;
#   llama-tiny (synthetic: `calq synth`, random weights, 2 layers; stories260K's tokenizer):
#     the quality sets, GPTQ and naive W8A8, perplexity;
#   tiny OPT (random weights with a planted outlier channel 17, no tokenizer): statistics of
#     three random-token sets;
#   TinyStories-656K too, once calq loads it.
# Output: OUT/inputs/ (sets, statistics, runs, results) and OUT/report/ (the report).
# Usage: scripts/report_demo.sh [--out DIR] [--calq BIN] [--jobs N] [--keep]
#   --keep reuses finished steps from an earlier run in OUT/inputs (default: start fresh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/out/report-demo calq=$root/build/calq jobs=2 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --calq) calq=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--out DIR] [--calq BIN] [--jobs N] [--keep]" >&2; exit 2 ;;
  esac
done
export CALQ_DATA="${CALQ_DATA:-$root/../shared}" CALQ_PROGRESS=0 OMP_WAIT_POLICY=passive
D=$CALQ_DATA/data S=$CALQ_DATA/models/stories260K OPT=$CALQ_DATA/models/tiny/opt
I=$out/inputs
[ "$keep" = 1 ] || rm -rf "$I"
mkdir -p "$I"
# One calq command, quiet unless it fails (then its messages, and a FAILED mark for the end).
q() {
  local err; err=$(mktemp)
  if ! "$calq" -t 1 "$@" >/dev/null 2>"$err"; then
    echo "failed: calq $*" >&2; cat "$err" >&2; rm -f "$err"; touch "$I/FAILED"; return 1
  fi
  rm -f "$err"
}
# Runs "$@" in the background unless its output file ($1) exists (--keep), $jobs at a time.
step() {
  local target=$1; shift
  [ -e "$target" ] && return 0
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  ( "$@" ) &
}
N=16 T=128
EVAL=(--data "$D/tinystories/tinystories_val.txt" --ctx 128 --chunks 16)
TASKS=(--tasks arc_challenge,piqa --limit 32)
start=$SECONDS

# ---- calibration sets (stories260K's tokenizer; the TinyStories text is the file's second half,
# the evaluation windows come from its start)
ts_lines=$(wc -l < "$D/tinystories/tinystories_val.txt")
tail -n +$((ts_lines / 2)) "$D/tinystories/tinystories_val.txt" > "$I/tinystories_calib.txt"
declare -A build=(
  [tinystories]="text --source $I/tinystories_calib.txt --mode concat"
  [c4]="text --source $D/c4/c4_sample.jsonl --mode concat"
  [punct]="punct" [random]="random-tokens"
  [arc]="task --task arc_challenge" [piqa]="task --task piqa"
  [eng_Latn]="lang --lang eng_Latn" [fra_Latn]="lang --lang fra_Latn" [zho_Hans]="lang --lang zho_Hans")
sets=(tinystories c4 punct random arc piqa eng_Latn fra_Latn zho_Hans)
quality=(tinystories c4 punct random)
for s in "${sets[@]}"; do
  # shellcheck disable=SC2086
  [ -e "$I/$s.safetensors" ] || q calib build ${build[$s]} --tokenizer "$S" -n $N -T $T -o "$I/$s.safetensors"
done
for seed in 0 1 2; do
  [ -e "$I/opt_r$seed.safetensors" ] ||
    q calib build random-tokens --vocab 128 --seed $seed -n $N -T 32 -o "$I/opt_r$seed.safetensors"
done
[ -d "$I/synth" ] || q synth --preset llama-tiny --layers 2 -o "$I/synth"
models=(stories260K synth)
if "$calq" inspect "$CALQ_DATA/models/TinyStories-656K" >/dev/null 2>&1; then models+=(ts656K); fi
model_dir() { case $1 in stories260K) echo "$S" ;; synth) echo "$I/synth" ;; ts656K) echo "$CALQ_DATA/models/TinyStories-656K" ;; esac; }

# ---- statistics (batch 1: a convergence snapshot after 1, 2, 4, ... samples)
for s in "${sets[@]}"; do step "$I/stories260K_$s.stats.safetensors" q stats "$S" --calib "$I/$s.safetensors" -b 1 -q -o "$I/stories260K_$s.stats.safetensors"; done
for m in "${models[@]:1}"; do
  for s in "${quality[@]}"; do
    step "$I/${m}_$s.stats.safetensors" q stats "$(model_dir "$m")" --calib "$I/$s.safetensors" -b 1 -q \
      --allow-tokenizer-mismatch -o "$I/${m}_$s.stats.safetensors"
  done
done
for seed in 0 1 2; do step "$I/opt_r$seed.stats.safetensors" q stats "$OPT" --calib "$I/opt_r$seed.safetensors" -b 1 -q -o "$I/opt_r$seed.stats.safetensors"; done

# ---- quantized runs and their evaluations: run NAME MODEL METHOD-ARGS...
run() {
  local name=$1 m=$2; shift 2
  local dir; dir=$(model_dir "$m")
  local tok=(); [ "$m" = synth ] && tok=(--tokenizer "$S")
  # The sets hold stories260K's token ids; the other models take them as they are (as their stats do).
  local allow=(); [ "$m" = ts656K ] && allow=(--allow-tokenizer-mismatch)
  if [ "$name" != float ]; then q quantize "$dir" "$@" "${allow[@]}" -o "$I/q_${m}_$name"; dir=$I/q_${m}_$name; fi
  q eval ppl "$dir" "${tok[@]}" "${EVAL[@]}" -o "$I/ppl_${m}_$name.json"
  if [ "$m" = stories260K ]; then q eval tasks "$dir" "${TASKS[@]}" -o "$I/tasks_${m}_$name.json"; fi
}
for m in "${models[@]}"; do step "$I/ppl_${m}_float.json" run float "$m"; done
for s in "${sets[@]}"; do
  c=(--calib "$I/$s.safetensors")
  step "$I/ppl_stories260K_gptq_$s.json" run "gptq_$s" stories260K --method gptq --bits 4 --group-size 32 "${c[@]}"
  step "$I/ppl_stories260K_awq_$s.json" run "awq_$s" stories260K --method awq --bits 4 --group-size 32 "${c[@]}"
  step "$I/ppl_stories260K_sq_$s.json" run "sq_$s" stories260K --method smoothquant --alpha 0.5 "${c[@]}"
  step "$I/ppl_stories260K_w8a8_$s.json" run "w8a8_$s" stories260K --method naive-w8a8 "${c[@]}"
done
for b in 3 4 8; do step "$I/ppl_stories260K_rtn$b.json" run "rtn$b" stories260K --method rtn --bits $b --group-size 32; done
step "$I/ppl_stories260K_gptq3_tinystories.json" run gptq3_tinystories stories260K --method gptq --bits 3 --group-size 32 \
  --calib "$I/tinystories.safetensors"
for m in "${models[@]:1}"; do
  for s in "${quality[@]}"; do
    step "$I/ppl_${m}_gptq_$s.json" run "gptq_$s" "$m" --method gptq --bits 4 --group-size 32 --calib "$I/$s.safetensors"
    step "$I/ppl_${m}_w8a8_$s.json" run "w8a8_$s" "$m" --method naive-w8a8 --calib "$I/$s.safetensors"
  done
done
wait
if [ -e "$I/FAILED" ]; then echo "report_demo: a step failed (messages above)" >&2; exit 1; fi

# ---- the report
args=(--title "calq demo study: stories260K, a synthetic llama-tiny and tiny OPT" --synthetic synth --synthetic tiny-opt)
for s in "${sets[@]}"; do args+=(--stats "stories260K:$s=$I/stories260K_$s.stats.safetensors"); done
for m in "${models[@]:1}"; do for s in "${quality[@]}"; do args+=(--stats "$m:$s=$I/${m}_$s.stats.safetensors"); done; done
for seed in 0 1 2; do args+=(--stats "tiny-opt:random-s$seed=$I/opt_r$seed.stats.safetensors"); done
for f in "$I"/ppl_*.json "$I"/tasks_*.json; do
  b=$(basename "$f" .json); b=${b#*_}           # MODEL_NAME
  m=${b%%_*} name=${b#*_}
  case $name in
    float) args+=(--eval "$m:-=$f") ;;
    rtn*) args+=(--eval "$m:-=$f") ;;
    *) args+=(--eval "$m:${name#*_}=$f") ;;
  esac
done
"$calq" report -o "$out/report" "${args[@]}"
echo "demo inputs and report in $out ($((SECONDS - start)) s)"
