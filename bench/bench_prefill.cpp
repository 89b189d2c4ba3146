// Prefill throughput of the float forward pass on a synthetic Llama-shaped ~1B model
// (src/model/synthetic.h, preset llama-1b), batch 1, 512 tokens, 1 and 2 threads, f32 and bf16,
// next to the GEMM-bound limit measured in the same run:
//   limit tok/s = tokens / (2 · (decoder linear params · tokens + lm_head params · 1) / sgemm FLOP/s)
// where sgemm FLOP/s is the best of oneDNN f32 and OpenBLAS at 512x8192x2048 and 2048^3
// (bench_util.h) at the same thread count. The forward returns logits for the LAST position only
// (ForwardOptions::Logits::Last), so the lm_head multiplies one row per sequence, counted as such.
//
// Usage: bench_prefill [--tokens 512] [--reps 3] [--layers N] [--threads 1,2] [--types f32,bf16]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "bench_util.h"
#include "kernels/profile.h"
#include "model/synthetic.h"

using namespace calq;
using namespace calq::bench;

namespace {

struct Args {
  int tokens = 512, reps = 3, layers = 0;
  std::vector<int> threads = {1, 2};
  std::vector<ComputeType> types = {ComputeType::F32, ComputeType::BF16};
  std::string preset = "llama-1b";
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) r.push_back(x);
  return r;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--tokens") a.tokens = std::atoi(v.c_str());
    else if (k == "--reps") a.reps = std::atoi(v.c_str());
    else if (k == "--layers") a.layers = std::atoi(v.c_str());
    else if (k == "--preset") a.preset = v;
    else if (k == "--threads") {
      a.threads.clear();
      for (auto& t : split(v)) a.threads.push_back(std::atoi(t.c_str()));
    } else if (k == "--types") {
      a.types.clear();
      for (auto& t : split(v)) a.types.push_back(t == "bf16" ? ComputeType::BF16 : ComputeType::F32);
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

double rss_gib() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / (1024.0 * 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::printf("bench_prefill: preset %s, %d tokens, batch 1, logits for the last position only, best of %d timed runs\n",
              a.preset.c_str(), a.tokens, a.reps);
  std::printf("conditions at start: %s\n", load_line().c_str());

  // Model (bf16 storage keeps the source at 2 bytes/param; the packed copy is what runs).
  set_threads(*std::max_element(a.threads.begin(), a.threads.end()));
  const double t0 = now_s();
  const ModelConfig cfg = synth_config(a.preset, a.layers);
  SynthOptions so;
  so.dtype = DType::BF16;
  auto model = synth_decoder(cfg, so);
  std::printf("model: %d layers, %.3f B params (synthetic, seed 0, bf16 storage), generated in %.1f s\n",
              cfg.num_layers, double(model->parameter_count()) * 1e-9, now_s() - t0);
  int64_t layer_linear = 0;
  for (Linear* l : model->all_linears(false)) layer_linear += l->in * l->out;
  const int64_t head = model->lm_head().in * model->lm_head().out;
  const double flops = 2.0 * (double(layer_linear) * a.tokens + double(head) * 1.0);
  std::printf("work: decoder linears %.1f M params x %d tokens + lm_head %.1f M params x 1 row = %.1f GFLOP\n",
              layer_linear * 1e-6, a.tokens, head * 1e-6, flops * 1e-9);

  std::vector<int32_t> ids(size_t(a.tokens));
  std::mt19937 g(1);
  for (auto& x : ids) x = int32_t(g() % uint32_t(cfg.vocab_size));
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::Last;

  struct Row {
    ComputeType c;
    int threads;
    Peak peak;
    Timing t;
    double gemm, attn, gemm_gflops, gemm_cpu, attn_cpu;
    std::string load;
  };
  std::vector<Row> rows;
  auto& prof = kernel_profile();
  for (ComputeType c : a.types) {
    for (Linear* l : model->all_linears(true)) l->release_packed();
    model->set_compute(c);
    for (int th : a.threads) {
      set_threads(th);
      Row r{c, th, measure_peak(false), {}, 0, 0, 0, 0, 0, ""};  // the limit's sgemm peak, measured next to the run
      model->forward(ids.data(), 1, a.tokens, fo);                // packs weights, JITs kernels
      prof.reset();
      prof.enabled = true;
      r.t = time_runs([&] { model->forward(ids.data(), 1, a.tokens, fo); }, a.reps, 0);
      prof.enabled = false;
      r.gemm = prof.seconds(KernelKind::Gemm) / a.reps;
      r.attn = prof.seconds(KernelKind::Attention) / a.reps;
      r.gemm_gflops = double(prof.flops[int(KernelKind::Gemm)].load()) / a.reps / r.gemm * 1e-9;
      r.gemm_cpu = prof.cpu_seconds(KernelKind::Gemm) / a.reps / th;
      r.attn_cpu = prof.cpu_seconds(KernelKind::Attention) / a.reps / th;
      r.load = load_line();
      rows.push_back(r);
      std::fprintf(stderr, "  done %s %d threads: %.1f tok/s (%s)\n", compute_type_name(c), th, a.tokens / r.t.best,
                   r.load.c_str());
    }
    std::printf("packed weights for %s: process RSS %.2f GiB\n", compute_type_name(c), rss_gib());
  }

  std::printf("\n| compute | threads | tok/s | fp32 limit tok/s | %% of fp32 limit | sgemm peak GFLOP/s (source) | "
              "GEMM s | GEMM GFLOP/s | attention s | other s | cpu-time est.: %% of limit (GEMM / attn / other s) |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    const double limit = a.tokens / (flops / (r.peak.gflops.wall * 1e9));
    const double limit_cpu = a.tokens / (flops / (r.peak.gflops.cpu * 1e9));
    const double tps = a.tokens / r.t.best, tps_cpu = a.tokens / (r.t.cpu / r.threads);
    const double other = std::max(0.0, r.t.mean - r.gemm - r.attn);
    const double other_cpu = std::max(0.0, r.t.cpu_mean / r.threads - r.gemm_cpu - r.attn_cpu);
    std::printf("| %s | %d | %.1f | %.1f | %.1f%% | %.1f (%s) | %.3f | %.0f | %.3f | %.3f | %.1f%% (%.3f / %.3f / %.3f) |\n",
                compute_type_name(r.c), r.threads, tps, limit, 100.0 * tps / limit, r.peak.gflops.wall,
                r.peak.how.c_str(), r.gemm, r.gemm_gflops, r.attn, other, 100.0 * tps_cpu / limit_cpu, r.gemm_cpu,
                r.attn_cpu, other_cpu);
  }
  // The decoder checks every layer's output and the logits for NaN/inf (decoder.h layer_forward):
  // one read of [tokens, hidden] per layer plus the logits row, timed here on buffers of that size.
  {
    const std::vector<float> h = random_vec(size_t(a.tokens) * size_t(cfg.hidden_size), 5);
    const std::vector<float> lg = random_vec(size_t(cfg.vocab_size), 6);
    int64_t sink = 0;
    for (int th : a.threads) {
      set_threads(th);
      const Timing c = time_runs(
          [&] {
            for (int i = 0; i < cfg.num_layers; ++i) sink += find_non_finite(h.data(), h.size()) >= 0;
            sink += find_non_finite(lg.data(), lg.size()) >= 0;
          },
          a.reps * 10, 2);
      double best = 1e30;
      for (const Row& r : rows)
        if (r.threads == th) best = std::min(best, r.t.best);
      std::printf("non-finite checks, %d thread(s): %.3f ms per forward = %.2f%% of the fastest forward (%.3f s)\n", th,
                  c.best * 1e3, 100.0 * c.best / best, best);
    }
    if (sink != 0)
      std::printf("(unexpected non-finite value in the check buffers)\n");
  }
  std::printf("\ntok/s from the best of %d runs; GEMM / attention / other seconds per forward, averaged over the runs "
              "(GEMM includes the bf16 conversion of activations; other = mean total - both).\n"
              "cpu-time estimate: the same from process CPU time / threads (robust to other load; with 2 threads it "
              "includes OpenMP spin-waiting).\nconditions at end: %s\n", a.reps, load_line().c_str());
  return 0;
}
