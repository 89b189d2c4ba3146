#include "study/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "eval/task_data.h"
#include "io/mapped_file.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "model/config.h"
#include "study/steps.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace calq::study {

namespace fs = std::filesystem;

namespace {

// Constants of the cost model. Time is work over a rate probed on the machine at plan time (GEMM
// flops over the GEMM rate at the model's width, bytes over the memory fill rate); the constants
// here are mostly structure (passes over a weight), not speed. Speed-like exceptions, measured on
// this project's machine and small next to any 7B step: the tokenizer rate, the per-step overhead,
// GPTQ's per-linear overhead (docs/study.md, "calq study plan").
constexpr double kStepOverhead = 0.05;   // s: opening files, threads, bookkeeping
constexpr double kTokenizeRate = 2.5e6;  // bytes of text tokenized per second, where none was probed
constexpr double kStatsPerElement = 16;  // flop-equivalents per observed activation (moments, histogram, top values)
// Passes over the bytes of a weight when a step makes or rewrites it, each costing what filling fresh
// memory costs (the stream probe): a synthetic weight is generated (Box-Muller), scaled by its
// planted gains and copied into the file's pages; a quantized weight is read, quantized (scales,
// rounding, smoothing, dequantizing) and written as the state and as the fake-quant checkpoint. 30:
// the count measured on both the demo's 768-wide synthetic model and a 4096-wide one (docs/study.md;
// the W8A8 paths' time per weight was not profiled further).
constexpr double kSynthPasses = 4;
constexpr double kQuantPasses = 30;
// AWQ fake-quantizes a group's weights for each grid point: scale, round, clamp, rescale.
constexpr double kTrialPasses = 4;
// A forward's element-wise passes touch activations that are allocated once and reused: no page
// faults, a quarter of the cost of filling fresh memory (as for mapped reads below).
constexpr double kActivationPasses = 0.25;
// GPTQ's factorizations (Cholesky, inverse, Cholesky of the inverse: ~in³ per linear) go a column
// at a time, not as large GEMMs: at about a quarter of the GEMM rate.
constexpr double kFactorizationCost = 4;
// s per linear layer GPTQ solves, beyond its flops (Hessian set-up, damping, the block loop's
// bookkeeping): what a tiny model's GPTQ costs (measured on the demo's 64/128-wide models).
constexpr double kGptqPerLinear = 0.03;
// A mapped weight file already in the page cache costs a minor page fault per page, no zeroing and
// no copy: a quarter of filling fresh memory.
constexpr double kReadPasses = 0.25;
// Every byte written is copied into the file's pages and read again for the artifact's content hash.
constexpr double kWritePasses = 2;

struct Shape {
  double H = 0, I = 0, L = 0, V = 0, qd = 0, kvd = 0, heads = 0;
  bool gated = true;
  double p_lin = 0, p_total = 0;  // linear weights of the decoder layers; everything
  double max_pos = 0;
};

Shape shape_of(const ModelConfig& m) {
  Shape s;
  s.H = m.hidden_size;
  s.I = m.intermediate_size;
  s.L = m.num_layers;
  s.V = m.vocab_size;
  s.qd = m.q_dim();
  s.kvd = m.kv_dim();
  s.heads = m.num_heads;
  s.gated = m.gated_mlp;
  s.p_lin = s.L * (s.qd * s.H * 2 + 2 * s.kvd * s.H + (s.gated ? 3 : 2) * s.I * s.H);
  s.p_total = s.p_lin + s.V * s.H * (m.tie_embeddings ? 1 : 2) + (m.pos == PosKind::Learned ? m.max_position * s.H : 0);
  s.max_pos = m.max_position;
  return s;
}

Shape model_shape(const StudyConfig& c, int model) {
  const ModelEntry& m = c.models[size_t(model)];
  if (m.synthetic) return shape_of(synth_config(m.preset, m.layers));
  const std::string f = path_join(m.path, "config.json");
  if (!m.shape.empty() && !file_exists(f)) return shape_of(synth_config(m.shape));  // weights not there yet
  return shape_of(ModelConfig::from_json(load_json_file(f), f));
}

// One forward pass over n tokens in sequences of t, with r lm_head rows.
double fwd_flops(const Shape& s, double n, double t, double r) {
  return 2 * n * s.p_lin + 2 * n * s.L * t * s.qd + 2 * r * s.V * s.H;
}

// The element-wise work of that pass, in bytes streamed (memory-bound, not GEMM-bound: what
// dominates a tiny model): norms, residuals, RoPE and the MLP activation read and write each
// activation (~3 passes over 4H + q/k/v + 2I per token and layer); the causal softmax makes ~4
// passes over heads·t/2 scores per token and layer; the scored rows' log-softmax ~3 passes over V.
double fwd_bytes(const Shape& s, double n, double t, double r) {
  return kActivationPasses * 4 * (n * s.L * (3 * (4 * s.H + s.qd + 2 * s.kvd + 2 * s.I) + 4 * s.heads * t / 2) + 3 * r * s.V);
}

double file_bytes(const std::string& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0.0 : double(n);
}

// Scored windows of an evaluation text: the first `chunks` windows of ctx tokens (or the whole
// text at ~4 bytes per token).
void windows_of(const EvalEntry& e, const Shape& s, double* n_windows, double* ctx) {
  *ctx = e.w.ctx > 0 ? double(e.w.ctx) : std::min(2048.0, s.max_pos > 0 ? s.max_pos : 2048.0);
  const double all = std::floor(file_bytes(e.w.data) / 4.0 / *ctx);
  *n_windows = e.w.chunks > 0 ? std::min(double(e.w.chunks), std::max(all, 1.0)) : std::max(all, 1.0);
}

// Bytes of the first `limit` lines (items) of a task file (0: all).
double task_bytes(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  double bytes = 0;
  for (int64_t i = 0; (limit <= 0 || i < limit) && std::getline(in, line); ++i) {
    bytes += double(line.size());
  }
  return bytes;
}

double mb(double bytes) { return bytes / (1024.0 * 1024.0); }

}  // namespace

