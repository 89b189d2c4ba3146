// Causal attention throughput: the blocked kernel (f32 and bf16 products) vs the scalar reference,
// at llama-1b heads (32 query / 8 kv heads, head_dim 64) and other head shapes.
// GFLOP/s count the useful causal work: 2 products x 2 flops x heads x head_dim x T(T+1)/2.
// Usage: bench_attention [--threads 1,2] [--reps 5] [--seq 512]
#include <cstdlib>
#include <sstream>

#include "bench_util.h"
#include "kernels/ops.h"

using namespace calq;
using namespace calq::bench;

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  int reps = 5, seq = 512;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--reps") reps = std::atoi(v.c_str());
    if (k == "--seq") seq = std::atoi(v.c_str());
    if (k == "--threads") {
      threads.clear();
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ',');) threads.push_back(std::atoi(x.c_str()));
    }
  }
  struct Case {
    const char* name;
    int heads, kv, hd, window;
  };
  const std::vector<Case> cases = {{"llama-1b (32/8 x 64)", 32, 8, 64, 0},
                                   {"llama-7b (32/32 x 128)", 32, 32, 128, 0},
                                   {"mistral window 128 (32/8 x 128)", 32, 8, 128, 128}};
  std::printf("bench_attention: T=%d, batch 1, best of %d -- %s\n\n", seq, reps, load_line().c_str());
  std::printf("| threads | shape | kernel | ms | GFLOP/s (cpu-time GFLOP/s) |\n|---|---|---|---|---|\n");
  for (int t : threads) {
    set_threads(t);
    for (const Case& c : cases) {
      const int64_t T = seq;
      auto q = random_vec(size_t(T * c.heads * c.hd), 1), k = random_vec(size_t(T * c.kv * c.hd), 2),
           v = random_vec(size_t(T * c.kv * c.hd), 3);
      std::vector<float> out(q.size());
      AttnDims d;
      d.seq = T;
      d.heads = c.heads;
      d.kv_heads = c.kv;
      d.head_dim = c.hd;
      d.window = c.window;
      d.scale = 1.0f / std::sqrt(float(c.hd));
      double pairs = 0;
      for (int64_t i = 0; i < T; ++i) pairs += double(c.window > 0 ? std::min<int64_t>(i + 1, c.window) : i + 1);
      const double flops = 4.0 * c.heads * c.hd * pairs;
      for (int kind = 0; kind < 3; ++kind) {
        if (kind == 2 && (t > 1 || c.hd > 64)) continue;  // the reference is slow: once, small case
        d.bf16 = kind == 1;
        const Timing tm = time_runs([&] {
          if (kind == 2)
            attention_ref(q.data(), k.data(), v.data(), out.data(), d);
          else
            attention(q.data(), k.data(), v.data(), out.data(), d);
        }, kind == 2 ? 1 : reps);
        const Rate r = rate(flops, tm);
        std::printf("| %d | %s | %s | %.2f | %.1f (%.1f) |\n", t, c.name, kind == 0 ? "blocked f32" : kind == 1 ? "blocked bf16" : "reference",
                    tm.best * 1e3, r.wall, r.cpu);
        std::fflush(stdout);
      }
    }
  }
  std::printf("(%s)\n", load_line().c_str());
  return 0;
}
