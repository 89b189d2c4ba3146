// Evaluation benchmark on the synthetic ~1B model (src/model/synthetic.h, preset llama-1b, bf16
// storage, seeded random weights: the speed is real, the perplexity is not):
//   1. perplexity throughput (tokens fed per second) of `calq eval ppl` under the GPTQ protocol
//      (every position scored) and the llama.cpp protocol (second half scored), one window per
//      forward pass and batched (windows_per_pass: 2048 positions per pass, `eval ppl`'s default),
//      next to the bare Decoder::forward with full logits plus a plain NLL loop over them (what
//      "calq logits, then compute the mean NLL" costs);
//   2. the size of the compact top-k KLD reference vs llama.cpp's full-vocabulary
//      --kl-divergence-base file for WikiText-2 test, with the token counts of the real Llama-2
//      (32000) and Llama-3 (128256) tokenizers from ../shared/tokenizers.
// Usage: bench_eval_ppl [--ctx 512] [--windows 4] [--layers N] [--threads 2] [--types f32,bf16]
//                       [--sizes-only]    (run from the repository root, or set CALQ_DATA)
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>

#include "bench_util.h"
#include "eval/jobs.h"
#include "eval/kld.h"
#include "eval/logprob.h"
#include "eval/ppl.h"
#include "eval/text_data.h"
#include "model/synthetic.h"
#include "tokenizer/tokenizer.h"

using namespace calq;
using namespace calq::bench;
using namespace calq::eval;

