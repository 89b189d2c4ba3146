#!/usr/bin/env bash
# The include check catches what it must (ctest layers.check_catches_violations): on a copy of the
# source tree it passes, then fails for each planted violation, naming the file and the edge.
# Usage: tests/check_layers_test.sh SOURCE_ROOT
set -euo pipefail
root=$(cd "${1:?usage: check_layers_test.sh SOURCE_ROOT}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/calq_check_layers.XXXXXX")
trap 'rm -rf "$work"' EXIT

fresh() {
  rm -rf "$work/tree" && mkdir -p "$work/tree/tools" "$work/tree/cmake"
  cp -r "$root/src" "$work/tree/src" && cp -r "$root/tools/calq" "$work/tree/tools/calq"
  cp "$root/cmake/layers.txt" "$root/cmake/check_layers.sh" "$work/tree/cmake/"
}
check() { bash "$work/tree/cmake/check_layers.sh" "$work/tree" >"$work/out" 2>&1; }
fails=0
# expect_violation DESCRIPTION FILE LINE_TO_APPEND EXPECTED_MESSAGE_PART
expect_violation() {
  fresh
  mkdir -p "$(dirname "$work/tree/$2")"
  printf '%s\n' "$3" >>"$work/tree/$2"
  if check; then
    echo "FAIL: $1: the check passed"; fails=1
  elif ! grep -qF -- "$4" "$work/out"; then
    echo "FAIL: $1: no '$4' in:"; cat "$work/out"; fails=1
  else
    echo "ok: $1"
  fi
}

fresh
check || { echo "FAIL: the unmodified tree does not pass:"; cat "$work/out"; exit 1; }
echo "ok: the unmodified tree passes"

expect_violation "base includes eval (upward across layers)" src/util/error.h '#include "eval/ppl.h"' \
  "src/util/error.h:$(($(wc -l <"$root/src/util/error.h") + 1)): upward include \"eval/ppl.h\": util (base) may not include eval (eval)"
expect_violation "util includes io (upward inside base)" src/util/json.cpp '#include "io/mapped_file.h"' \
  'upward include "io/mapped_file.h": util (base) may not include io (base)'
expect_violation "kernels includes model (upward inside core)" src/kernels/ops.h '#include "model/decoder.h"' \
  'upward include "model/decoder.h": kernels (core) may not include model (core)'
expect_violation "tokenizer includes kernels (unlisted, same layer)" src/tokenizer/unicode.h '#include "kernels/ops.h"' \
  'sideways include "kernels/ops.h": tokenizer (core) may not include kernels (core)'
expect_violation "formats includes the CLI" src/formats/output_dir.h '#include "cli/command.h"' \
  'may not include cli (cli)'
expect_violation "relative include" src/quant/qstate.h '#include "../eval/ppl.h"' 'relative include'
expect_violation "a room missing from the table" src/newroom/thing.h '#pragma once' 'room newroom is not in'
expect_violation "BLAS outside kernels" src/quant/gptq.cpp 'void f() { cblas_sgemm(0); }' \
  "calls what only kernels/ may call"
exit $fails
