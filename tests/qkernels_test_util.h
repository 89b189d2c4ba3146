// Shared by the quantized-kernel tests: random quantized weights in every layout, the ISAs to run
// each kernel on, and the accuracy check.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "io/ggml_quants.h"
#include "kernels/isa.h"
#include "kernels/qgemm.h"
#include "quant/qtensor.h"
#include "tensor/dtype.h"

namespace calq::test {

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// The ISAs to test: scalar up to what the CPU runs, capped by CALQ_ISA (tests/isa_env.cpp).
inline std::vector<Isa> test_isas() {
  static const Isa top = active_isa();  // first use: before any IsaScope changes the ceiling
  std::vector<Isa> v = {Isa::Scalar};
  if (top >= Isa::Avx2) v.push_back(Isa::Avx2);
  if (top >= Isa::Avx512) v.push_back(Isa::Avx512);
  return v;
}

// Sets the ISA ceiling for a scope.
struct IsaScope {
  explicit IsaScope(Isa i) : saved(max_isa()) { set_max_isa(i); }
  ~IsaScope() { set_max_isa(saved); }
  Isa saved;
};

struct QSpec {
  int bits = 4;
  int64_t rows = 0, cols = 0;
  int group = 128;           // -1: per channel
  bool act_order = false;    // g_idx a random permutation of the natural groups (GPTQ desc_act)
  bool sym = false;
  bool f16_scales = true;    // false: f32 scales that are not f16 values
};

inline std::string spec_name(const QSpec& s) {
  return "w" + std::to_string(s.bits) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) + " g" +
         std::to_string(s.group) + (s.act_order ? " act-order" : "") + (s.sym ? " sym" : " asym") +
         (s.f16_scales ? " f16" : " f32");
}

// A random QuantizedWeight as RTN/GPTQ/AWQ produce one (codes, per-group scale and zero, g_idx).
inline QuantizedWeight random_qweight(const QSpec& s, uint32_t seed) {
  std::mt19937 g(seed);
  QuantizedWeight w;
  w.bits = s.bits;
  w.group_size = s.group;
  w.sym = s.sym;
  w.rows = s.rows;
  w.cols = s.cols;
  const int64_t gs = s.group > 0 ? s.group : s.cols;
  const int64_t ng = (s.cols + gs - 1) / gs;
  const int maxq = (1 << s.bits) - 1;
  w.q.resize(size_t(s.rows * s.cols));
  for (auto& q : w.q) q = uint8_t(std::uniform_int_distribution<int>(0, maxq)(g));
  w.scale.resize(size_t(s.rows * ng));
  w.zero.resize(w.scale.size());
  std::uniform_real_distribution<float> sd(0.002f, 0.05f);
  for (size_t i = 0; i < w.scale.size(); ++i) {
    float sc = sd(g);
    sc = s.f16_scales ? f16_to_f32(f32_to_f16(sc)) : sc;
    if (!s.f16_scales && f16_to_f32(f32_to_f16(sc)) == sc) sc = std::nextafter(sc, 1.0f);
    w.scale[i] = sc;
    w.zero[i] = s.sym ? float(1 << (s.bits - 1)) : float(std::uniform_int_distribution<int>(0, maxq)(g));
  }
  std::vector<int32_t> order(size_t(s.cols));
  std::iota(order.begin(), order.end(), 0);
  if (s.act_order) std::shuffle(order.begin(), order.end(), g);
  w.g_idx.resize(size_t(s.cols));
  for (int64_t j = 0; j < s.cols; ++j) w.g_idx[size_t(order[size_t(j)])] = int32_t(j / gs);
  return w;
}

inline QuantCodesView codes_view(const QuantizedWeight& w) {
  QuantCodesView v;
  v.bits = w.bits;
  v.rows = w.rows;
  v.cols = w.cols;
  v.q = w.q.data();
  v.scale = w.scale.data();
  v.zero = w.zero.data();
  v.groups = w.n_groups();
  v.g_idx = w.g_idx.data();
  return v;
}

// GGUF rows of type t quantized from random floats (ggml's reference quantizers).
inline std::vector<uint8_t> random_ggml(ggml::Type t, int64_t n, int64_t k, uint32_t seed) {
  const auto f = randn(size_t(n * k), seed, 0.05f);
  const size_t rs = ggml::row_size(t, k);
  std::vector<uint8_t> b(rs * size_t(n));
  for (int64_t r = 0; r < n; ++r) ggml::quantize_row(t, f.data() + r * k, b.data() + size_t(r) * rs, k);
  return b;
}

// |got - ref| <= rel · Σ_i |x_i w_i| + abs for every output, with Σ|x||w| from the f32 dequantized
// weights (`w` [n, k]). Reports the first few violations.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<float>& x,
                         const std::vector<float>& w, int64_t rows, int64_t n, int64_t k, double rel, double abs,
                         const std::string& what) {
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double mag = 0;
      for (int64_t i = 0; i < k; ++i) mag += std::fabs(double(x[size_t(r * k + i)]) * w[size_t(j * k + i)]);
      const double e = std::fabs(double(got[size_t(r * n + j)]) - ref[size_t(r * n + j)]);
      if (!(e <= rel * mag + abs) && bad++ < 5)
        ADD_FAILURE() << what << ": y[" << r << "," << j << "] = " << got[size_t(r * n + j)] << ", ref "
                      << ref[size_t(r * n + j)] << " (|x||w| " << mag << ")";
    }
  EXPECT_EQ(bad, 0) << what;
}

}  // namespace calq::test
