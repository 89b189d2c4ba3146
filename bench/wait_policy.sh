#!/usr/bin/env bash
# How OpenMP's wait policy changes calq's wall time, on a quiet machine and with one other core busy
# (docs/performance.md, "Threads on a shared machine"). For each workload (eval ppl on stories260K:
# many short parallel regions; prefill of a 2-layer llama-1b-shaped model through `calq logits`:
# GEMM-sized regions), each policy, -t 1 and -t 2, with and without a busy-loop process, it prints
# the best wall time of REPS runs. Policies:
#   spin-300k  GOMP_SPINCOUNT=300000: libgomp's own default when OMP_WAIT_POLICY is unset
#   spin-10k   GOMP_SPINCOUNT=10000: a bounded spin (~10 us)
#   passive    OMP_WAIT_POLICY=passive: idle workers sleep on a futex at once
#   calq       nothing set: what calq chooses by itself (tools/calq/main.cpp)
# Usage: bench/wait_policy.sh [BUILD_DIR] [REPS]   (needs $CALQ_DATA or ../shared; writes under $TMPDIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-3}
data=${CALQ_DATA:-$root/../shared}
calq="$build/calq"
work=$(mktemp -d "${TMPDIR:-/tmp}/calq_wait_policy.XXXXXX")
busy=""
cleanup() {
  if [ -n "$busy" ]; then kill "$busy" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export CALQ_PROGRESS=0
"$calq" synth --preset llama-1b --layers 2 --dtype bf16 -o "$work/m" >/dev/null
ids="$work/ids.json"
{
  printf '{"input_ids": [['
  for i in $(seq 1 511); do printf '%d, ' $((i * 37 % 30000 + 1)); done
  printf '7]]}\n'
} >"$ids"

ppl() { "$calq" -t "$1" eval ppl "$data/models/stories260K" --data "$data/data/tinystories/tinystories_val.txt" \
  --ctx 256 --chunks 120 >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; }
prefill() { rm -f "$work/l.safetensors"; "$calq" -t "$1" logits "$work/m" --bf16 --ids "$ids" -o "$work/l.safetensors" \
  >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; }

# best wall seconds of $reps runs of: workload threads, under the policy's environment
best_of() {
  local policy=$1 workload=$2 threads=$3 t0 t1 times=""
  for _ in $(seq "$reps"); do
    t0=$(date +%s.%N)
    (
      unset OMP_WAIT_POLICY GOMP_SPINCOUNT
      case $policy in
        spin-300k) export GOMP_SPINCOUNT=300000 ;;
        spin-10k) export GOMP_SPINCOUNT=10000 ;;
        passive) export OMP_WAIT_POLICY=passive ;;
      esac
      "$workload" "$threads"
    )
    t1=$(date +%s.%N)
    times="$times $t0:$t1"
  done
  echo "$times" | awk '{ b = -1; for (i = 1; i <= NF; ++i) { split($i, p, ":"); d = p[2] - p[1]; if (b < 0 || d < b) b = d }
                         printf "%.2f", b }'
}

echo "load average at start: $(cat /proc/loadavg)"
echo "| workload | other core | policy | -t 1 s | -t 2 s | t2 / t1 |"
echo "|---|---|---|---|---|---|"
for load in quiet busy; do
  if [ "$load" = busy ]; then
    bash -c 'while :; do :; done' &
    busy=$!
  fi
  for workload in ppl prefill; do
    for policy in spin-300k spin-10k passive calq; do
      t1=$(best_of "$policy" "$workload" 1)
      t2=$(best_of "$policy" "$workload" 2)
      printf '| %s | %s | %s | %s | %s | %.2f |\n' "$workload" "$load" "$policy" "$t1" "$t2" "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b / a }')"
    done
  done
  if [ -n "$busy" ]; then kill "$busy"; wait "$busy" 2>/dev/null || true; busy=""; fi
done
echo "load average at end: $(cat /proc/loadavg)"
