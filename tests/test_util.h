// Helpers shared by the tests: where the data pack is, and fixture loading.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "util/paths.h"

namespace calq::test {

// $CALQ_DATA, else the ../shared beside the source tree.
inline std::string data(const std::string& rel = "") {
  const std::string root = data_root(CALQ_DEFAULT_DATA);
  return rel.empty() ? root : path_join(root, rel);
}

inline const std::vector<std::string>& tiny_archs() {
  static const std::vector<std::string> a = {"opt", "llama2", "llama3", "mistral", "cohere", "qwen2"};
  return a;
}

// Reads golden/input_ids.json style {"input_ids": [[...], ...]} into a flat vector.
std::vector<int32_t> read_id_batch(const std::string& path, int64_t* batch, int64_t* seq);

// Path of the calq executable built beside the tests.
inline std::string cli() { return CALQ_CLI_PATH; }
// Runs a shell command, returns its exit status and captures stdout+stderr into *out.
int run_command(const std::string& cmd, std::string* out);

}  // namespace calq::test