Json step_cost(const StudyConfig& c, const Grid& g, const Step& st) {
  const Shape s = model_shape(c, st.model);
  // write: bytes written to files; read: bytes of files read (mapped); fill: bytes made or rewritten
  // in memory. Each costs what filling fresh memory costs (the stream probe).
  double flops = 0, text = 0, write = 0, fill = 0, fixed = 0, mem = 4 * s.p_total, read = 4 * s.p_total;
  // Steps that tokenize load the tokenizer first: parsing its tokenizer.json (0 when the model is absent).
  const double tokenizer = file_bytes(path_join(tokenizer_dir(c, st.model), "tokenizer.json"));
  switch (st.kind) {
    case StepKind::Model:
      fill = kSynthPasses * 4 * s.p_total;
      write = 4 * s.p_total;
      read = 0;
      mem = 4 * s.p_total / std::max(1.0, s.L);
      break;
    case StepKind::Calib: {
      const CalibSpec& sp = c.calib[size_t(st.calib)].spec;
      const double tokens = double(sp.nsamples * sp.seqlen);
      text = (sp.builder == "random-tokens" ? 0 : 4 * tokens) + tokenizer;
      write = 4 * tokens;
      read = 0;
      mem = 64 * tokens;
      break;
    }
    case StepKind::Stats: {
      const CalibSpec& sp = c.calib[size_t(st.calib)].spec;
      const double n = double(sp.nsamples * sp.seqlen), t = double(sp.seqlen);
      flops = fwd_flops(s, n, t, 0) + kStatsPerElement * n * s.L * (3 * s.H + s.qd + s.I);
      fill = fwd_bytes(s, n, t, 0);
      write = s.L * (3 * s.H + s.qd + s.I) * 8 * 80;
      mem += 4 * double(c.stats_batch * sp.seqlen) * (6 * s.H + 3 * s.I) + write;
      break;
    }
    case StepKind::KldRef:
    case StepKind::Eval: {
      const EvalEntry& e = c.evals[size_t(st.eval)];
      if (e.kind == "tasks") {
        double bytes = 0;
        for (const auto& t : e.tasks) {
          const std::string f = path_join(e.task_dir, eval::task_file_name(eval::canonical_task_name(t)));
          bytes += task_bytes(f, e.limit);
        }
        // Each item's line holds its context once and every choice: the forwards read the context
        // once per choice (~1.5x the line for two to four choices), at ~4 bytes per token; the
        // lm_head scores the choices' tokens (about a third).
        const double tokens = 1.5 * bytes / 4.0;
        flops = fwd_flops(s, tokens, 64, tokens / 3);
        fill = fwd_bytes(s, tokens, 64, tokens / 3);
        text = bytes * 2 + tokenizer;
        mem += 4 * 256 * (6 * s.H + 3 * s.I) + 4 * 128 * s.V;
        break;
      }
      double nw, ctx;
      windows_of(e, s, &nw, &ctx);
      const double scored = nw * (e.w.protocol == "llama.cpp" ? ctx / 2 : ctx - 1);
      flops = fwd_flops(s, nw * ctx, ctx, scored);
      fill = fwd_bytes(s, nw * ctx, ctx, scored);
      text = tokenizer + (st.kind == StepKind::KldRef || e.kind == "ppl" ? file_bytes(e.w.data) : 0);
      if (st.kind == StepKind::KldRef) write = scored * (e.k * 8 + 16);
      mem += 4 * double(e.w.batch) * ctx * (6 * s.H + 3 * s.I) + 4 * 128 * s.V + 4 * ctx * ctx;
      break;
    }
    case StepKind::Quant: {
      const MethodEntry& me = c.methods[size_t(st.method)];
      const std::string m = me.options.to_json().at("method").get<std::string>();
      double n = 0, t = 1;
      if (st.calib >= 0) {
        const CalibSpec& sp = c.calib[size_t(st.calib)].spec;
        n = double(sp.nsamples * sp.seqlen);
        t = double(sp.seqlen);
      }
      const double layers_fwd = fwd_flops(s, n, t, 0), layers_bytes = fwd_bytes(s, n, t, 0);
      const double ins2 = 2 * s.H * s.H + s.qd * s.qd + s.I * s.I;  // Σ in² over a layer's distinct inputs
      if (m == "rtn") {
        flops = 0;
      } else if (m == "gptq") {
        // forward of every sub-block on its updated inputs, Hessians, and the solves (Cholesky and
        // the lazy block updates: ~in³ + 2·out·in² per linear).
        const double solve = s.L * (kFactorizationCost * (3 * s.H * s.H * s.H + s.qd * s.qd * s.qd + s.I * s.I * s.I) +
                                    2 * ((s.qd + 2 * s.kvd) * s.H * s.H + s.H * s.qd * s.qd +
                                         (s.gated ? 2 : 1) * s.I * s.H * s.H + s.H * s.I * s.I));
        flops = 2 * layers_fwd + 2 * n * s.L * ins2 + solve;
        fill = 2 * layers_bytes;
        fixed = kGptqPerLinear * s.L * (s.gated ? 7 : 6);
        mem += 8 * std::max(s.H, s.I) * std::max(s.H, s.I) * 2;
      } else if (m == "awq") {
        const int grid = me.options.awq_grid;
        // AutoAWQ's search: per grid point, the forward of each scaled group's module (attention for
        // q/k/v, o_proj, the MLP for up/gate, down_proj: ~1.3 layer forwards) on its weights
        // fake-quantized for the trial (kTrialPasses over them), then the clip search. Element-wise
        // passes: one layer's worth per grid point (the o_proj and down_proj groups run the linear alone).
        flops = (1.3 * grid + 3) * layers_fwd + (me.options.awq_clip ? 20 * 2 * s.p_lin * std::min(n, 512.0) : 0);
        fill = (1.0 * grid + 3) * layers_bytes + grid * kTrialPasses * 4 * s.p_lin;
        mem += 4 * n * (2 * s.H + s.I);
      } else {  // smoothquant, naive-w8a8: the statistics step's scales, no forward of their own
        flops = 0;
      }
      fill += kQuantPasses * 4 * s.p_lin;
      mem += 2 * 4 * n * s.H + 4 * double(c.quant_batch) * t * (6 * s.H + 3 * s.I);
      write = 4 * s.p_total + (m == "rtn" || m == "gptq" || m == "awq" ? s.p_lin * 2 : 0);
      read = 8 * s.p_total;  // the source, then the state when the fake-quant folder is written
      break;
    }
  }
  return {{"flops", flops}, {"text_bytes", text}, {"write_bytes", write}, {"read_bytes", read},
          {"fill_bytes", fill}, {"fixed_seconds", fixed},
          {"hidden", s.H}, {"params", s.p_total}, {"memory_mb", mb(mem)},
          {"tokenizer", tokenizer > 0 ? tokenizer_dir(c, st.model) : std::string()}};
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// GFLOP/s of Y = A·Bᵀ, A m×k, B n×k: the median over calls made for `seconds` after a warm-up call
// (on a shared machine single calls swing several-fold; the median is the typical one).
double probe_gemm(int64_t m, int64_t n, int64_t k, double seconds) {
  std::vector<float> a(size_t(m * k), 0.5f), b(size_t(n * k), 0.25f), y(size_t(m * n));
  sgemm(true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, y.data(), n);  // warm-up
  std::vector<double> rates;
  const auto t0 = std::chrono::steady_clock::now();
  for (double el = 0; el < seconds || rates.size() < 3;) {
    const auto t1 = std::chrono::steady_clock::now();
    sgemm(true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, y.data(), n);
    const auto t2 = std::chrono::steady_clock::now();
    rates.push_back(2.0 * double(m * n * k) / std::max(1e-9, std::chrono::duration<double>(t2 - t1).count()) / 1e9);
    el = std::chrono::duration<double>(t2 - t0).count();
  }
  return median(rates);
}

}  // namespace

