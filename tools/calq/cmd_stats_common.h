// Small helpers shared by the calib/stats/outliers/compare/imatrix subcommands.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "formats/gguf_tokenizer.h"
#include "io/gguf.h"
#include "io/mapped_file.h"  // write_json_atomic
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json.h"

namespace calq::cli {

// "<stem>.json" beside a ".safetensors" path (or "<path>.json").
inline std::string sidecar_json(const std::string& path) {
  const std::string ext = ".safetensors";
  if (path.size() > ext.size() && path.ends_with(ext)) return path.substr(0, path.size() - ext.size()) + ".json";
  return path + ".json";
}

// The tokenizer of a model folder / tokenizer.json, or null when `path` is empty or (with
// `optional`) has no tokenizer.json.
inline std::unique_ptr<Tokenizer> open_tokenizer(const std::string& path, bool optional) {
  if (path.empty()) return nullptr;
  namespace fs = std::filesystem;
  if (path.ends_with(".gguf")) {  // the tokenizer a GGUF file carries
    auto tok = load_gguf_tokenizer(*gguf::File::open(path));
    if (!tok && !optional) throw ArgError(path + ": the GGUF file carries no tokenizer");
    return tok;
  }
  const bool exists = fs::is_regular_file(path) || fs::is_regular_file(fs::path(path) / "tokenizer.json");
  if (!exists && optional) return nullptr;
  return Tokenizer::from_path(path);
}

}  // namespace calq::cli
