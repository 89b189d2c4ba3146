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

// GFLOP/s of a float32 GEMM of a transformer-like shape with `threads` threads (a ~0.3 s probe).
double probe_gflops(int threads);

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
  double gflops = 0;                     // the rate used
  int threads = 0;
  std::map<std::string, StepEstimate> steps;
  std::vector<CellEstimate> cells;
  double total_seconds = 0, remaining_seconds = 0, peak_memory_mb = 0;
  std::map<std::string, double> scale_by_kind;  // from the store (1 when none)
};

struct PlanOptions {
  double gflops = 0;  // 0: probe
  int threads = 0;    // threads a step gets (0: every core)
  bool calibrate = true;  // scale by the store's measured timings
};

Plan make_plan(const StudyConfig& c, const Grid& g, const Store* store, const PlanOptions& o);

// The raw estimate of one step at `gflops` (no store calibration).
StepEstimate estimate_step(const StudyConfig& c, const Grid& g, const Step& s, double gflops);

}  // namespace calq::study
