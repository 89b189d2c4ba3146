#!/usr/bin/env bash
# The main job on the bundled example (README "Set up"): build calq, then run the study's
# pipeline on stories260K, a real 260K-parameter Llama model from the data pack:
#   calibration sets (TinyStories text, C4 web text, random punctuation, random tokens, French
#   FLORES, ARC-Challenge) -> activation statistics, outliers, set comparison -> GPTQ 4-bit g32
#   quantization with each set (and RTN as the calibration-free baseline) -> perplexity and
#   KL divergence against the float model, as one table.
# Results land in out/quickstart/ (JSON per step). Data: $CALQ_DATA, default ../shared.
# Usage: scripts/quickstart.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
export CALQ_DATA="${CALQ_DATA:-../shared}"
if [ "${1:-}" != "--no-build" ]; then
  bash scripts/deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc)" --target calq_cli
fi
calq=build/calq
M="$CALQ_DATA/models/stories260K"
D="$CALQ_DATA/data"
O=out/quickstart
mkdir -p "$O"
rm -rf "$O"/q_*  # quantization runs resume from their state; start this demo fresh
export CALQ_PROGRESS=0
N=64 T=256              # calibration: 64 samples x 256 tokens per set
EVAL=(--data "$D/tinystories/tinystories_val.txt" --ctx 512 --chunks 32)

echo "== model"
$calq inspect "$M" | head -8

echo "== calibration sets ($N x $T tokens each)"
# TinyStories calibration text: the second half of the file, so that it cannot overlap the
# evaluation windows (the first 32 x 512 tokens, about the first tenth of the file).
ts_lines=$(wc -l < "$D/tinystories/tinystories_val.txt")
tail -n +$((ts_lines / 2)) "$D/tinystories/tinystories_val.txt" > "$O/tinystories_calib.txt"
$calq calib build text  --tokenizer "$M" --source "$O/tinystories_calib.txt" -n $N -T $T -o "$O/tinystories.safetensors" >/dev/null 2>&1
$calq calib build text  --tokenizer "$M" --source "$D/c4/c4_sample.jsonl" --mode concat -n $N -T $T -o "$O/c4.safetensors" >/dev/null 2>&1
$calq calib build punct --tokenizer "$M" -n $N -T $T -o "$O/punct.safetensors" >/dev/null 2>&1
$calq calib build random-tokens --tokenizer "$M" -n $N -T $T -o "$O/random.safetensors" >/dev/null 2>&1
$calq calib build lang  --tokenizer "$M" --lang fra_Latn -n $N -T $T -o "$O/fra.safetensors" >/dev/null 2>&1
$calq calib build task  --tokenizer "$M" --task arc_challenge -n $N -T $T -o "$O/arc.safetensors" >/dev/null 2>&1
sets=(tinystories c4 punct random fra arc)
for s in "${sets[@]}"; do
  printf '%-12s %s\n' "$s" "$($calq calib show "$O/$s.safetensors" | awk '/^builder|^sha256/{printf "%s %s  ", $1, $2}')"
done

echo "== activation statistics"
for s in "${sets[@]}"; do
  $calq stats "$M" --calib "$O/$s.safetensors" -b 8 -q -o "$O/$s.stats.safetensors" 2>/dev/null
done
$calq outliers "$O/tinystories.stats.safetensors" --calib "$O/tinystories.safetensors" --json "$O/outliers.json" 2>/dev/null | awk 'NR <= 12' 
echo "== how much each set's activations differ from TinyStories"
stats=(); for s in "${sets[@]}"; do stats+=("$O/$s.stats.safetensors"); done
$calq compare "${stats[@]}" --labels "${sets[@]}" --no-convergence --json "$O/compare.json" 2>/dev/null |
  awk 'NR <= 11' 

echo "== float reference and quantized models"
$calq eval ppl "$M" "${EVAL[@]}" -o "$O/ppl_float.json" 2>/dev/null | tail -1
$calq eval kld-ref "$M" "${EVAL[@]}" -o "$O/kld_ref.safetensors" 2>/dev/null | tail -1
$calq quantize "$M" --method rtn --bits 4 --group-size 32 -o "$O/q_rtn" >/dev/null 2>&1
for s in "${sets[@]}"; do
  $calq quantize "$M" --method gptq --bits 4 --group-size 32 --calib "$O/$s.safetensors" -o "$O/q_$s" 2>/dev/null >/dev/null
done

metric() { grep -o "\"$2\": [-0-9.e+]*" "$1" | head -1 | awk '{print $2}'; }
printf '\n%-32s %10s %10s %10s\n' "model (TinyStories eval)" "ppl" "KLD" "same-top%"
printf '%-32s %10.4f %10s %10s\n' "float32" "$(metric "$O/ppl_float.json" ppl)" "0" "100"
for q in rtn "${sets[@]}"; do
  $calq eval ppl "$O/q_$q" "${EVAL[@]}" -o "$O/ppl_$q.json" >/dev/null 2>&1
  $calq eval kld "$O/q_$q" --ref "$O/kld_ref.safetensors" -o "$O/kld_$q.json" >/dev/null 2>&1
  label="GPTQ w4g32, calib $q"; [ "$q" = rtn ] && label="RTN w4g32 (no calib)"
  printf '%-32s %10.4f %10.5f %10.2f\n' "$label" "$(metric "$O/ppl_$q.json" ppl)" \
    "$(metric "$O/kld_$q.json" kld_mean)" "$(metric "$O/kld_$q.json" same_top_pct)"
done
echo
echo "results: $O/ (calibration sets, stats, outliers.json, compare.json, ppl_*.json, kld_*.json)"
