// A study: the paper's experiment grid — models × calibration sets × methods (× KV-cache settings)
// × seeds, each cell evaluated on every evaluation — described by one TOML file (docs/study.md).
//
// Why TOML: a study file is written by hand and read by people; TOML has comments, tables of
// tables ([[models]], [[methods]]) that read like the grid's axes, typed values (no YAML
// "norway problem"), and a small, strict grammar. Debian ships a well-kept C++ parser
// (libtomlplusplus-dev, toml++ 3.x). The file is converted to JSON (calq's one config value type)
// right after parsing, so every check below names "FILE: [[methods]] #2: ..." with calq's errors.
//
// Paths in the file are relative to the file's folder; "{data}" stands for the data pack
// ($CALQ_DATA, default ../shared, resolved by the command line).
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "calib/builders.h"
#include "eval/jobs.h"
#include "kernels/kv_quant.h"
#include "model/synthetic.h"
#include "quant/method_options.h"
#include "util/json.h"

namespace calq::study {

struct ModelEntry {
  std::string label;
  std::string path;           // a model folder ("" for a synthetic model: built into the cache)
  std::string compute = "f32";  // evaluations: f32 | bf16
  // Synthetic (`calq synth` preset, random weights; "synthetic" in every table and store row).
  bool synthetic = false;
  std::string preset;
  int layers = 0;
  uint64_t seed = 0;
  OutlierPlan outliers;
  std::string tokenizer;      // synthetic: the model folder whose tokenizer files it gets
};

struct CalibEntry {
  std::string label;
  std::string group = "other";  // quality | content | language | other (the report's groups)
  CalibSpec spec;               // seed: the study's seed of the cell, unless fixed here
  bool fixed_seed = false;
};

struct MethodEntry {
  std::string label;
  bool is_float = false;  // the float baseline ("method = \"float\"")
  MethodOptions options;
  bool needs_calibration() const;
};

struct EvalEntry {
  std::string label;   // the data's short name, e.g. "wikitext2"
  std::string kind;    // ppl | kld | tasks
  eval::WindowSpec w;  // ppl, kld
  int k = 32;          // kld: log-probabilities kept per token in the float reference
  std::vector<std::string> tasks;  // tasks
  int64_t limit = 0;               // tasks: first N documents (0: all)
  std::string task_dir;            // tasks: folder of the task files (default {data}/data/tasks)
};

struct KvEntry {
  std::string label;  // "kv16" (off), "kv4g32", ...
  KvQuant kv;
};

// A cell is left out when it matches an exclude rule; with include rules, it must match one.
// Keys: model, calib, group, method, kv, seed; values are shell globs (* and ?) on the labels.
struct Rule {
  std::map<std::string, std::string> match;
};

struct StudyConfig {
  std::string file, dir;       // the TOML file and its folder
  std::string sha256;          // of the file's bytes
  std::string name;
  std::string out;             // results folder (store, per-cell result files, Slurm scripts)
  std::string cache;           // content-addressed artifacts (default <out>/cache)
  std::string data_root;       // {data}
  std::vector<ModelEntry> models;
  std::vector<CalibEntry> calib;
  std::vector<MethodEntry> methods;
  std::vector<EvalEntry> evals;
  std::vector<KvEntry> kv;     // never empty: {"kv16", off} when the file has no [[kv]]
  std::vector<uint64_t> seeds = {0};
  std::vector<Rule> include, exclude;
  std::set<std::string> keep;  // artifact kinds kept once their last user is done (docs/study.md)
  bool stats = true;           // one activation-statistics pass per model × calibration set
  int64_t quant_batch = 8;     // calibration sequences per forward chunk (calq quantize --batch)
  int64_t stats_batch = 8;     // samples per forward pass of the statistics (calq stats -b)
};

// Reads and checks a study file. `data_root` replaces "{data}"; `out` (when not empty) replaces
// [study] out. Throws IoError (unreadable), FormatError (bad TOML, with line and column) or
// ConfigError naming the table, entry and key at fault.
StudyConfig load_study_config(const std::string& path, const std::string& data_root, const std::string& out = "");

// The same from TOML text (tests); `dir` resolves relative paths.
StudyConfig parse_study_config(const std::string& toml_text, const std::string& what, const std::string& dir,
                               const std::string& data_root, const std::string& out = "");

// The artifact kinds `keep` may name.
const std::vector<std::string>& artifact_kinds();

// Shell-glob match (* any run, ? one character) of a whole label.
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace calq::study
