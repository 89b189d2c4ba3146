#include "study/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "eval/task_data.h"
#include "io/mapped_file.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "model/config.h"
#include "study/steps.h"
#include "util/error.h"

namespace calq::study {

namespace fs = std::filesystem;

namespace {

// Constants of the cost model, measured on the development machine (docs/study.md, "Estimates").
constexpr double kStepOverhead = 0.05;   // s: opening files, threads, bookkeeping
constexpr double kTokenizeRate = 2.5e6;  // bytes of text tokenized per second
constexpr double kWriteRate = 400e6;     // bytes written per second
constexpr double kReadRate = 1.5e9;      // bytes of weights read (mapped) per second
constexpr double kStatsPerElement = 40;  // flop-equivalents per observed activation (moments, histogram, top values)
constexpr double kSynthPerParam = 30;    // flop-equivalents per generated weight (Box-Muller)

struct Shape {
  double H = 0, I = 0, L = 0, V = 0, qd = 0, kvd = 0;
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
  return shape_of(ModelConfig::from_json(load_json_file(f), f));
}

// How well the GEMMs of a hidden size use the machine: small matrices are overhead-bound.
double efficiency(const Shape& s) { return s.H / (s.H + 768.0); }

// One forward pass over n tokens in sequences of t, with r lm_head rows.
double fwd_flops(const Shape& s, double n, double t, double r) {
  return 2 * n * s.p_lin + 2 * n * s.L * t * s.qd + 2 * r * s.V * s.H;
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

double mb(double bytes) { return bytes / (1024.0 * 1024.0); }

}  // namespace

Json step_cost(const StudyConfig& c, const Grid& g, const Step& st) {
  const Shape s = model_shape(c, st.model);
  double flops = 0, text = 0, write = 0, mem = 4 * s.p_total, read = 4 * s.p_total;
  switch (st.kind) {
    case StepKind::Model:
      flops = kSynthPerParam * s.p_total;
      write = 4 * s.p_total;
      read = 0;
      mem = 4 * s.p_total / std::max(1.0, s.L);
      break;
    case StepKind::Calib: {
      const CalibSpec& sp = c.calib[size_t(st.calib)].spec;
      const double tokens = double(sp.nsamples * sp.seqlen);
      text = sp.builder == "random-tokens" ? 0 : 4 * tokens;
      write = 4 * tokens;
      read = 0;
      mem = 64 * tokens;
      break;
    }
    case StepKind::Stats: {
      const CalibSpec& sp = c.calib[size_t(st.calib)].spec;
      const double n = double(sp.nsamples * sp.seqlen), t = double(sp.seqlen);
      flops = fwd_flops(s, n, t, 0) + kStatsPerElement * n * s.L * (3 * s.H + s.qd + s.I);
      write = s.L * (3 * s.H + s.qd + s.I) * 8 * 80;
      mem += 4 * double(c.stats_batch * sp.seqlen) * (6 * s.H + 3 * s.I) + write;
      break;
    }
    case StepKind::KldRef:
    case StepKind::Eval: {
      const EvalEntry& e = c.evals[size_t(st.eval)];
      if (e.kind == "tasks") {
        double docs = 0, bytes = 0;
        for (const auto& t : e.tasks) {
          const std::string f = path_join(e.task_dir, eval::task_file_name(eval::canonical_task_name(t)));
          const double fb = file_bytes(f);
          const double lines = std::max(1.0, fb / 400.0);  // ~400 bytes per item in the task files
          const double used = e.limit > 0 ? std::min(double(e.limit), lines) : lines;
          docs += used;
          bytes += fb * used / lines;
        }
        const double tokens = bytes / 2.0;  // every choice repeats its context: ~2 bytes of file per scored token
        flops = fwd_flops(s, tokens, 64, tokens / 3);
        text = bytes * 2;
        mem += 4 * 256 * (6 * s.H + 3 * s.I) + 4 * 128 * s.V;
        break;
      }
      double nw, ctx;
      windows_of(e, s, &nw, &ctx);
      const double scored = nw * (e.w.protocol == "llama.cpp" ? ctx / 2 : ctx - 1);
      flops = fwd_flops(s, nw * ctx, ctx, scored) + 10 * scored * s.V;
      if (st.kind == StepKind::KldRef || e.kind == "ppl") text = file_bytes(e.w.data);
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
      const double layers_fwd = fwd_flops(s, n, t, 0);
      const double ins2 = 2 * s.H * s.H + s.qd * s.qd + s.I * s.I;  // Σ in² over a layer's distinct inputs
      if (m == "rtn") {
        flops = 20 * s.p_lin;
      } else if (m == "gptq") {
        // forward of every sub-block on its updated inputs, Hessians, and the solves (Cholesky and
        // the lazy block updates: ~in³ + 2·out·in² per linear).
        const double solve = s.L * (3 * s.H * s.H * s.H + s.qd * s.qd * s.qd + s.I * s.I * s.I +
                                    2 * ((s.qd + 2 * s.kvd) * s.H * s.H + s.H * s.qd * s.qd +
                                         (s.gated ? 2 : 1) * s.I * s.H * s.H + s.H * s.I * s.I));
        flops = 2 * layers_fwd + 2 * n * s.L * ins2 + solve;
        mem += 8 * std::max(s.H, s.I) * std::max(s.H, s.I) * 2;
      } else if (m == "awq") {
        const int grid = me.options.awq_grid;
        flops = (grid + 3) * layers_fwd + (me.options.awq_clip ? 20 * 2 * s.p_lin * std::min(n, 512.0) : 0);
        mem += 4 * n * (2 * s.H + s.I);
      } else {  // smoothquant, naive-w8a8
        flops = 2 * layers_fwd + 20 * s.p_lin;
      }
      mem += 2 * 4 * n * s.H + 4 * double(c.quant_batch) * t * (6 * s.H + 3 * s.I);
      write = 4 * s.p_total + (m == "rtn" || m == "gptq" || m == "awq" ? s.p_lin * 2 : 0);
      read = 8 * s.p_total;  // the source, then the state when the fake-quant folder is written
      break;
    }
  }
  return {{"flops", flops}, {"text_bytes", text}, {"write_bytes", write}, {"read_bytes", read},
          {"hidden", s.H}, {"params", s.p_total}, {"memory_mb", mb(mem)}};
}

double probe_gflops(int threads) {
  const ThreadScope scope(threads);
  const int64_t m = 256, n = 1024, k = 1024;
  std::vector<float> a(size_t(m * k), 0.5f), b(size_t(n * k), 0.25f), y(size_t(m * n));
  sgemm(true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, y.data(), n);  // warm-up
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double el = 0;
  while (el < 0.3) {
    sgemm(true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, y.data(), n);
    ++reps;
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return 2.0 * double(m * n * k) * reps / el / 1e9;
}

StepEstimate estimate_step(const StudyConfig& c, const Grid& g, const Step& s, double gflops) {
  const Json cost = step_cost(c, g, s);
  StepEstimate e;
  e.key = s.key;
  const double eff = s.kind == StepKind::Model ? 1.0 : efficiency(Shape{cost.at("hidden").get<double>()});
  e.seconds = kStepOverhead + cost.at("flops").get<double>() / (gflops * 1e9 * eff) +
              cost.at("text_bytes").get<double>() / kTokenizeRate + cost.at("write_bytes").get<double>() / kWriteRate +
              cost.at("read_bytes").get<double>() / kReadRate;
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
  p.gflops = o.gflops > 0 ? o.gflops : probe_gflops(p.threads);
  for (const auto& [k, s] : g.steps) {
    StepEstimate e = estimate_step(c, g, s, p.gflops);
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

}  // namespace calq::study