double probe_stream_gbs() {
  // A fresh 64 MiB buffer each time (above glibc's largest mmap threshold, so always new pages):
  // page faults and stores, as
  // when an artifact's bytes are made and copied into a file's pages. Median over the buffers.
  const size_t n = size_t(16) << 20;
  std::vector<double> rates;
  double sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (double el = 0; el < 0.15 || rates.size() < 3;) {
    const auto t1 = std::chrono::steady_clock::now();
    {
      std::vector<float> v(n, 1.0f);
      sink += double(v[n / 2]);
    }
    const auto t2 = std::chrono::steady_clock::now();
    rates.push_back(4.0 * double(n) / std::max(1e-9, std::chrono::duration<double>(t2 - t1).count()) / 1e9);
    el = std::chrono::duration<double>(t2 - t0).count();
  }
  return sink > 0 ? median(rates) : 0;
}

Rates probe_rates(int threads) {
  Rates r;
  {
    const ThreadScope scope(threads);
    r.gemm_small = probe_gemm(256, 128, 128, 0.1);
    // 512 rows: a forward chunk's tokens (fewer rows under-rate the large GEMMs of a 7B forward)
    r.gemm = probe_gemm(512, 1024, 1024, 0.15);
    r.gemm_large = probe_gemm(256, 2048, 4096, 0.15);  // 4.3 GFLOP a call: a few calls, not one
  }
  r.stream = probe_stream_gbs();
  return r;
}

