// GPTQ math: Hessian accumulation (observer and reference), the Cholesky-inverse factor, GPTQ with
// an identity Hessian == RTN, GPTQ never worse than RTN on correlated data, act-order / static
// groups g_idx, dead columns, lazy blocks == a plain double-precision Algorithm 1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "observe/hessian.h"
#include "quant/gptq.h"
#include "kernels/linalg.h"
#include "util/error.h"

namespace calq {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// Correlated inputs with a few large channels: X = Z·A, column j scaled by 1 + 4·[j % 17 == 0].
std::vector<float> correlated_inputs(int64_t n, int64_t cols, uint32_t seed) {
  const auto z = randn(size_t(n * cols), seed);
  const auto a = randn(size_t(cols * cols), seed + 1, 0.3f);
  std::vector<float> x(size_t(n * cols), 0.0f);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      double s = z[size_t(r * cols + j)];
      for (int64_t k = 0; k < cols; ++k) s += double(z[size_t(r * cols + k)]) * a[size_t(k * cols + j)];
      x[size_t(r * cols + j)] = float(s * (j % 17 == 0 ? 5.0 : 1.0));
    }
  return x;
}

Hessian hessian_of(const std::vector<float>& x, int64_t cols) {
  Hessian h(cols);
  h.accumulate(x.data(), int64_t(x.size()) / cols);
  h.symmetrize();
  return h;
}

// ||(W - Q) Xᵀ||² in double.
double output_error(const std::vector<float>& w, const Tensor& q, const std::vector<float>& x, int64_t rows,
                    int64_t cols) {
  const int64_t n = int64_t(x.size()) / cols;
  double e = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c)
        s += (double(w[size_t(r * cols + c)]) - q.f32()[r * cols + c]) * x[size_t(t * cols + c)];
      e += s * s;
    }
  return e;
}

GptqConfig cfg(int bits, int group, bool sym = false, bool act = false, bool stat = false, int block = 128) {
  GptqConfig c;
  c.bits = bits;
  c.group_size = group;
  c.sym = sym;
  c.desc_act = act;
  c.static_groups = stat;
  c.block_size = block;
  c.f16_scales = false;
  return c;
}

TEST(QuantGptq, HessianAccumulationMatchesReferenceAndRunningMean) {
  const int64_t cols = 24;
  const auto x1 = randn(size_t(40 * cols), 1), x2 = randn(size_t(13 * cols), 2);
  Hessian a(cols), b(cols), c(cols);
  a.accumulate(x1.data(), 40);
  a.accumulate(x2.data(), 13);
  a.symmetrize();
  b.accumulate_ref(x1.data(), 40);
  b.accumulate_ref(x2.data(), 13);
  std::vector<float> both(x1);
  both.insert(both.end(), x2.begin(), x2.end());
  c.accumulate_ref(both.data(), 53);
  EXPECT_EQ(a.nsamples, 53);
  for (size_t k = 0; k < a.h.size(); ++k) {
    EXPECT_NEAR(a.h[k], b.h[k], 1e-5 * (1 + std::fabs(b.h[k])));
    EXPECT_NEAR(b.h[k], c.h[k], 1e-5 * (1 + std::fabs(c.h[k])));
  }
  // H = 2/N Σ x xᵀ: the diagonal is twice the mean square of each input.
  double ms = 0;
  for (int64_t r = 0; r < 53; ++r) ms += double(both[size_t(r * cols)]) * both[size_t(r * cols)];
  EXPECT_NEAR(a.h[0], 2 * ms / 53, 1e-4);
}

