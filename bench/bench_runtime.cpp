// End-to-end prefill and decode of whole models in several weight forms, in one run, against the
// machine's limits measured in the same run (issue #14 item 6):
//  * pp512: one forward pass over 512 tokens (batch 1, logits of the last position only, as
//    llama-bench's pp), tok/s, and × the fp32 GEMM-bound limit
//      limit tok/s = tokens / (2 · (decoder linear params · tokens + lm_head params · 1) / P)
//    with P the fp32 GEMM peak measured here (bench_util.h measure_peak: best of oneDNN f32 and
//    OpenBLAS sgemm) at the same thread count — the limit bench_prefill uses.
//  * tg128: greedy decoding of 128 tokens after a 16-token prompt with the KV cache
//    (eval::generate_greedy: what `calq generate` runs), tok/s, and the bytes of weights read per
//    token (every linear layer's weight as it runs: packed f32/bf16 or quantized codes + scales,
//    lm_head included) / time per token, as % of the streaming-read bandwidth measured here
//    (bench_util.h memory_bandwidth) at the same thread count.
// Each row is a model path opened with load_model() (LoadOptions::pack): a float folder, a GPTQ
// folder, a GGUF file, a calq quantization state — the loaders and packed weights that calq eval /
// calq generate use. bench/vs_llama_bench.sh makes the models and runs llama-bench after this.
//
// Usage: bench_runtime --row NAME=PATH[@f32][@int8] [--row ...] [--threads 2] [--tokens 512] [--gen 128]
//                      [--prompt 16] [--reps 2]
//   @f32: compute in f32 (default: the weights' natural compute type, bf16 for bf16/quantized).
//   @int8: int8 activations in blocks of 32 (LoadOptions::acts = QActs::Int8, `--int8-acts`):
//          llama.cpp's arithmetic for GGUF Q4_0/Q8_0 weights.
// vs_llama_bench.sh runs it with OMP_WAIT_POLICY=passive, the policy `calq` itself sets: with
// libgomp's default (spinning idle workers) any other load on the 2 cores made a decode step up to
// 10x slower (measured: W4 tg128 3.4 tok/s spinning vs 28 in `calq generate` at the same load).
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "eval/generate.h"
#include "formats/loader.h"
#include "kernels/gemm.h"
#include "kernels/profile.h"
#include "model/linear.h"
#include "tensor/dtype.h"

using namespace calq;
using namespace calq::bench;

namespace {

struct RowSpec {
  std::string name, path;
  bool f32 = false, int8 = false;
};

struct Args {
  std::vector<RowSpec> rows;
  int threads = 2, tokens = 512, gen = 128, prompt = 16, reps = 2;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--row") {
      const size_t eq = v.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "bench_runtime: --row wants NAME=PATH[@f32][@int8], got '%s'\n", v.c_str());
        std::exit(2);
      }
      RowSpec r{v.substr(0, eq), v.substr(eq + 1)};
      auto suffix = [&](const std::string& s) {
        const bool has = r.path.size() > s.size() && r.path.compare(r.path.size() - s.size(), s.size(), s) == 0;
        if (has) r.path.resize(r.path.size() - s.size());
        return has;
      };
      for (bool more = true; more;) {
        more = false;
        if (suffix("@f32")) r.f32 = more = true;
        if (suffix("@int8")) r.int8 = more = true;
      }
      a.rows.push_back(r);
    } else if (k == "--threads") a.threads = std::atoi(v.c_str());
    else if (k == "--tokens") a.tokens = std::atoi(v.c_str());
    else if (k == "--gen") a.gen = std::atoi(v.c_str());
    else if (k == "--prompt") a.prompt = std::atoi(v.c_str());
    else if (k == "--reps") a.reps = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "bench_runtime: unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.rows.empty()) {
    std::fprintf(stderr, "usage: bench_runtime --row NAME=PATH[@f32][@int8] [--row ...] [--threads 2] [--tokens 512] "
                         "[--gen 128] [--prompt 16] [--reps 2]\n");
    std::exit(2);
  }
  return a;
}

// Bytes one token reads of a linear layer's weight as it runs: the quantized form's bytes (codes,
// scales, zeros), or the packed float values: 2 bytes for bf16 compute, and for a bf16 or f16
// checkpoint at f32 compute where oneDNN has no bf16 matmul (kept as 16-bit rows, gemm.h
// HalfStorage); else 4.
size_t weight_bytes(const Linear& l, ComputeType c) {
  if (auto q = l.quantized()) return q->bytes();
  const DType t = l.weight().dtype();
  const bool half_rows = (t == DType::BF16 || t == DType::F16) && !gemm_bf16_native();
  return size_t(l.in) * size_t(l.out) * (c == ComputeType::BF16 || half_rows ? 2 : 4);
}

struct Result {
  std::string name, load;
  double pp = 0, tg = 0;            // tok/s
  double gemm_gflop = 0;            // prefill FLOP (GFLOP) of the linears
  size_t bytes_per_token = 0;       // weights read per decoded token
  std::string compute;
  double gemm_share = 0;  // of decode time: the linear layers (lm_head included)
};

