// Results files: one JSON shape for every evaluation and model kind, so that a study can collect
// them (docs/eval.md):
//   {"calq_version", "evaluation": "ppl"|"kld"|"tasks", "created_utc",
//    "model": {"path", "format", "hash", "hash_method", "arch", "tokenizer_sha256"},
//    "data": {...files and their sha256...}, "settings": {...}, "elapsed_s",
//    "metrics": {flat name -> number}, "details": {...}}
#pragma once
#include <string>

#include "util/json.h"

namespace calq::eval {

struct ModelInfo {
  std::string path, format, hash, arch, tokenizer_sha256;
};

Json make_results(const std::string& evaluation, const ModelInfo& model, const Json& data, const Json& settings,
                  const Json& metrics, double elapsed_s, const Json& details = Json::object());

// Pretty JSON, written atomically (temp file + rename).
void write_results(const std::string& path, const Json& results);

}  // namespace calq::eval