TEST(QuantGptq, CollectorSharesOneHessianPerInput) {
  const int64_t cols = 8;
  HessianCollector hc({{"q", "k", "v"}, {"o"}});
  auto x = randn(size_t(5 * cols), 3), y = randn(size_t(5 * cols), 4);
  EXPECT_TRUE(hc.wants("k"));
  EXPECT_FALSE(hc.wants("down"));
  hc.on_linear_input("q", x.data(), 5, cols);
  hc.on_linear_input("k", x.data(), 5, cols);
  hc.on_linear_input("v", x.data(), 5, cols);
  hc.on_linear_input("o", y.data(), 5, cols);
  // A second batch reusing the same buffer is a new batch, not a repeat.
  x = randn(size_t(5 * cols), 5);
  hc.on_linear_input("q", x.data(), 5, cols);
  hc.on_linear_input("k", x.data(), 5, cols);
  hc.on_linear_input("v", x.data(), 5, cols);
  EXPECT_EQ(hc.get("q").get(), hc.get("v").get());
  EXPECT_NE(hc.get("q").get(), hc.get("o").get());
  EXPECT_EQ(hc.get("k")->nsamples, 10);
  EXPECT_EQ(hc.get("o")->nsamples, 5);
  EXPECT_THROW(hc.get("down"), ArgError);
  HessianCollector bad({{"a"}});
  bad.on_linear_input("a", x.data(), 5, cols);
  EXPECT_THROW(bad.on_linear_input("a", x.data(), 5, cols - 1), ArgError);
}

TEST(QuantGptq, CholeskyInverseFactorMatchesReference) {
  const int64_t n = 40;
  const auto x = correlated_inputs(200, n, 9);
  Hessian h = hessian_of(x, n);
  for (int64_t i = 0; i < n; ++i) h.h[size_t(i * n + i)] += 0.01f;
  std::vector<double> hd(h.h.begin(), h.h.end());
  const std::vector<double> ref = cholesky_inverse_upper_ref(hd, n);
  std::vector<float> f(h.h);
  ASSERT_TRUE(cholesky_inverse_upper(f.data(), n));
  ASSERT_TRUE(cholesky_inverse_upper(hd.data(), n));
  double scale = 0;
  for (double v : ref) scale = std::max(scale, std::fabs(v));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) {
      EXPECT_NEAR(hd[size_t(i * n + j)], ref[size_t(i * n + j)], 1e-9 * scale);
      EXPECT_NEAR(f[size_t(i * n + j)], ref[size_t(i * n + j)], 2e-3 * scale);
    }
  std::vector<float> neg(size_t(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i) neg[size_t(i * n + i)] = -1.0f;
  EXPECT_FALSE(cholesky_inverse_upper(neg.data(), n));
}

TEST(QuantGptq, IdentityHessianEqualsRtn) {
  const int64_t rows = 20, cols = 100;
  const auto w = randn(size_t(rows * cols), 21);
  Hessian h(cols);
  for (int64_t i = 0; i < cols; ++i) h.h[size_t(i * cols + i)] = 1.0f;
  h.nsamples = 1;
  for (int group : {-1, 32, 128})
    for (bool sym : {false, true})
      for (bool act : {false, true})
        for (int block : {128, 16}) {
          const GptqConfig c = cfg(4, group, sym, act, false, block);
          const GptqResult g = gptq_quantize(w.data(), rows, cols, h, c);
          const QuantizedWeight r = quantize_rtn(w.data(), rows, cols, c.scheme());
          EXPECT_EQ(g.qw.q, r.q) << "group " << group << " sym " << sym << " act " << act << " block " << block;
          EXPECT_EQ(g.qw.scale, r.scale);
          EXPECT_EQ(g.qw.zero, r.zero);
          EXPECT_EQ(g.qw.g_idx, r.g_idx);
        }
}

