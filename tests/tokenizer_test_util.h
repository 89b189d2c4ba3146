// Shared by the tokenizer tests: each real tokenizer is loaded once per test binary, and the
// goldens of ../shared/tokenizers/<name>/golden.json are read into plain structs.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace calq::test {

// The tokenizer.json of ../shared/tokenizers/<name> (or models/stories260K for "stories260K"),
// loaded on first use and kept for the rest of the run.
inline const Tokenizer& shared_tokenizer(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[name];
  if (!slot) {
    const bool model = name == "stories260K" || name == "TinyStories-656K";
    const std::string dir = model ? data("models/" + name) : data("tokenizers/" + name);
    slot = Tokenizer::from_path(dir);
  }
  return *slot;
}

struct GoldenEntry {
  std::string source, text;
  std::vector<int32_t> ids_with_special, ids_no_special;
  std::optional<std::vector<int32_t>> ids_split_special;
  std::string decoded, decoded_skip_special;
};

inline std::vector<GoldenEntry> load_golden(const std::string& name) {
  const Json j = load_json_file(data("tokenizers/" + name + "/golden.json"));
  std::vector<GoldenEntry> out;
  for (const auto& e : j) {
    GoldenEntry g;
    g.source = e.at("source").get<std::string>();
    g.text = e.at("text").get<std::string>();
    g.ids_with_special = e.at("ids_with_special").get<std::vector<int32_t>>();
    g.ids_no_special = e.at("ids_no_special").get<std::vector<int32_t>>();
    if (e.contains("ids_split_special")) g.ids_split_special = e.at("ids_split_special").get<std::vector<int32_t>>();
    g.decoded = e.at("decoded").get<std::string>();
    g.decoded_skip_special = e.at("decoded_skip_special").get<std::string>();
    out.push_back(std::move(g));
  }
  return out;
}

inline const std::vector<std::string>& golden_tokenizer_names() {
  static const std::vector<std::string> names = {"llama2", "mistral", "llama3", "qwen3", "gpt2"};
  return names;
}

}  // namespace calq::test
