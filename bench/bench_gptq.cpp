// GPTQ cost of one linear layer, in its two parts (issue "Verified by"):
//   hessian  H = 2/N Σ xxᵀ over N calibration tokens fed as in the pipeline (one 2048-token sample
//            per observer call; ssyrk on the upper triangle);
//   solve    dampening, Cholesky inverse factor, lazy-block quantization (4-bit, g128, block 128);
//   error    the reported layer error tr((W-Q)H(W-Q)ᵀ) and tr(WHWᵀ) (optional in GptqConfig).
// Shapes [out, in]: 4096x4096 (a 7B/8B attention projection) and 4096x14336 (Llama-3-8B down_proj,
// whose 14336-wide Hessian is the expensive one).
// Calibration tokens: CALQ_BENCH_TOKENS (default 128 x 2048 = 262144). The Hessian time is linear
// in the tokens, so a run with fewer tokens can be scaled; the solve does not depend on them.
// Usage: bench_gptq [--benchmark_filter=...]; CALQ_BENCH_SHAPES=small adds a quick 1024x1024 case.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "observe/hessian.h"
#include "quant/gptq.h"

namespace {

int64_t tokens() {
  const char* e = std::getenv("CALQ_BENCH_TOKENS");
  return e && *e ? std::atoll(e) : int64_t(128) * 2048;
}

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a;
  f >> a;
  return a;
}

// One 2048-token sample of inputs (reused for every sample: the cost does not depend on the values).
const std::vector<float>& sample(int64_t cols) {
  static std::vector<float> x;
  static int64_t c = 0;
  if (c != cols) {
    x = random_vec(size_t(2048 * cols), 1);
    c = cols;
  }
  return x;
}

void BM_GptqHessian(benchmark::State& st) {
  const int64_t cols = st.range(0), n = tokens();
  const auto& x = sample(cols);
  for (auto _ : st) {
    calq::Hessian h(cols);
    for (int64_t done = 0; done < n; done += 2048) h.accumulate(x.data(), std::min<int64_t>(2048, n - done));
    h.symmetrize();
    benchmark::DoNotOptimize(h.h.data());
  }
  st.counters["tokens"] = double(n);
  st.counters["GFLOP/s"] = benchmark::Counter(double(n) * double(cols) * double(cols + 1), benchmark::Counter::kIsRate);
  st.SetLabel("in " + std::to_string(cols) + ", loadavg " + loadavg());
}

// A well-conditioned but non-trivial Hessian: 4096 random tokens with correlated channels.
calq::Hessian make_hessian(int64_t cols) {
  calq::Hessian h(cols);
  const auto x = random_vec(size_t(4096 * cols), 2);
  h.accumulate(x.data(), 4096);
  for (int64_t i = 0; i < cols; ++i) h.h[size_t(i * cols + i)] += 0.1f;
  h.symmetrize();
  return h;
}

void BM_GptqSolve(benchmark::State& st) {
  const int64_t rows = st.range(0), cols = st.range(1);
  const bool with_error = st.range(2) != 0;
  const calq::Hessian h = make_hessian(cols);
  const auto w = random_vec(size_t(rows * cols), 3);
  calq::GptqConfig c;
  c.bits = 4;
  c.group_size = 128;
  c.report_error = with_error;
  double inv = 0, quant = 0, err = 0;
  for (auto _ : st) {
    const calq::GptqResult r = calq::gptq_quantize(w.data(), rows, cols, h, c);
    inv = r.seconds_inverse;
    quant = r.seconds_quantize;
    err = r.seconds_error;
    benchmark::DoNotOptimize(r.qw.q.data());
  }
  st.counters["inverse_s"] = inv;
  st.counters["quantize_s"] = quant;
  st.counters["error_s"] = err;
  st.SetLabel(std::to_string(rows) + "x" + std::to_string(cols) + (with_error ? " +error" : "") + ", loadavg " +
              loadavg());
}

}  // namespace

BENCHMARK(BM_GptqHessian)->Arg(4096)->Arg(14336)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_GptqSolve)
    ->Args({4096, 4096, 0})
    ->Args({4096, 4096, 1})
    ->Args({4096, 14336, 0})
    ->Args({4096, 14336, 1})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK(BM_GptqSolve)->Args({1024, 1024, 1})->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
