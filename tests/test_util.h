// Helpers shared by the tests: where the data pack is, and fixture loading.
#pragma once
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "calib/calib_set.h"
#include "io/checkpoint.h"
#include "kernels/gemm.h"

namespace calq::test {

// Results that must not depend on the batch, the rows selected or the thread count: bitwise where
// the float GEMMs compute each row alike whatever the row count (gemm_rows_independent(): oneDNN's
// AVX-512 kernels), else (AVX2) equal within rel · max(1, |want|) — oneDNN's sgemm there rounds
// tail rows and thread splits differently in the last bits (measured: ≤ 1.4e-6 relative on a
// log-probability, a difference of logits ~10 apart; 1e-5 for such differences, 1e-6 for sums).
inline void expect_row_invariant(double got, double want, double rel, const std::string& what = "") {
  if (gemm_rows_independent()) EXPECT_EQ(got, want) << what;
  else EXPECT_NEAR(got, want, rel * std::max(1.0, std::fabs(want))) << what;
}
template <class T>
void expect_row_invariant(const std::vector<T>& got, const std::vector<T>& want, double rel, const std::string& what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  if (gemm_rows_independent()) {
    EXPECT_EQ(got, want) << what;
    return;
  }
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - double(want[i])) <= rel * std::max(1.0, std::fabs(double(want[i])))) && bad++ < 5)
      ADD_FAILURE() << what << " [" << i << "]: " << got[i] << " vs " << want[i];
}

// $CALQ_DATA, else the ../shared beside the source tree.
inline std::string data(const std::string& rel = "") {
  const char* env = std::getenv("CALQ_DATA");
  const std::string root = env && *env ? std::string(env) : std::string(CALQ_DEFAULT_DATA);
  return rel.empty() ? root : path_join(root, rel);
}

inline const std::vector<std::string>& tiny_archs() {
  static const std::vector<std::string> a = {"opt", "llama2", "llama3", "mistral", "cohere", "qwen2"};
  return a;
}

// Reads golden/input_ids.json style {"input_ids": [[...], ...]} into a flat vector.
std::vector<int32_t> read_id_batch(const std::string& path, int64_t* batch, int64_t* seq);

// A calibration set of n x T pseudo-random ids in [lo, hi) from a fixed LCG (Numerical Recipes
// constants), so a test's statistics are the same on every machine.
inline CalibSet lcg_calib_set(int64_t n, int64_t T, int32_t lo, int32_t hi, uint32_t seed) {
  CalibSet s;
  s.ids = Tensor::empty(DType::I32, {n, T});
  uint32_t x = seed;
  for (int64_t i = 0; i < n * T; ++i) {
    x = x * 1664525u + 1013904223u;
    s.ids.data_mut<int32_t>()[i] = lo + int32_t((x >> 8) % uint32_t(hi - lo));
  }
  s.manifest = {{"builder", "test"}};
  return s;
}

// A per-process scratch path "calq_<prefix>_<pid>_<name>" in the system temporary directory
// ($TMPDIR, else the platform default), never a fixed absolute path.
inline std::string temp_path(const std::string& prefix, const std::string& name) {
  const std::string leaf = "calq_" + prefix + "_" + std::to_string(::getpid()) + "_" + name;
  return (std::filesystem::temp_directory_path() / leaf).string();
}

// Copies the model folder `src` (config.json, model.safetensors, tokenizer/generation files) to
// `dst`, its float tensors stored as `dtype`; `edit(name, t)` may change each (a writable copy) before
// it is written, e.g. to plant a NaN.
void write_model_copy(const std::string& src, const std::string& dst, DType dtype,
                      const std::function<void(const std::string&, Tensor&)>& edit = {});

// Path of the calq executable built beside the tests.
inline std::string cli() { return CALQ_CLI_PATH; }
// Runs a shell command, returns its exit status and captures stdout+stderr into *out.
int run_command(const std::string& cmd, std::string* out);

}  // namespace calq::test
