// The results store of a study: one SQLite file (<out>/study.sqlite), written only by the process
// that runs the study or by `calq study collect` (Slurm tasks write result files instead: no
// concurrent SQLite writers over NFS). Every write is one transaction.
//
// Schema (version 1; `meta.schema_version`):
//   meta(key PRIMARY KEY, value)         schema_version, study name, config sha256, calq version
//   cells(cell PRIMARY KEY, position, label, model, synthetic, calib, calib_group, seed, method,
//         method_label, settings JSON, kv JSON, kv_label, status, error, inputs JSON, artifacts JSON,
//         seconds, peak_rss_mb, finished_utc, calq_version, machine JSON)
//                                         one row per cell of the grid; status pending | running |
//                                         done | failed (error says why)
//   metrics(cell, eval, metric, value)    every metric of every evaluation of a cell
//                                         (eval = the evaluation's label, e.g. "wikitext2")
//   evals(cell, eval, kind, eval_key, data JSON, settings JSON, seconds)
//   steps(key PRIMARY KEY, kind, label, status, error, seconds, peak_rss_mb, cost JSON,
//         finished_utc, machine JSON)   every step built (or found built), for timings and plans
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "util/json.h"

struct sqlite3;

namespace calq::study {

constexpr int kStoreSchemaVersion = 1;

struct CellRow {
  std::string cell, label, model, calib, calib_group, method, method_label, kv_label, status, error;
  int position = 0;
  bool synthetic = false;
  int64_t seed = -1;  // -1: not seeded
  Json settings, kv, inputs, artifacts, machine;
  double seconds = 0, peak_rss_mb = 0;
  std::string finished_utc, calq_version;
};

struct MetricRow {
  std::string cell, eval, metric;
  double value = 0;
};

struct StepRow {
  std::string key, kind, label, status, error, finished_utc;
  double seconds = 0, peak_rss_mb = 0;
  Json cost, machine;
};

class Store {
 public:
  // Opens (creating the schema when new) the store at `path`. FormatError for a file of another
  // schema version or not a calq study store; IoError when it cannot be opened.
  static std::unique_ptr<Store> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  void set_meta(const std::string& key, const std::string& value);
  std::string meta(const std::string& key) const;  // "" when absent

  // The grid's cells: rows missing are added as pending, rows of cells no longer in the grid are
  // removed (with their metrics), positions and labels follow the grid. One transaction.
  void sync_cells(const std::vector<CellRow>& planned);
  // A finished (done or failed) cell from its result file (study/results.h): the row, its metrics
  // and evaluations replace what the store had. One transaction.
  void put_cell(const Json& cell_result);
  void set_status(const std::string& cell, const std::string& status, const std::string& error = "");
  void put_step(const StepRow& s);

  std::vector<CellRow> cells() const;  // in grid order
  std::vector<MetricRow> metrics() const;
  std::vector<StepRow> steps() const;
  Json cell_json(const std::string& cell) const;  // the cell's stored result file, null if none

 private:
  Store() = default;
  void exec(const std::string& sql) const;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace calq::study
