// The study's grid: the cells (model × calibration set × method × KV setting × seed, minus the
// exclusions) and the steps that make their artifacts, each addressed by the hash of what
// determines it (study/keys.h), so work shared by cells is one step:
//   model   a synthetic model folder (real models are read where they are)
//   calib   a calibration set, per (tokenizer, builder spec, seed)
//   stats   activation statistics, per (model, calibration set)   — shared by every method
//   kld-ref the float model's top-k reference, per (model, evaluation data)
//   quant   a quantized model (qstate + fake-quant folder), per (model, set, method settings)
//   eval    one evaluation of one model (float or quantized) with one KV setting
// Methods without calibration (float, RTN) have no calibration axis and are not repeated per seed.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "study/config.h"
#include "util/json.h"

namespace calq::study {

enum class StepKind { Model, Calib, Stats, KldRef, Quant, Eval };
const char* step_kind_name(StepKind k);  // "model", "calib", "stats", "kld-ref", "quant", "eval"

struct Step {
  StepKind kind = StepKind::Eval;
  std::string key;      // sha256 of `identity` (the artifact's folder name)
  Json identity;        // everything that determines the artifact (canonical JSON)
  std::string label;    // "quant stories260K c4 gptq-w4g128"
  std::vector<std::string> deps;   // keys of the steps whose artifacts it reads
  std::vector<std::string> cells;  // keys of the cells that need it
  int model = -1, calib = -1, method = -1, eval = -1, kv = -1;
  uint64_t seed = 0;
};

struct Cell {
  std::string key;      // sha256 of the cell's identity
  int position = 0;     // order in the grid (the store, tables and Slurm indices follow it)
  int model = 0, calib = -1, method = 0, kv = 0;  // indices into the config; calib -1: none
  uint64_t seed = 0;
  bool seeded = false;  // the seed matters (calibrated methods)
  std::string quant;    // key of the quant step, "" for the float baseline
  std::vector<std::string> evals;  // keys of the eval steps, in config order of the evaluations
  Json identity;
  // "stories260K | c4 | gptq-w4g128 | kv16 | seed 0"
  std::string label(const StudyConfig& c) const;
};

// Identities of what the steps read, computed once per study run: the content hash of each real
// model folder (eval::model_hash + tokenizer), of each data file, of each tokenizer.
struct Inputs {
  std::vector<std::string> model_id;        // per model: content id (synthetic: the model step key)
  std::vector<std::string> tokenizer_sha;   // per model: sha256 of the tokenizer.json it uses
  std::vector<std::string> model_dir;       // per model: the folder (synthetic: in the cache)
};

struct Grid {
  std::vector<Cell> cells;
  std::map<std::string, Step> steps;        // by key
  std::vector<std::string> order;           // step keys in a valid execution order
  Inputs inputs;
  const Step& step(const std::string& key) const;
  const Cell* cell(const std::string& key) const;
};

// Expands the config. Reads the model configs and hashes the input files (not the weights: the
// model id reads a few MB per model, eval/identity.h).
Grid build_grid(const StudyConfig& c);

// The folder of a step's artifact: <cache>/<kind>/<key>.
std::string artifact_dir(const StudyConfig& c, const Step& s);

}  // namespace calq::study