Result run_row(const RowSpec& spec, const Args& a) {
  LoadOptions lo;
  lo.pack = true;
  if (spec.f32) lo.compute = ComputeType::F32;
  if (spec.int8) lo.acts = QActs::Int8;
  const double t0 = now_s();
  auto model = load_model(spec.path, lo);
  const ComputeType c = model->compute();
  Result r;
  r.name = spec.name;
  r.compute = compute_type_name(c);
  int64_t layer_params = 0;
  for (Linear* l : model->all_linears(false)) layer_params += l->in * l->out;
  const Linear& head = model->lm_head();
  for (Linear* l : model->all_linears(true)) r.bytes_per_token += weight_bytes(*l, c);
  const double flops = 2.0 * (double(layer_params) * a.tokens + double(head.in * head.out));
  r.gemm_gflop = flops * 1e-9;
  std::fprintf(stderr, "  %s: %s loaded and packed in %.1f s (%s compute), %.1f MB of weights per token\n",
               spec.name.c_str(), spec.path.c_str(), now_s() - t0, r.compute.c_str(), double(r.bytes_per_token) * 1e-6);

  const int vocab = model->config().vocab_size;
  std::mt19937 g(1);
  std::vector<int32_t> ids(size_t(a.tokens));
  for (auto& x : ids) x = int32_t(g() % uint32_t(vocab));
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::Last;
  const Timing tp = time_runs([&] { model->forward(ids.data(), 1, a.tokens, fo); }, a.reps, 1);
  r.pp = a.tokens / tp.best;

  eval::GenerateOptions go;
  go.n = a.gen + 1;  // the first token comes from the prompt's pass; then `gen` cached steps
  const std::vector<int32_t> prompt(ids.begin(), ids.begin() + std::min<int64_t>(a.prompt, a.tokens));
  eval::GenerateOptions warm = go;
  warm.n = 4;  // first use of the one-row primitives and scratch buffers
  eval::generate_greedy(*model, prompt, warm);
  // Where decode time goes: the kernel profile's linear layers (lm_head included) over the timed
  // runs; the rest is the cached attention, norms, RoPE, embedding and the argmax. Two clock reads
  // per kernel call, ~113 calls per token: negligible.
  auto& prof = kernel_profile();
  prof.reset();
  prof.enabled = true;
  double best = 1e30, total = 0;
  for (int rep = 0; rep < a.reps; ++rep) {
    const auto res = eval::generate_greedy(*model, prompt, go);
    best = std::min(best, res.decode_seconds);
    total += res.decode_seconds + res.prefill_seconds;  // what the profile saw
  }
  prof.enabled = false;
  r.gemm_share = prof.seconds(KernelKind::Gemm) / total;
  r.tg = a.gen / best;
  r.load = load_line();
  std::fprintf(stderr, "  %s: pp%d %.1f tok/s, tg%d %.2f tok/s (%s)\n", spec.name.c_str(), a.tokens, r.pp, a.gen, r.tg,
               r.load.c_str());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  set_threads(a.threads);
  std::printf("bench_runtime: pp%d (batch 1, last-position logits) and tg%d (after a %d-token prompt, KV cache), "
              "%d threads, best of %d -- %s\n", a.tokens, a.gen, a.prompt, a.threads, a.reps, load_line().c_str());
  // The machine's limits, measured before and after the rows (the better of the two is used: the
  // machine is shared, and a limit measured under someone else's load would flatter the rows).
  Peak peak = measure_peak(false, 3);
  double bw = memory_bandwidth(2);
  std::printf("limits at start: fp32 GEMM peak %.1f GFLOP/s (%s), streaming read %.1f GB/s\n", peak.gflops.wall,
              peak.how.c_str(), bw);
  std::fflush(stdout);
  std::vector<Result> res;
  for (const RowSpec& s : a.rows) res.push_back(run_row(s, a));
  const Peak peak2 = measure_peak(false, 3);
  const double bw2 = memory_bandwidth(2);
  std::printf("limits at end: fp32 GEMM peak %.1f GFLOP/s (%s), streaming read %.1f GB/s\n", peak2.gflops.wall,
              peak2.how.c_str(), bw2);
  if (peak2.gflops.wall > peak.gflops.wall) peak = peak2;
  bw = std::max(bw, bw2);

  std::printf("\n| weights | pp%d tok/s | x fp32 limit | prefill GFLOP/s | %% fp32 peak | tg%d tok/s | "
              "weights MB/token | decode GB/s | %% bandwidth | linears %% of decode | compute | load after row |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|\n", a.tokens, a.gen);
  for (const Result& r : res) {
    const double limit = a.tokens / (r.gemm_gflop / peak.gflops.wall);
    const double gflops = r.gemm_gflop * r.pp / a.tokens;
    const double gbs = double(r.bytes_per_token) * r.tg * 1e-9;
    std::printf("| %s | %.1f | %.2f | %.1f | %.0f %% | %.2f | %.1f | %.1f | %.0f %% | %.0f %% | %s | %s |\n", r.name.c_str(),
                r.pp, r.pp / limit, gflops, 100.0 * gflops / peak.gflops.wall, r.tg, double(r.bytes_per_token) * 1e-6, gbs,
                100.0 * gbs / bw, 100.0 * r.gemm_share, r.compute.c_str(), r.load.c_str());
  }
  std::printf("\nfp32 GEMM-bound limit: %.1f tok/s (fp32 GEMM peak %.1f GFLOP/s); bandwidth: %.1f GB/s (best 64 MiB "
              "segment of a 1 GiB streaming read); %s\n",
              a.tokens / (res.front().gemm_gflop / peak.gflops.wall), peak.gflops.wall, bw, load_line().c_str());
  return 0;
}
