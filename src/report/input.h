// What a study report is drawn from: plain data that `calq report` builds from loose files
// (report/loose_files.h) and that `calq study report` fills from its results store. The renderer
// (report/report.h) reads nothing else, so both producers get the same page.
//
//  * Result rows: one number per (model, calibration set, method + settings, evaluation), e.g.
//    GPTQ w4 g128 calibrated on "punct", perplexity on WikiText-2 = 7.31 ± 0.05. The float
//    baseline of a model is its row(s) with method "float" (no calibration set).
//  * Statistics inputs: (model, calibration set, path of a `calq stats` file), read with
//    observe/act_stats.h and analysed with analysis/{outliers,compare}.h.
//
// Serialized as JSON (docs/report.md, "Input"): report_input_to_json / report_input_from_json.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "util/json.h"

namespace calq::report {

// Groups of calibration sets; each group gets its own figures (the paper's "nonsensical" data
// quality figures, the ARC/PIQA content figures, the FLORES language figures).
//   quality:  web/in-domain text against nonsense (punctuation, random tokens)
//   content:  task data (arc, piqa, ...)
//   language: one language per set (FLORES codes such as fra_Latn)
//   other:    anything else (mixtures, ...)
const std::vector<std::string>& calib_groups();
// ArgError unless `g` is one of calib_groups().
void check_calib_group(const std::string& g, const std::string& what);

// Quantization settings that tell variants of one method apart. Unset: -1 / NaN / "".
struct MethodSettings {
  int w_bits = -1;          // weight bits
  int group_size = 0;       // 0: unset; -1: per output channel; > 0: columns per group
  double alpha = NAN;       // SmoothQuant / AWQ migration strength
  int a_bits = -1;          // activation bits (W8A8: 8)
  int kv_bits = -1;         // KV-cache bits
  std::string w_granularity, a_granularity, kv_granularity;  // e.g. "per_channel", "per_token"

  bool operator==(const MethodSettings& o) const;
  // Short text: "w4g128", "W8A8 α0.5", "W8A8 per-tensor-static", "" when nothing is set
  // (default granularities, per-channel weights and per-token activations, are not spelled out).
  std::string describe() const;
  // The same without the bits of one axis ("w", "a" or "kv"): variants along that axis share it.
  std::string describe_without(const std::string& axis) const;
};

struct CalibRef {
  std::string label;           // "" for rows without calibration (float, RTN)
  std::string group = "other";  // one of calib_groups()
};

struct ResultRow {
  std::string model;            // model label
  bool synthetic = false;       // random-weight model of a real shape
  CalibRef calib;
  std::string method;           // "float", "rtn", "gptq", "awq", "smoothquant", "naive-w8a8", ...
  MethodSettings settings;
  std::string eval;             // "<metric>:<data>", e.g. "ppl:wikitext2", "kld:wikitext2", "acc:arc_challenge"
  double value = NAN;
  double stderr_ = NAN;         // NaN when unknown
  std::string source;           // where the number came from (a results file, a store row id)

  bool is_float() const { return method == "float"; }
  // Method + settings: the series key and legend of every figure ("GPTQ w4g32").
  std::string method_key() const;
};

// Display name of a method ("gptq" -> "GPTQ", "naive-w8a8" -> "naive W8A8").
std::string method_display(const std::string& method);
// "GPTQ" + "w4g32" -> "GPTQ w4g32" (the legend text of a method and its settings).
std::string method_label(const std::string& method, const std::string& settings);

struct StatsInput {
  std::string model;
  bool synthetic = false;
  CalibRef calib;
  std::string path;  // a `calq stats` file (*.stats.safetensors)
};

struct ReportInput {
  std::string title = "calq study report";
  std::vector<ResultRow> results;
  std::vector<StatsInput> stats;

  // Labels in first-appearance order (models: results, then statistics; calibration sets:
  // statistics, then results): the order of every legend, axis and table, and the key of the
  // fixed colour of each model / calibration set.
  std::vector<std::string> models() const;
  std::vector<CalibRef> calib_sets() const;
  bool synthetic(const std::string& model) const;
  // Throws ArgError naming the row at fault: empty labels, unknown group, one set label with two
  // groups, non-finite value, a float row with a calibration set, duplicate rows.
  void validate() const;
};

// "ppl:wikitext2" -> {"ppl", "wikitext2"}; ArgError unless of that form.
std::pair<std::string, std::string> split_eval(const std::string& eval);
// Axis label of a metric, with its unit and direction: "perplexity (lower is better)".
std::string metric_axis_label(const std::string& metric);
// Whether smaller values are better (ppl, kld) or larger (acc).
bool lower_is_better(const std::string& metric);

// Settings from their JSON (the "settings" of a result row; a study cell's "report_settings"): absent keys unset.
MethodSettings method_settings_from_json(const Json& j, const std::string& what);

Json report_input_to_json(const ReportInput& in);
// `what` names the source in errors (ConfigError on a missing or mistyped field).
ReportInput report_input_from_json(const Json& j, const std::string& what);

}  // namespace calq::report
