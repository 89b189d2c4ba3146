// GEMM peaks of this machine and the efficiency of calq's packed GEMM at model shapes.
//  1. peak sgemm: oneDNN f32 matmul (pre-reordered weights) and OpenBLAS sgemm at 512x8192x2048
//     and 2048^3; peak bf16: oneDNN bf16 matmul (f32 accumulation); at 1 and 2 threads.
//  2. gemm_packed (what the decoder runs, incl. the bf16 conversion of the activations) at the
//     llama-1b linear shapes with 512 rows, q/k/v and gate/up separately vs fused into one GEMM.
//  3. the cost of a primitive-cache miss (new row count) vs a hit.
// Usage: bench_gemm [--threads 1,2] [--reps 5]
#include <cstdlib>
#include <sstream>

#include "bench_util.h"
#include "kernels/gemm.h"

using namespace calq;
using namespace calq::bench;

namespace {

Rate packed_gflops(int64_t M, const std::vector<std::pair<int64_t, int64_t>>& nk, ComputeType c, int reps) {
  // Several products on one input (e.g. q, k, v), timed together.
  std::vector<std::shared_ptr<PackedWeight>> w;
  std::vector<std::vector<float>> y;
  double flops = 0;
  const int64_t k = nk.front().second;
  for (auto [n, kk] : nk) {
    auto wv = random_vec(size_t(n * kk), 3);
    w.push_back(pack_weight(wv.data(), n, kk, c));
    y.emplace_back(size_t(M * n));
    flops += 2.0 * double(M) * double(n) * double(kk);
  }
  auto x = random_vec(size_t(M * k), 4);
  const Timing t = time_runs([&] {
    for (size_t i = 0; i < w.size(); ++i) gemm_packed(x.data(), M, *w[i], nullptr, y[i].data());
  }, reps);
  return rate(flops, t);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--reps") reps = std::atoi(v.c_str());
    if (k == "--threads") {
      threads.clear();
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ',');) threads.push_back(std::atoi(x.c_str()));
    }
  }
  std::printf("bench_gemm (best of %d runs each) -- %s\n\n", reps, load_line().c_str());
  std::printf("| threads | shape MxNxK | OpenBLAS sgemm | oneDNN f32 | oneDNN bf16 | bf16/f32 |\n|---|---|---|---|---|---|\n");
  for (int t : threads) {
    set_threads(t);
    for (const auto& s : peak_shapes()) {
      const Rate ob = openblas_sgemm_gflops(s.m, s.n, s.k, reps);
      const Rate f = onednn_matmul_gflops(s.m, s.n, s.k, dnnl::memory::data_type::f32, reps);
      const Rate b = onednn_matmul_gflops(s.m, s.n, s.k, dnnl::memory::data_type::bf16, reps);
      std::printf("| %d | %ldx%ldx%ld | %.1f (%.1f) | %.1f (%.1f) | %.1f (%.1f) | %.2f |\n", t, long(s.m), long(s.n),
                  long(s.k), ob.wall, ob.cpu, f.wall, f.cpu, b.wall, b.cpu, b.wall / f.wall);
      std::fflush(stdout);
    }
  }
  std::printf("(GFLOP/s from the best wall time; in parentheses from CPU time per thread; %s)\n\n", load_line().c_str());

  // llama-1b shapes, 512 rows.
  const int64_t M = 512, H = 2048, KV = 512, I = 8192;
  struct Row {
    const char* name;
    std::vector<std::pair<int64_t, int64_t>> nk;
  };
  const std::vector<Row> rows = {
      {"q,k,v separate (2048,512,512 x 2048)", {{H, H}, {KV, H}, {KV, H}}},
      {"qkv fused (3072 x 2048)", {{H + 2 * KV, H}}},
      {"o (2048 x 2048)", {{H, H}}},
      {"gate,up separate (2 x 8192 x 2048)", {{I, H}, {I, H}}},
      {"gate_up fused (16384 x 2048)", {{2 * I, H}}},
      {"down (2048 x 8192)", {{H, I}}},
      {"lm_head 1 row (32000 x 2048)", {{32000, H}}},
  };
  std::printf("| threads | gemm_packed, %ld rows | f32 GFLOP/s | bf16 GFLOP/s |\n|---|---|---|---|\n", long(M));
  for (int t : threads) {
    set_threads(t);
    for (const auto& r : rows) {
      const int64_t m = std::string(r.name).rfind("lm_head", 0) == 0 ? 1 : M;
      const Rate f = packed_gflops(m, r.nk, ComputeType::F32, reps), b = packed_gflops(m, r.nk, ComputeType::BF16, reps);
      std::printf("| %d | %s | %.1f (%.1f) | %.1f (%.1f) |\n", t, r.name, f.wall, f.cpu, b.wall, b.cpu);
      std::fflush(stdout);
    }
  }
  std::printf("(%s)\n\n", load_line().c_str());

  // Primitive cache: a hit vs a miss (a row count not seen before) on a small product.
  set_threads(threads.back());
  auto wv = random_vec(64 * 64, 5);
  auto w = pack_weight(wv.data(), 64, 64, ComputeType::F32);
  auto x = random_vec(size_t(4096 * 64), 6);
  std::vector<float> y(size_t(4096 * 64));
  gemm_packed(x.data(), 8, *w, nullptr, y.data());
  const double hit = time_runs([&] { gemm_packed(x.data(), 8, *w, nullptr, y.data()); }, 200).median;
  int64_t rows_seen = 1000;
  const double miss = time_runs([&] { gemm_packed(x.data(), ++rows_seen % 4096 + 1, *w, nullptr, y.data()); }, 50).median;
  std::printf("gemm_packed 8x64x64: cache hit %.1f us, miss (new row count) %.1f us\n", hit * 1e6, miss * 1e6);
  return 0;
}