double Rates::gemm_at(double width) const {
  const double w = std::log2(std::clamp(width, 128.0, 4096.0));
  if (w <= 10) return std::exp2(std::log2(gemm_small) + (w - 7) / 3 * (std::log2(gemm) - std::log2(gemm_small)));
  return std::exp2(std::log2(gemm) + (w - 10) / 2 * (std::log2(gemm_large) - std::log2(gemm)));
}

Json Rates::to_json() const {
  return {{"gemm_small_gflops", gemm_small}, {"gemm_gflops", gemm}, {"gemm_large_gflops", gemm_large},
          {"stream_gbs", stream}, {"tokenize_bytes_per_s", tokenize}};
}

void probe_tokenizers(const StudyConfig& c, Rates* r) {
  std::string sample;
  for (const EvalEntry& e : c.evals) {
    if (e.kind != "ppl" || sample.size()) continue;
    std::ifstream in(e.w.data, std::ios::binary);
    sample.resize(size_t(128) << 10);
    in.read(sample.data(), std::streamsize(sample.size()));
    sample.resize(size_t(std::max<std::streamsize>(0, in.gcount())));
  }
  if (sample.size() < 4096) return;
  for (int m = 0; m < int(c.models.size()); ++m) {
    const std::string dir = tokenizer_dir(c, m);
    if (r->tokenize.count(dir) || !fs::exists(path_join(dir, "tokenizer.json"))) continue;
    const auto tok = Tokenizer::from_path(dir);
    std::vector<double> rates;
    for (int i = 0; i < 3; ++i) {  // the median of three: a shared machine's single calls swing
      const auto t0 = std::chrono::steady_clock::now();
      const auto ids = tok->encode(sample);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!ids.empty()) rates.push_back(double(sample.size()) / std::max(1e-6, sec));
    }
    if (!rates.empty()) r->tokenize[dir] = median(rates);
  }
}

