// Helpers for the quantization tests: tiny fixtures, deterministic token windows, layer inputs,
// float comparisons.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "calib/calib_set.h"
#include "model/decoder.h"
#include "quant/layer_run.h"
#include "quant/pipeline.h"
#include "quant/layer_state.h"
#include "quant/scale_groups.h"
#include "test_util.h"

namespace calq::test {

inline std::string tiny(const std::string& arch) { return data("models/tiny/" + arch); }

// QuantizeOptions for the method named `name` (parse_method) with `group_size` (and `bits` when
// non-zero) where the method has them.
inline QuantizeOptions method_options(const std::string& name, int group_size = 32, int bits = 0) {
  QuantizeOptions o;
  o.method = parse_method(name);
  if (auto* c = std::get_if<RtnConfig>(&o.method)) {
    c->scheme.group_size = group_size;
    if (bits) c->scheme.bits = bits;
  } else if (auto* g = std::get_if<GptqConfig>(&o.method)) {
    g->group_size = group_size;
    if (bits) g->bits = bits;
  } else if (auto* a = std::get_if<AwqConfig>(&o.method)) {
    a->group_size = group_size;
    if (bits) a->bits = bits;
  }
  return o;
}
// The method's settings inside `o`, to change one: config<GptqConfig>(o).desc_act = true.
template <class C>
C& config(QuantizeOptions& o) {
  return std::get<C>(o.method);
}

// n windows of T ids drawn uniformly from [3, vocab) (seeded).
inline std::vector<int32_t> random_ids(int64_t n, int64_t T, int vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> d(3, vocab - 1);
  std::vector<int32_t> ids(size_t(n * T));
  for (auto& v : ids) v = d(g);
  return ids;
}

inline CalibSet make_calib(const std::vector<int32_t>& ids, int64_t n, int64_t T) {
  CalibSet s;
  s.ids = Tensor::empty(DType::I32, {n, T});
  std::memcpy(s.ids.raw_mut(), ids.data(), ids.size() * 4);
  s.manifest = Json{{"builder", "test-random"}};
  return s;
}

// Inputs of decoder layer i for the windows (float layers 0..i-1).
inline LayerInputs layer_inputs(const Decoder& m, int i, const std::vector<int32_t>& ids, int64_t n, int64_t T) {
  LayerInputs in;
  in.n_seq = n;
  in.seq = T;
  in.batch = 4;
  in.x = m.embed(ids.data(), n, T);
  for (int k = 0; k < i; ++k) in.x = run_layer_chunked(m, k, in);
  return in;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double d = 0;
  for (int64_t k = 0; k < a.numel(); ++k) d = std::max(d, std::fabs(double(a.f32()[k]) - b.f32()[k]));
  return d;
}

inline double max_abs(const Tensor& a) {
  double d = 0;
  for (int64_t k = 0; k < a.numel(); ++k) d = std::max(d, std::fabs(double(a.f32()[k])));
  return d;
}

inline double mse(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t k = 0; k < a.numel(); ++k) s += (double(a.f32()[k]) - b.f32()[k]) * (double(a.f32()[k]) - b.f32()[k]);
  return s / double(a.numel());
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

inline Tensor logits(const Decoder& m, const std::vector<int32_t>& ids, int64_t n, int64_t T) {
  return m.forward(ids.data(), n, T).logits;
}

// A fresh temporary directory under $TMPDIR (removed by the caller's TempDir guard).
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag) {
    std::string tmpl = (std::filesystem::temp_directory_path() / ("calq-" + tag + "-XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return path + "/" + rel; }
};

}  // namespace calq::test
