#!/usr/bin/env bash
# The test command (README, CI): release build + full test suite, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer. Data pack: $CALQ_DATA, default ../shared.
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
sanitize=1
[ "${1:-}" = "--no-sanitize" ] && sanitize=0

bash scripts/deps.sh
echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
echo "== tests (release)"
(cd build && ctest --output-on-failure -j "$jobs")

if [ "$sanitize" = 1 ]; then
  echo "== ASan+UBSan build"
  # -O1 -g1: line tables for sanitizer reports, and a build twice as fast as -O2 -g.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCALQ_SANITIZE=ON -DCALQ_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$jobs" --target calq_tests calq_cli
  echo "== tests (ASan+UBSan)"
  # Tests labelled "slow" (the *Slow* suites, CMakeLists.txt) run only in the release pass.
  # oneDNN's JIT and OpenMP runtime keep allocations alive at exit by design: no leak check.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs" -LE slow)
fi
echo "== all tests passed"
