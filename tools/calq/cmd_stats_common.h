// Small helpers shared by the calib/stats/outliers/compare/imatrix subcommands.
#pragma once
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json.h"

namespace calq::cli {

// "<stem>.json" beside a ".safetensors" path (or "<path>.json").
inline std::string sidecar_json(const std::string& path) {
  const std::string ext = ".safetensors";
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0)
    return path.substr(0, path.size() - ext.size()) + ".json";
  return path + ".json";
}

// Writes `j` (indented) through a temporary file and a rename.
inline void write_json_file(const std::string& path, const Json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw IoError(path + ": cannot write");
    out << j.dump(2) << "\n";
    if (!out) throw IoError(path + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw IoError(path + ": " + ec.message());
}

// The tokenizer of a model folder / tokenizer.json, or null when `path` is empty or (with
// `optional`) has no tokenizer.json.
inline std::unique_ptr<Tokenizer> open_tokenizer(const std::string& path, bool optional) {
  if (path.empty()) return nullptr;
  namespace fs = std::filesystem;
  const bool exists = fs::is_regular_file(path) || fs::is_regular_file(fs::path(path) / "tokenizer.json");
  if (!exists && optional) return nullptr;
  return Tokenizer::from_path(path);
}

}  // namespace calq::cli
