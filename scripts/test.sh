#!/usr/bin/env bash
# The test command (README, CI): release build + full test suite, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the release binary's kernel and model tests
# again with every kernel capped at AVX2 (CALQ_ISA=avx2). Data pack: $CALQ_DATA, default ../shared.
# Usage: scripts/test.sh [--no-sanitize] [--no-avx2]
set -euo pipefail
cd "$(dirname "$0")/.."
# The suites of the AVX2 pass: every kernel, the decoder (f32, bf16, cached), synthetic weights,
# packed quantized loads.
AVX2_TESTS='(^|/)(AttentionFast|OpsFast|Bf16Convert|GemmPacked|GemmPackedBf16Input|GemmBf16Rows|GemmBf16RowsAuto|GemmF16Rows|EvalInt8Acts|KvQuant|Isa|QGemm|QGemmDecode4|QGemmDecode8|QPack|QStack|W8A8|FastPath|Stories260KBf16|TinyParityBf16|TinyParity|TinyStories656K|AttentionCached|KvCache|RealKvCache|TinyKvCache|GenerateCli|NonFinite|SynthModel|SynthWeights|SynthCli|SynthOutliers|PackedLoad|EvalGolden|ForwardRows)[./]'

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
  # One binary for AVX2 and AVX-512 machines: an x86-64-v3 baseline whose kernels (quantized GEMMs,
  # attention, norms, RoPE, activations, bf16 conversion, synthetic weights) carry AVX-512 and AVX2
  # variants picked at run time (src/kernels/isa.h). CALQ_ISA=avx2 caps every one of them (the test
  # binary and the calq it runs) at AVX2, so the release binary's kernel and model tests exercise
  # the AVX2 path on an AVX-512 machine. (oneDNN's float GEMMs dispatch by themselves: capping
  # them with ONEDNN_MAX_CPU_ISA=AVX2 leaves no bf16 matmul, so they stay as they are.)
  # The kernel tests also loop over every ISA the CPU has in the release pass.
  echo "== kernel and model tests, kernels capped at AVX2 (CALQ_ISA=avx2)"
  (cd build && CALQ_ISA=avx2 ctest --output-on-failure -j "$jobs" -LE slow -R "$AVX2_TESTS")
fi
echo "== all tests passed"
