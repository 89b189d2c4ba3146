// The result files of a study: what each finished cell and step leaves under <out>/results/,
// written atomically by whoever ran it (the local runner, a Slurm array task), and merged into the
// store (study/store.h) by the runner or `calq study collect`.
//   <out>/results/cells/<cell key>.json   one per finished cell (done or failed):
//       {"format": "calq-study-cell", "version": 1, "cell", "position", "label", "model", "synthetic",
//        "calib", "calib_group", "seed", "method", "method_label", "settings", "report_settings",
//        "kv", "kv_label", "status", "error", "inputs", "artifacts", "evals": {label: {"kind", "key",
//        "metrics", "data", "settings", "seconds"}}, "seconds", "peak_rss_mb", "finished_utc",
//        "calq_version", "machine"}
//   <out>/results/steps/<step key>.json   one per step built or failed (its artifact record, or
//       {"kind", "key", "label", "status": "failed", "error"}), for timings and `calq study plan`.
#pragma once
#include <map>
#include <string>

#include "study/grid.h"
#include "study/store.h"

namespace calq::study {

std::string cells_dir(const StudyConfig& c);
std::string steps_dir(const StudyConfig& c);

// The store row of a grid cell before it runs (labels and settings; status pending).
CellRow planned_row(const StudyConfig& c, const Grid& g, const Cell& cell);

// The result of a finished cell. `records`: the artifact records of its steps by key (eval
// records carry their results file); `error` empty for a done cell.
Json cell_result(const StudyConfig& c, const Grid& g, const Cell& cell, const std::map<std::string, Json>& records,
                 const std::string& error);

// The report-ready settings of a method + KV setting: w_bits, group_size, alpha, a_bits, kv_bits,
// w_granularity, a_granularity, kv_granularity (absent when unset) — report::MethodSettings' fields.
Json report_settings(const MethodEntry& m, const KvEntry& kv);

void write_cell_result(const StudyConfig& c, const Json& r);
void write_step_result(const StudyConfig& c, const Json& r);

// Imports every result file of the current grid into the store (cells whose file differs from
// the stored one; step records). Returns the number of cells imported.
int collect_results(const StudyConfig& c, const Grid& g, Store& store);

// The step row of an artifact record or failure record.
StepRow step_row(const Json& r);

}  // namespace calq::study