Rates Rates::from_json(const Json& j) {
  Rates r;
  if (!j.is_object()) return r;
  r.gemm_small = j.value("gemm_small_gflops", 0.0);
  r.gemm = j.value("gemm_gflops", 0.0);
  r.gemm_large = j.value("gemm_large_gflops", 0.0);
  r.stream = j.value("stream_gbs", 0.0);
  if (j.contains("tokenize_bytes_per_s") && j["tokenize_bytes_per_s"].is_object())
    for (const auto& [dir, v] : j["tokenize_bytes_per_s"].items())
      if (v.is_number() && v.get<double>() > 0) r.tokenize[dir] = v.get<double>();
  return r;
}

Rates Rates::flat(double gflops, double stream_gbs) {
  Rates r;
  r.gemm_small = r.gemm = r.gemm_large = gflops;
  r.stream = stream_gbs;
  return r;
}

StepEstimate estimate_step(const StudyConfig& c, const Grid& g, const Step& s, const Rates& r) {
  const Json cost = step_cost(c, g, s);
  StepEstimate e;
  e.key = s.key;
  const double bytes = kWritePasses * cost.at("write_bytes").get<double>() +
                       kReadPasses * cost.at("read_bytes").get<double>() + cost.value("fill_bytes", 0.0);
  const double gemm = r.gemm_at(cost.at("hidden").get<double>()) * 1e9;
  const auto tok = r.tokenize.find(cost.value("tokenizer", std::string()));
  const double tokenize_rate = tok != r.tokenize.end() ? tok->second : kTokenizeRate;
  e.seconds = kStepOverhead + cost.value("fixed_seconds", 0.0) + cost.at("flops").get<double>() / gemm +
              cost.at("text_bytes").get<double>() / tokenize_rate + bytes / (r.stream * 1e9);
  e.memory_mb = cost.at("memory_mb").get<double>();
  return e;
}

namespace {

// The calibration key of a step: its kind, and for quantization its method.
std::string scale_key(const StudyConfig& c, const Step& s) {
  std::string k = step_kind_name(s.kind);
  if (s.kind == StepKind::Quant) k += ":" + c.methods[size_t(s.method)].options.method;
  if (s.kind == StepKind::Eval) k += ":" + c.evals[size_t(s.eval)].kind;
  return k;
}

}  // namespace