TEST(QuantGptq, NeverWorseThanRtnOnCorrelatedData) {
  const int64_t rows = 48, cols = 96, n = 600;
  const auto x = correlated_inputs(n, cols, 31);
  const auto w = randn(size_t(rows * cols), 32);
  const Hessian h = hessian_of(x, cols);
  struct Case {
    int bits, group;
    bool sym, act, stat;
  };
  for (const Case k : {Case{4, -1, false, false, false}, Case{4, 32, false, false, false}, Case{3, 32, true, false, false},
                       Case{4, 32, false, true, false}, Case{4, 32, false, true, true}, Case{2, -1, false, true, false},
                       Case{8, 32, false, false, false}}) {
    const GptqConfig c = cfg(k.bits, k.group, k.sym, k.act, k.stat);
    const GptqResult g = gptq_quantize(w.data(), rows, cols, h, c);
    const double eg = output_error(w, g.qw.dequantize(), x, rows, cols);
    const double er = output_error(w, quantize_rtn(w.data(), rows, cols, c.scheme()).dequantize(), x, rows, cols);
    EXPECT_LT(eg, er) << "bits " << k.bits << " group " << k.group << " act " << k.act << " static " << k.stat;
    if (k.bits <= 4) {
      EXPECT_LT(eg, 0.8 * er) << "GPTQ should clearly beat RTN here";
    }
    // The reported error is tr((W-Q) H (W-Q)ᵀ) = 2/N ||(W-Q)Xᵀ||².
    EXPECT_NEAR(g.error, 2.0 * eg / n, 1e-3 * g.error);
    EXPECT_GT(g.rel_error(), 0.0);
    EXPECT_LT(g.rel_error(), 1.0);
  }
}

TEST(QuantGptq, ActOrderGroupIndexIsConsistent) {
  const int64_t rows = 16, cols = 70, G = 16;
  const auto x = correlated_inputs(300, cols, 41);
  const auto w = randn(size_t(rows * cols), 42);
  const Hessian h = hessian_of(x, cols);
  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
    return h.h[size_t(a * cols + a)] > h.h[size_t(b * cols + b)];
  });
  // act-order: groups are consecutive in the permuted order; g_idx maps each column to its group.
  const GptqResult a = gptq_quantize(w.data(), rows, cols, h, cfg(4, int(G), false, true, false));
  ASSERT_EQ(a.qw.n_groups(), (cols + G - 1) / G);
  std::vector<int> members(size_t(a.qw.n_groups()), 0);
  for (int64_t k = 0; k < cols; ++k) {
    EXPECT_EQ(a.qw.g_idx[size_t(perm[size_t(k)])], k / G);
    ++members[size_t(a.qw.g_idx[size_t(k)])];
  }
  for (int64_t g = 0; g + 1 < a.qw.n_groups(); ++g) EXPECT_EQ(members[size_t(g)], G);
  EXPECT_EQ(members.back(), cols % G);
  // Every code dequantizes with its g_idx group into a value of that group's grid: re-quantizing the
  // dequantized weight with the same parameters gives the same codes.
  const Tensor dq = a.qw.dequantize();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t k = r * a.qw.n_groups() + a.qw.g_idx[size_t(c)];
      const AffineParams p{a.qw.scale[size_t(k)], a.qw.zero[size_t(k)]};
      EXPECT_EQ(quantize_code(dq.f32()[r * cols + c], p, 15), a.qw.q[size_t(r * cols + c)]);
    }
  // static groups: parameters fixed per natural column group, so g_idx = c / G under act-order too.
  const GptqResult s = gptq_quantize(w.data(), rows, cols, h, cfg(4, int(G), false, true, true));
  for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(s.qw.g_idx[size_t(c)], c / G);
  // ... and those parameters are RTN's (computed before any update).
  const QuantizedWeight r = quantize_rtn(w.data(), rows, cols, cfg(4, int(G)).scheme());
  EXPECT_EQ(s.qw.scale, r.scale);
  EXPECT_EQ(s.qw.zero, r.zero);
}

TEST(QuantGptq, DeadColumnsBecomeZero) {
  const int64_t rows = 8, cols = 32;
  auto x = correlated_inputs(100, cols, 51);
  for (int64_t t = 0; t < 100; ++t) x[size_t(t * cols + 5)] = 0.0f;
  const auto w = randn(size_t(rows * cols), 52);
  const GptqResult g = gptq_quantize(w.data(), rows, cols, hessian_of(x, cols), cfg(4, 16));
  EXPECT_EQ(g.dead_columns, 1);
  const Tensor dq = g.qw.dequantize();
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(dq.f32()[r * cols + 5], 0.0f);
}

