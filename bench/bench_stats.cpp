// Cost of activation-statistics collection (src/observe/stats_collector.h) against the bare
// forward pass, measured in one run on the synthetic ~1B Llama-shaped model (src/model/synthetic.h,
// preset llama-1b): the same token batch is run alternately without and with an
// ActStatsCollector observing every linear input and residual stream (default `calq stats`
// settings), so both see the same machine load. Reports best and median wall times, the overhead
// (with / without - 1), and the time spent inside the observer callbacks themselves (a direct,
// load-insensitive measure of the collector's cost).
// The forward computes no logits (ForwardOptions::Logits::None), as `calq stats` runs it.
//
// Usage: bench_stats [--tokens 512] [--batch 1] [--reps 3] [--layers N] [--threads T] [--preset llama-1b]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "bench_util.h"
#include "model/synthetic.h"
#include "observe/stats_collector.h"

using namespace calq;
using namespace calq::bench;

namespace {

struct Args {
  int tokens = 512, batch = 1, reps = 3, layers = 0, threads = 0;
  std::string preset = "llama-1b";
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--tokens") a.tokens = std::atoi(v.c_str());
    else if (k == "--batch") a.batch = std::atoi(v.c_str());
    else if (k == "--reps") a.reps = std::atoi(v.c_str());
    else if (k == "--layers") a.layers = std::atoi(v.c_str());
    else if (k == "--threads") a.threads = std::atoi(v.c_str());
    else if (k == "--preset") a.preset = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

// Forwards to the collector and adds up the wall time spent in its callbacks.
class TimedObserver final : public Observer {
 public:
  explicit TimedObserver(ActStatsCollector& c) : c_(c) {}
  double seconds = 0;
  void on_batch(const int32_t* ids, int64_t b, int64_t s) override { c_.on_batch(ids, b, s); }
  bool wants(const std::string& m) const override { return c_.wants(m); }
  void on_linear_input(const std::string& m, const float* x, int64_t r, int64_t c) override {
    const double t0 = now_s();
    c_.on_linear_input(m, x, r, c);
    seconds += now_s() - t0;
  }
  void on_layer_output(const std::string& m, int l, const float* h, int64_t r, int64_t c) override {
    const double t0 = now_s();
    c_.on_layer_output(m, l, h, r, c);
    seconds += now_s() - t0;
  }

 private:
  ActStatsCollector& c_;
};

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.threads > 0) set_threads(a.threads);
  std::printf("bench_stats: preset %s, batch %d x %d tokens, %d timed reps each, %d threads\n", a.preset.c_str(),
              a.batch, a.tokens, a.reps, omp_get_max_threads());
  std::printf("conditions at start: %s\n", load_line().c_str());
  const double t0 = now_s();
  const ModelConfig cfg = synth_config(a.preset, a.layers);
  SynthOptions so;
  so.dtype = DType::BF16;  // storage; the packed f32 copy is what runs
  auto model = synth_decoder(cfg, so);
  std::printf("model: %d layers, hidden %d, ffn %d, %.3f B params, generated in %.1f s\n", cfg.num_layers,
              cfg.hidden_size, cfg.intermediate_size, double(model->parameter_count()) * 1e-9, now_s() - t0);

  std::vector<int32_t> ids(size_t(a.batch * a.tokens));
  std::mt19937 g(1);
  for (auto& x : ids) x = int32_t(g() % uint32_t(cfg.vocab_size));
  ForwardOptions bare;
  bare.logits = ForwardOptions::Logits::None;
  ActStatsCollector col(*model, {});
  TimedObserver timed(col);
  ForwardOptions with = bare;
  with.observer = &timed;

  model->forward(ids.data(), a.batch, a.tokens, bare);  // packs weights, JITs kernels
  model->forward(ids.data(), a.batch, a.tokens, with);  // allocates the accumulators
  std::vector<double> tb, ts;
  double cb = 0;
  for (int r = 0; r < a.reps; ++r) {  // alternate, so both see the same load
    double s = now_s();
    model->forward(ids.data(), a.batch, a.tokens, bare);
    tb.push_back(now_s() - s);
    timed.seconds = 0;
    s = now_s();
    model->forward(ids.data(), a.batch, a.tokens, with);
    ts.push_back(now_s() - s);
    cb += timed.seconds;
    std::printf("  rep %d: bare %.3f s, with stats %.3f s (callbacks %.3f s)  [%s]\n", r, tb.back(), ts.back(),
                timed.seconds, load_line().c_str());
    std::fflush(stdout);
  }
  std::sort(tb.begin(), tb.end());
  std::sort(ts.begin(), ts.end());
  const double bb = tb.front(), bm = tb[tb.size() / 2], sb = ts.front(), sm = ts[ts.size() / 2];
  const ActStats st = col.result();
  std::printf("\n| forward | best s | median s | tok/s (best) |\n|---|---|---|---|\n");
  std::printf("| bare | %.3f | %.3f | %.1f |\n", bb, bm, a.batch * a.tokens / bb);
  std::printf("| with stats | %.3f | %.3f | %.1f |\n", sb, sm, a.batch * a.tokens / sb);
  std::printf("\noverhead: %+.1f%% (best), %+.1f%% (median); time inside the collector: %.3f s per forward = %.1f%% of "
              "the bare forward (best)\n",
              100 * (sb / bb - 1), 100 * (sm / bm - 1), cb / a.reps, 100 * cb / a.reps / bb);
  std::printf("observed: %zu distinct inputs (%d layers), %.0f tokens accumulated\n", st.tensors.size(),
              cfg.num_layers, st.tensors.empty() ? 0.0 : st.tensors[0].count);
  std::printf("conditions at end: %s\n", load_line().c_str());
  return 0;
}