Plan make_plan(const StudyConfig& c, const Grid& g, const Store* store, const PlanOptions& o) {
  Plan p;
  p.threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.rates.gemm > 0) {
    p.rates = o.rates;
  } else if (o.gflops > 0) {
    p.rates = Rates::flat(o.gflops, o.stream_gbs > 0 ? o.stream_gbs : probe_stream_gbs());
  } else {
    p.rates = probe_rates(p.threads);
    if (o.stream_gbs > 0) p.rates.stream = o.stream_gbs;
  }
  probe_tokenizers(c, &p.rates);
  p.gflops = p.rates.gemm;
  for (const auto& [k, s] : g.steps) {
    StepEstimate e = estimate_step(c, g, s, p.rates);
    e.done = artifact_complete(c, s);
    p.steps[k] = e;
  }
  // Cells the store has finished need nothing more, even where `keep` deleted their artifacts.
  std::set<std::string> finished;
  if (store)
    for (const CellRow& r : store->cells())
      if (r.status == "done") finished.insert(r.cell);
  for (auto& [k, e] : p.steps) {
    const Step& s = g.step(k);
    if (!s.cells.empty() && std::all_of(s.cells.begin(), s.cells.end(), [&](const std::string& x) { return finished.count(x) > 0; }))
      e.done = true;
  }
  // Scale by what earlier runs measured: Σ measured / Σ estimated per kind, on this machine.
  if (store && o.calibrate) {
    std::map<std::string, std::pair<double, double>> acc;
    for (const StepRow& r : store->steps()) {
      if (r.status != "done" || !g.steps.count(r.key) || r.seconds <= 0) continue;
      const Step& s = g.step(r.key);
      acc[scale_key(c, s)].first += r.seconds;
      acc[scale_key(c, s)].second += p.steps[r.key].seconds;
    }
    for (const auto& [k, v] : acc)
      if (v.second > 0) p.scale_by_kind[k] = v.first / v.second;
    for (auto& [k, e] : p.steps) {
      auto it = p.scale_by_kind.find(scale_key(c, g.step(k)));
      if (it != p.scale_by_kind.end()) {
        e.scale = it->second;
        e.seconds *= e.scale;
      }
    }
  }
  for (const auto& [k, e] : p.steps) {
    p.total_seconds += e.seconds;
    if (!e.done) p.remaining_seconds += e.seconds;
    p.peak_memory_mb = std::max(p.peak_memory_mb, e.memory_mb);
  }
  for (const Cell& cell : g.cells) {
    CellEstimate ce;
    ce.cell = cell.key;
    ce.done = true;
    for (const auto& [k, s] : g.steps) {
      if (std::find(s.cells.begin(), s.cells.end(), cell.key) == s.cells.end()) continue;
      const StepEstimate& e = p.steps.at(k);
      const bool own = k == cell.quant || std::find(cell.evals.begin(), cell.evals.end(), k) != cell.evals.end();
      if (own) {
        ce.seconds += e.seconds;
        ce.done = ce.done && e.done;
      } else {
        ce.shared_seconds += e.seconds / double(s.cells.size());
      }
      ce.memory_mb = std::max(ce.memory_mb, e.memory_mb);
    }
    if (finished.count(cell.key)) ce.done = true;
    p.cells.push_back(ce);
  }
  return p;
}

std::vector<KindCheck> check_against_store(const StudyConfig& c, const Grid& g, const Store& store, const Rates& r) {
  std::map<std::string, KindCheck> by;
  for (const StepRow& row : store.steps()) {
    if (row.status != "done" || !g.steps.count(row.key) || row.seconds <= 0) continue;
    const Step& s = g.step(row.key);
    KindCheck& k = by[scale_key(c, s)];
    k.kind = scale_key(c, s);
    ++k.steps;
    k.estimated += estimate_step(c, g, s, r).seconds;
    k.measured += row.seconds;
  }
  std::vector<KindCheck> out;
  for (const auto& [name, k] : by) out.push_back(k);
  return out;
}

Rates store_rates(const Store& store) {
  const std::string m = store.meta("rates");
  return m.empty() ? Rates{} : Rates::from_json(Json::parse(m, nullptr, false));
}

}  // namespace calq::study