// Algorithm 1 without lazy batching, in double: quantize column i, propagate its error to every
// later column through row i of the upper Cholesky factor of H⁻¹.
QuantizedWeight gptq_scalar_reference(const std::vector<float>& w0, int64_t rows, int64_t cols, const Hessian& h,
                                      const GptqConfig& c) {
  std::vector<double> H(h.h.begin(), h.h.end());
  double mean = 0;
  for (int64_t i = 0; i < cols; ++i) mean += H[size_t(i * cols + i)];
  mean /= double(cols);
  for (int64_t i = 0; i < cols; ++i) H[size_t(i * cols + i)] += c.percdamp * mean;
  const auto U = cholesky_inverse_upper_ref(H, cols);
  const QuantScheme s = c.scheme();
  QuantizedWeight qw = make_quantized_weight(rows, cols, s);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> wr(w0.begin() + r * cols, w0.begin() + (r + 1) * cols);
    std::vector<float> wf(wr.begin(), wr.end());
    const AffineParams p = find_params(wf.data(), cols, 1, s);
    qw.scale[size_t(r)] = p.scale;
    qw.zero[size_t(r)] = p.zero;
    for (int64_t i = 0; i < cols; ++i) {
      const uint8_t code = quantize_code(float(wr[size_t(i)]), p, s.maxq());
      qw.q[size_t(r * cols + i)] = code;
      const double e = (wr[size_t(i)] - dequantize_code(code, p)) / U[size_t(i * cols + i)];
      for (int64_t j = i + 1; j < cols; ++j) wr[size_t(j)] -= e * U[size_t(i * cols + j)];
    }
  }
  return qw;
}

TEST(QuantGptq, LazyBlocksMatchPlainAlgorithm) {
  const int64_t rows = 32, cols = 80;
  const auto x = correlated_inputs(400, cols, 61);
  const auto w = randn(size_t(rows * cols), 62);
  const Hessian h = hessian_of(x, cols);
  const QuantizedWeight ref = gptq_scalar_reference(w, rows, cols, h, cfg(4, -1));
  for (int block : {1, 7, 32, 128}) {
    const GptqResult g = gptq_quantize(w.data(), rows, cols, h, cfg(4, -1, false, false, false, block));
    int64_t same = 0;
    for (size_t k = 0; k < ref.q.size(); ++k) same += ref.q[k] == g.qw.q[k];
    // float32 vs float64 arithmetic may flip a rounding near a tie, nothing more.
    EXPECT_GE(double(same) / double(ref.q.size()), 0.995) << "block " << block;
  }
}

TEST(QuantGptq, BadInputsAreRejected) {
  const auto w = randn(4 * 8, 71);
  Hessian h(8);
  for (int i = 0; i < 8; ++i) h.h[size_t(i * 8 + i)] = 1.0f;
  EXPECT_THROW(gptq_quantize(w.data(), 4, 16, h, cfg(4, -1)), ArgError);  // wrong Hessian size
  GptqConfig c = cfg(4, -1);
  c.percdamp = -1;
  EXPECT_THROW(gptq_quantize(w.data(), 4, 8, h, c), ArgError);
  EXPECT_THROW(gptq_quantize(w.data(), 4, 8, h, cfg(9, -1)), ArgError);
  EXPECT_THROW(gptq_quantize(w.data(), 4, 8, h, cfg(4, 0)), ArgError);
  EXPECT_THROW(gptq_quantize(w.data(), 4, 8, h, cfg(4, -1, false, false, true)), ArgError);  // static needs groups
  Hessian neg(8);
  for (int i = 0; i < 8; ++i) neg.h[size_t(i * 8 + i)] = -1.0f;
  c = cfg(4, -1);
  c.percdamp = 0;
  EXPECT_THROW(gptq_quantize(w.data(), 4, 8, neg, c), Error);
}

}  // namespace
}  // namespace calq
