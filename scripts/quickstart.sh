#!/usr/bin/env bash
# The main job on the bundled example (README "Quick start"): build calq, then run the demo study
# (studies/demo.toml: the paper's design on the data pack's models — 2 real TinyStories models and
# an OPT-125m-shaped synthetic model with planted outliers — x 5 calibration sets x GPTQ / AWQ W4,
# SmoothQuant / naive W8A8 x perplexity, KL divergence, PIQA) and print its tables.
# Results: out/study-demo/ (study.sqlite, results/, cache/). A rerun reuses everything finished.
# Data: $CALQ_DATA, default ../shared.
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
export CALQ_PROGRESS="${CALQ_PROGRESS:-1}"

echo "== plan"
$calq study plan studies/demo.toml | sed -n '1,3p;/^by step kind/,$p'
echo "== run"
$calq study studies/demo.toml | tail -1
echo "== status"
$calq study status studies/demo.toml
echo
$calq study table studies/demo.toml -o out/study-demo/table.md
cat out/study-demo/table.md
echo
echo "results: out/study-demo/ (study.sqlite, table.md; calq study table studies/demo.toml --format csv)"
