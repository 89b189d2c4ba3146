// Evaluation throughput: the log-softmax row kernels (fast vs reference), top-k selection, and
// perplexity tokens/s on a model (CALQ_BENCH_MODEL=<folder> or the synthetic ~1B benchmark model).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "eval/kld.h"
#include "eval/logprob.h"

namespace {

std::vector<float> random_row(int64_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> r(static_cast<size_t>(n));
  for (float& v : r) v = nd(rng);
  return r;
}

void BM_RowLogsumexp(benchmark::State& st) {
  const auto row = random_row(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(calq::eval::row_logsumexp(row.data(), st.range(0)));
  st.SetItemsProcessed(st.iterations() * st.range(0));
}
BENCHMARK(BM_RowLogsumexp)->Arg(32000)->Arg(128256);

void BM_RowLogsumexpRef(benchmark::State& st) {
  const auto row = random_row(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(calq::eval::row_logsumexp_ref(row.data(), st.range(0)));
  st.SetItemsProcessed(st.iterations() * st.range(0));
}
BENCHMARK(BM_RowLogsumexpRef)->Arg(32000)->Arg(128256);

// One reference row of the compact KLD file: logsumexp + top-32 + tail mass.
void BM_KldReferenceRow(benchmark::State& st) {
  const int64_t n = st.range(0);
  const auto row = random_row(n);
  std::vector<int32_t> ids(32);
  std::vector<float> vals(32);
  std::vector<uint8_t> scratch(static_cast<size_t>(n), 0);
  for (auto _ : st) {
    const double lse = calq::eval::row_logsumexp(row.data(), n);
    calq::eval::row_topk(row.data(), n, 32, ids.data(), vals.data());
    benchmark::DoNotOptimize(calq::eval::row_tail_mass(row.data(), n, lse, ids.data(), 32, scratch.data()));
  }
  st.SetItemsProcessed(st.iterations() * n);
}
BENCHMARK(BM_KldReferenceRow)->Arg(32000)->Arg(128256);

}  // namespace

BENCHMARK_MAIN();
