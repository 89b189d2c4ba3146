// `calq study table`: the store as the paper's tables. Per model and evaluation metric, a pivot of
// calibration sets (rows) × methods (columns), each value with its change against the model's float
// baseline; and the robustness summary per model and method — the spread of the metric across
// calibration sets (max − min), absolute and relative to the float model — the paper's finding in
// one number per method. Markdown or CSV. Only finished (done) cells are shown.
//
// Metrics: ppl → "ppl:<eval>" (perplexity, Δ in % of float), kld → "kld:<eval>" (mean KL
// divergence vs the float model, Δ = the value), tasks → "acc:<task>" (accuracy in %, Δ in points).
// These are the evaluation names of the report's input (src/report/input.h).
#pragma once
#include <string>
#include <vector>

#include "study/config.h"
#include "study/store.h"

namespace calq::study {

// One number of the study, as the report reads it (report::ResultRow's fields).
struct ResultRecord {
  std::string cell, model, calib, calib_group, method, method_label, kv_label, eval;  // eval "ppl:wikitext2"
  bool synthetic = false;
  int64_t seed = -1;
  Json settings;  // report settings: w_bits, group_size, alpha, a_bits, kv_bits, *_granularity
  double value = 0, stderr_ = -1;  // stderr -1: unknown
};

// Every displayed number of the done cells, in grid order (the feed of `calq study report`).
std::vector<ResultRecord> result_records(const Store& s);

struct TableOptions {
  std::string format = "md";          // md | csv
  std::vector<std::string> metrics;   // only these ("ppl:wikitext2", "acc:*"); empty: all
  bool robustness = true;             // md: add the robustness summary
};

// The pivot tables (md) or one long CSV table.
std::string render_tables(const Store& s, const TableOptions& o);
// The robustness summary alone (md or csv).
std::string render_robustness(const Store& s, const TableOptions& o);

}  // namespace calq::study