namespace {

struct Args {
  int64_t ctx = 512, windows = 4;
  int layers = 0, threads = 2;
  std::vector<ComputeType> types = {ComputeType::F32, ComputeType::BF16};
  bool sizes_only = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--sizes-only") {
      a.sizes_only = true;
      continue;
    }
    if (i + 1 >= argc) std::exit(2);
    const std::string v = argv[++i];
    if (k == "--ctx") a.ctx = std::atoll(v.c_str());
    else if (k == "--windows") a.windows = std::atoll(v.c_str());
    else if (k == "--layers") a.layers = std::atoi(v.c_str());
    else if (k == "--threads") a.threads = std::atoi(v.c_str());
    else if (k == "--types") {
      a.types.clear();
      std::stringstream ss(v);
      for (std::string t; std::getline(ss, t, ',');) a.types.push_back(t == "bf16" ? ComputeType::BF16 : ComputeType::F32);
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

// The "calq logits + mean NLL" baseline: full [ctx, vocab] logits, then a plain double NLL loop.
double forward_all_nll(const Decoder& m, const std::vector<Window>& w) {
  double s = 0;
  const int64_t V = m.config().vocab_size;
  for (const Window& x : w) {
    const int64_t T = int64_t(x.ids.size());
    const ForwardOutput out = m.forward(x.ids.data(), 1, T);
    for (int64_t t = 0; t + 1 < T; ++t) {
      const float* row = out.logits.f32() + t * V;
      s += row_logsumexp_ref(row, V) - row[x.ids[size_t(t + 1)]];
    }
  }
  return s;
}

void throughput(const Args& a) {
  set_threads(a.threads);
  const ModelConfig cfg = synth_config("llama-1b", a.layers);
  SynthOptions so;
  so.dtype = DType::BF16;
  const double t0 = now_s();
  auto model = synth_decoder(cfg, so);
  std::printf("model: synthetic llama-1b, %d layers, %.3f B params (generated in %.1f s); ctx %lld, %lld windows, "
              "%d threads\n",
              cfg.num_layers, double(model->parameter_count()) * 1e-9, now_s() - t0, (long long)a.ctx,
              (long long)a.windows, a.threads);
  std::mt19937 g(1);
  std::vector<int32_t> stream(size_t(a.ctx * a.windows));
  for (auto& x : stream) x = int32_t(g() % uint32_t(cfg.vocab_size));
  const auto gw = make_windows(stream, a.ctx, Protocol::Gptq, 1);
  const auto lw = make_windows(stream, a.ctx, Protocol::LlamaCpp, 1);
  const double tokens = double(a.ctx * a.windows);
  DecoderLogits src(*model);
  PplOptions batched;
  batched.batch = windows_per_pass(0, a.ctx);
  std::printf("\n| compute | forward(All) + NLL loop tok/s | eval ppl gptq tok/s | eval ppl llama.cpp tok/s | "
              "same, %lld windows per pass | load |\n",
              (long long)batched.batch);
  std::printf("|---|---|---|---|---|---|\n");
  for (ComputeType c : a.types) {
    for (Linear* l : model->all_linears(true)) l->release_packed();
    model->set_compute(c);
    model->forward(gw[0].ids.data(), 1, 8);  // pack weights, JIT kernels
    double base_nll = 0, ppl_nll = 0;
    const Timing base = time_runs([&] { base_nll = forward_all_nll(*model, gw); }, 1, 0);
    const Timing tg = time_runs([&] { ppl_nll = perplexity(src, gw).nll_sum; }, 1, 0);
    const Timing tl = time_runs([&] { perplexity(src, lw); }, 1, 0);
    const Timing tb = time_runs([&] { perplexity(src, lw, batched); }, 1, 0);
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %s |\n", compute_type_name(c), tokens / base.best, tokens / tg.best,
                tokens / tl.best, tokens / tb.best, load_line().c_str());
    std::printf("  (NLL sums agree: %.6f vs %.6f)\n", base_nll, ppl_nll);
    std::fflush(stdout);
  }
}

// Bytes of a top-k reference file with these shapes (written with zeros, then measured).
uint64_t compact_bytes(int64_t windows, int64_t ctx, int64_t first, int k, int64_t vocab, DType dt) {
  KldReference r;
  r.windows = windows;
  r.meta.ctx = ctx;
  r.meta.first_scored = first;
  r.meta.k = k;
  r.meta.vocab_size = vocab;
  r.meta.model_hash = r.meta.tokenizer_sha256 = r.meta.data_sha256 = std::string(64, '0');
  r.meta.model_arch = "llama|vocab=" + std::to_string(vocab) + "|hidden=4096|layers=32|heads=32/8|head_dim=128|ffn=14336";
  r.meta.data = "../shared/data/wikitext-2-raw/wiki.test.raw";
  const int64_t n = windows * (ctx - 1 - first);
  r.tokens.assign(size_t(windows * ctx), 0);
  r.topk_ids.assign(size_t(n * k), 0);
  r.topk_logprobs.assign(size_t(n * k), 0.0f);
  r.tail_mass.assign(size_t(n), 0.0f);
  r.target_logprob.assign(size_t(n), 0.0f);
  const std::string path = std::filesystem::temp_directory_path().string() + "/calq_bench_ref.safetensors";
  write_kld_reference(r, path, dt);
  const uint64_t bytes = std::filesystem::file_size(path);
  std::filesystem::remove(path);
  return bytes;
}

void sizes() {
  const std::string root = calq::bench::data_root();
  const std::string wiki = root + "/data/wikitext-2-raw/wiki.test.raw";
  std::printf("\nKLD reference size for WikiText-2 test (k = 32):\n");
  std::printf("| tokenizer (vocab) | protocol | ctx | windows | scored tokens | top-32 F32 | top-32 F16 | llama.cpp full "
              "vocab | ratio (F32) |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const char* name : {"llama2", "llama3"}) {
    const auto tok = Tokenizer::from_path(root + "/tokenizers/" + name + "/tokenizer.json");
    struct P {
      Protocol p;
      TextMode mode;
      int64_t ctx;
    };
    for (const P& p : {P{Protocol::Gptq, TextMode::HfRows, 2048}, P{Protocol::LlamaCpp, TextMode::Raw, 512}}) {
      const auto stream = token_stream(*tok, load_eval_text(wiki, p.mode).text);
      const int64_t windows = int64_t(stream.size()) / p.ctx;
      const int64_t first = p.p == Protocol::LlamaCpp ? p.ctx / 2 : 0;
      const int64_t n = windows * (p.ctx - 1 - first);
      const int64_t V = tok->vocab_size();
      const uint64_t c32 = compact_bytes(windows, p.ctx, first, 32, V, DType::F32);
      const uint64_t c16 = compact_bytes(windows, p.ctx, first, 32, V, DType::F16);
      const uint64_t full = llamacpp_kld_base_bytes(windows, p.ctx, n, V);
      std::printf("| %s (%lld) | %s | %lld | %lld | %lld | %.1f MB | %.1f MB | %.2f GB | %.0fx |\n", name, (long long)V,
                  protocol_name(p.p), (long long)p.ctx, (long long)windows, (long long)n, c32 / 1e6, c16 / 1e6,
                  full / 1e9, double(full) / double(c32));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::printf("bench_eval_ppl; conditions at start: %s\n", load_line().c_str());
  sizes();
  if (!a.sizes_only) throughput(a);
  return 0;
}
