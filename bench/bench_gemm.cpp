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
#include "kernels/vec.h"

using namespace calq;
using namespace calq::bench;

namespace {

// bf16_rows: a bf16 weight kept as bf16 rows (gemm.h HalfStorage::Rows), as a bf16 checkpoint runs
// where oneDNN has no bf16 matmul.
Rate packed_gflops(int64_t M, const std::vector<std::pair<int64_t, int64_t>>& nk, ComputeType c, int reps,
                   bool bf16_rows = false) {
  // Several products on one input (e.g. q, k, v), timed together.
  std::vector<std::shared_ptr<PackedWeight>> w;
  std::vector<std::vector<float>> y;
  double flops = 0;
  const int64_t k = nk.front().second;
  for (auto [n, kk] : nk) {
    auto wv = random_vec(size_t(n * kk), 3);
    std::vector<uint16_t> bits(wv.size());
    if (bf16_rows) f32_to_bf16_n(wv.data(), bits.data(), int64_t(wv.size()));
    w.push_back(bf16_rows ? pack_weight_bf16(bits.data(), n, kk, c, HalfStorage::Rows) : pack_weight(wv.data(), n, kk, c));
    y.emplace_back(size_t(M * n));
    flops += 2.0 * double(M) * double(n) * double(kk);
  }
  auto x = random_vec(size_t(M * k), 4);
  const Timing t = time_runs([&] {
    for (size_t i = 0; i < w.size(); ++i) gemm_packed(x.data(), M, *w[i], nullptr, y[i].data());
  }, reps);
  return rate(flops, t);
}

// What the decoder's gated MLP runs: up = x·Wuᵀ, then the gate GEMM with act(·) ⊙ up fused as its
// epilogue (bf16 output when computing in bf16).
Rate gated_mlp_gflops(int64_t M, int64_t I, int64_t H, ComputeType c, int reps) {
  auto wu = random_vec(size_t(I * H), 5), wg = random_vec(size_t(I * H), 6), x = random_vec(size_t(M * H), 7);
  auto pu = pack_weight(wu.data(), I, H, c), pg = pack_weight(wg.data(), I, H, c);
  std::vector<float> u(size_t(M * I)), g(size_t(M * I));
  std::vector<uint16_t> g16(size_t(M * I)), u16(size_t(M * I));
  const Timing t = time_runs([&] {
    GemmEpilogue e;
    e.gated = true;
    if (c == ComputeType::BF16) {
      gemm_packed_ex(x.data(), nullptr, M, *pu, nullptr, GemmEpilogue{}, nullptr, u16.data());
      e.mul_bf16 = u16.data();
      gemm_packed_ex(x.data(), nullptr, M, *pg, nullptr, e, nullptr, g16.data());
    } else {
      gemm_packed(x.data(), M, *pu, nullptr, u.data());
      e.mul = u.data();
      gemm_packed_ex(x.data(), nullptr, M, *pg, nullptr, e, g.data());
    }
  }, reps);
  return rate(4.0 * double(M) * double(I) * double(H), t);
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
  std::vector<std::string> summary;
  for (int t : threads) {
    set_threads(t);
    Rate best32, best16;
    for (const auto& s : peak_shapes()) {
      const Rate ob = openblas_sgemm_gflops(s.m, s.n, s.k, reps);
      const Rate f = onednn_matmul_gflops(s.m, s.n, s.k, dnnl::memory::data_type::f32, reps);
      // No oneDNN bf16 matmul without AVX-512 (gemm.h gemm_bf16_native): that column stays 0.
      const Rate b = gemm_bf16_native() ? onednn_matmul_gflops(s.m, s.n, s.k, dnnl::memory::data_type::bf16, reps) : Rate{};
      std::printf("| %d | %ldx%ldx%ld | %.1f (%.1f) | %.1f (%.1f) | %.1f (%.1f) | %.2f |\n", t, long(s.m), long(s.n),
                  long(s.k), ob.wall, ob.cpu, f.wall, f.cpu, b.wall, b.cpu, f.wall > 0 ? b.wall / f.wall : 0.0);
      std::fflush(stdout);
      best32 = {std::max({best32.wall, ob.wall, f.wall}), std::max({best32.cpu, ob.cpu, f.cpu})};
      best16 = {std::max(best16.wall, b.wall), std::max(best16.cpu, b.cpu)};
    }
    char line[200];
    std::snprintf(line, sizeof line, "%d thread(s): sgemm peak %.1f GFLOP/s (cpu-time %.1f), bf16 peak %.1f (cpu-time %.1f)",
                  t, best32.wall, best32.cpu, best16.wall, best16.cpu);
    summary.push_back(line);
  }
  for (const auto& l : summary) std::printf("%s\n", l.c_str());
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
  std::printf("| threads | gemm_packed, %ld rows | f32 GFLOP/s | bf16 GFLOP/s | f32 on bf16 rows |\n|---|---|---|---|---|\n",
              long(M));
  for (int t : threads) {
    set_threads(t);
    for (const auto& r : rows) {
      const int64_t m = std::string(r.name).rfind("lm_head", 0) == 0 ? 1 : M;
      const Rate f = packed_gflops(m, r.nk, ComputeType::F32, reps), b = packed_gflops(m, r.nk, ComputeType::BF16, reps);
      const Rate fr = packed_gflops(m, r.nk, ComputeType::F32, reps, true);
      std::printf("| %d | %s | %.1f (%.1f) | %.1f (%.1f) | %.1f (%.1f) |\n", t, r.name, f.wall, f.cpu, b.wall, b.cpu,
                  fr.wall, fr.cpu);
      if (std::string(r.name).rfind("gate_up fused", 0) == 0) {
        const Rate gf = gated_mlp_gflops(M, I, H, ComputeType::F32, reps), gb = gated_mlp_gflops(M, I, H, ComputeType::BF16, reps);
        std::printf("| %d | up, then gate with act(.)*up epilogue (decoder) | %.1f (%.1f) | %.1f (%.1f) | |\n", t, gf.wall,
                    gf.cpu, gb.wall, gb.cpu);
      }
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
