// `calq study plan`: the cells, what they share, and an estimate of time and memory per step, per
// cell and in total, from a cost model of each step kind:
//   seconds = overhead + flops / (GEMM rate × efficiency of the kind) + text bytes / tokenizer rate
//             + bytes written / disk rate
// flops count the model's linear layers (2·params per token), attention (2·T·q_dim per token and
// layer), the lm_head rows scored, GPTQ's Hessians (2·N·in² per input) and solves, AWQ's grid search;
// the GEMM rate is measured at plan time by a short sgemm probe (or given). When the store holds
// timings of earlier steps of the same kind on this machine, the estimates are scaled by the ratio
// measured / estimated of those (the cost model calibrates itself on the study's own runs).
// Memory: the model's weights in f32, plus the kind's working set (activations of one forward
// chunk, calibration inputs X_i and X_{i+1}, Hessians, logits chunks).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "study/grid.h"
#include "study/store.h"

namespace calq::study {

// The features of a step the cost model reads (also stored with every step record):
// {"flops", "text_bytes", "write_bytes", "params", "memory_mb"}.
Json step_cost(const StudyConfig& c, const Grid& g, const Step& s);

// The machine's speed as the cost model reads it, measured at plan time (or when a study runs, so
// that its recorded timings can be set against the estimates made at the speed it ran at).
struct Rates {
  // GFLOP/s of float32 GEMMs by widths 128 (tiny models), 1024 and 4096 (7B: a 4096-deep product),
  // with the plan's threads: small GEMMs are overhead-bound, so a model's rate is read at its width.
  double gemm_small = 0, gemm = 0, gemm_large = 0;
  double stream = 0;  // GB/s filling freshly allocated memory (page faults + stores), one thread
  // Bytes of text per second each model's tokenizer encodes (by tokenizer folder): tokenizers differ
  // several-fold (vocabulary, merges), and an evaluation tokenizes its whole text. Missing: a default.
  std::map<std::string, double> tokenize;
  double gemm_at(double width) const;  // interpolated in log(width), clamped to the probed range
  Json to_json() const;
  static Rates from_json(const Json& j);
  static Rates flat(double gflops, double stream_gbs);  // every width at one rate (--gflops)
};
// A ~0.8 s probe: each GEMM shape for ~0.15 s after a warm-up, then the memory fill for ~0.15 s.
Rates probe_rates(int threads);
// Adds the tokenizer rate of every model whose tokenizer is present and not yet in `r`: ~50 ms
// each, encoding the start of the study's first perplexity text (no rate without one).
void probe_tokenizers(const StudyConfig& c, Rates* r);
double probe_stream_gbs();

struct StepEstimate {
  std::string key;
  double seconds = 0, memory_mb = 0;
  bool done = false;        // artifact complete (nothing to do)
  double scale = 1;         // store calibration factor applied
};

struct CellEstimate {
  std::string cell;
  double seconds = 0;       // its own steps (quantization, evaluations)
  double shared_seconds = 0;  // its share of shared steps (each divided among its cells)
  double memory_mb = 0;     // the largest step
  bool done = false;
};

struct Plan {
  double gflops = 0;                     // the 1024-wide GEMM rate used
  Rates rates;                           // every rate used
  int threads = 0;
  std::map<std::string, StepEstimate> steps;
  std::vector<CellEstimate> cells;
  double total_seconds = 0, remaining_seconds = 0, peak_memory_mb = 0;
  std::map<std::string, double> scale_by_kind;  // from the store (1 when none)
};

struct PlanOptions {
  double gflops = 0;  // every GEMM width at this rate (0: probe the three widths)
  double stream_gbs = 0;  // memory fill rate (0: probe)
  Rates rates;        // when set (gemm > 0): use these, no probe (e.g. the rates a study ran at)
  int threads = 0;    // threads a step gets (0: every core)
  bool calibrate = true;  // scale by the store's measured timings
};

Plan make_plan(const StudyConfig& c, const Grid& g, const Store* store, const PlanOptions& o);

// The raw estimate of one step at `r` (no store calibration).
StepEstimate estimate_step(const StudyConfig& c, const Grid& g, const Step& s, const Rates& r);

// The cost model against a store's recorded timings: per calibration group of steps (the step
// kind, quantization per method, evaluation per kind), the steps the store finished, their summed
// raw estimate at `r` and their summed measured seconds.
struct KindCheck {
  std::string kind;  // "stats", "quant:gptq", "eval:ppl", ...
  int steps = 0;
  double estimated = 0, measured = 0;
  double ratio() const { return estimated > 0 ? measured / estimated : 0; }
};
std::vector<KindCheck> check_against_store(const StudyConfig& c, const Grid& g, const Store& store, const Rates& r);
// The rates recorded in a store when its study last ran (gemm 0 when none).
Rates store_rates(const Store& store);

}  // namespace calq::study
