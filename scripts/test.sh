#!/usr/bin/env bash
# The test command (README, CI): release build + full test suite, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the portable x86-64-v3 (AVX2) build's kernel
# tests with the kernels capped at AVX2 (CALQ_ISA=avx2). Data pack: $CALQ_DATA, default ../shared.
# Usage: scripts/test.sh [--no-sanitize] [--no-avx2]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
sanitize=1
avx2=1
for a in "$@"; do
  [ "$a" = "--no-sanitize" ] && sanitize=0
  [ "$a" = "--no-avx2" ] && avx2=0
done

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
if [ "$avx2" = 1 ]; then
  # One binary for AVX2 and AVX-512 machines: an x86-64-v3 baseline with the AVX-512 kernels
  # compiled in and picked at run time (src/kernels/isa.h). CALQ_ISA=avx2 makes the AVX2 kernels
  # run even on an AVX-512 machine; the kernel tests also loop over every ISA the CPU has.
  echo "== portable build (x86-64-v3 baseline, runtime ISA dispatch)"
  # Only the kernels' tests and the layers they link are built here (CALQ_KERNEL_TESTS_ONLY,
  # CMakeLists.txt), not the whole tree a third time.
  cmake -S . -B build-avx2 -DCMAKE_BUILD_TYPE=Release -DCALQ_AVX512=OFF -DCALQ_BUILD_BENCH=OFF \
    -DCALQ_KERNEL_TESTS_ONLY=ON >/dev/null
  cmake --build build-avx2 -j "$jobs" --target calq_tests
  echo "== kernel tests (portable build, kernels capped at AVX2)"
  (cd build-avx2 && CALQ_ISA=avx2 ctest --output-on-failure -j "$jobs")
fi
echo "== all tests passed"
