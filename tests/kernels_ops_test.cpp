// The vectorised row kernels (ops_fast.cpp) against their scalar references (ops.cpp), on row
// lengths that exercise the 8- and 16-lane tails, on every ISA the CPU runs (capped by CALQ_ISA). Tolerances: norms 2e-6 relative to the output scale
// (f32 vs double sums of squares); activations 1e-6 relative + 1e-6 absolute (exp512 vs std::exp,
// and the reference's own cancellation in 0.5x(1 + tanh z) near tanh = -1, which the fast GELUTanh
// avoids by computing x·sigmoid(2z)); RoPE exact up to contraction (1e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "kernels/vec.h"
#include "qkernels_test_util.h"
#include "tensor/dtype.h"

namespace calq {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f, float shift = 0.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(shift, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& ref, double rel, double abs,
                  const std::string& what) {
  ASSERT_EQ(got.size(), ref.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - ref[i]) <= abs + rel * std::fabs(double(ref[i]))) && bad++ < 3)
      ADD_FAILURE() << what << " [" << i << "]: " << got[i] << " vs " << ref[i];
  EXPECT_EQ(bad, 0) << what;
}

TEST(OpsFast, NormsMatchReference) {
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    for (int64_t n : {1, 7, 16, 33, 64, 2048 + 5}) {
      const int64_t rows = 9;
      const auto x = randn(size_t(rows * n), uint32_t(n), 3.0f, 0.5f);
      const auto w = randn(size_t(n), uint32_t(n + 1)), b = randn(size_t(n), uint32_t(n + 2));
      std::vector<float> a(x.size()), r(x.size());
      rms_norm(x.data(), rows, n, w.data(), 1e-5f, a.data());
      rms_norm_ref(x.data(), rows, n, w.data(), 1e-5f, r.data());
      expect_close(a, r, 2e-6, 1e-6, "rms_norm n=" + std::to_string(n));
      for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
        layer_norm(x.data(), rows, n, w.data(), bias, 1e-5f, a.data());
        layer_norm_ref(x.data(), rows, n, w.data(), bias, 1e-5f, r.data());
        expect_close(a, r, 2e-6, 2e-6, "layer_norm n=" + std::to_string(n));
      }
      // In place (y aliases x) gives the same result.
      std::vector<float> inplace = x;
      rms_norm(inplace.data(), rows, n, w.data(), 1e-5f, inplace.data());
      rms_norm(x.data(), rows, n, w.data(), 1e-5f, a.data());
      EXPECT_EQ(inplace, a);
    }
  }
}

TEST(OpsFast, ActivationsMatchReference) {
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    for (ActKind k : {ActKind::SiLU, ActKind::ReLU, ActKind::GELU, ActKind::GELUTanh}) {
      for (int64_t n : {1, 15, 17, 1000}) {
        auto g = randn(size_t(n), 3, 4.0f), u = randn(size_t(n), 4);
        g[0] = -100.0f;  // exp overflow side
        if (n > 1) g[1] = 90.0f;
        auto gr = g;
        gated_act(g.data(), u.data(), n, k);
        gated_act_ref(gr.data(), u.data(), n, k);
        expect_close(g, gr, 1e-6, 1e-6, "gated_act " + std::to_string(int(k)));
        auto x = randn(size_t(n), 5, 4.0f), xr = x;
        act_inplace(x.data(), n, k);
        act_inplace_ref(xr.data(), n, k);
        expect_close(x, xr, 1e-6, 1e-6, "act_inplace " + std::to_string(int(k)));
      }
    }
  }
}

TEST(OpsFast, RopeMatchesReferenceWithRowStride) {
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    const int heads = 3, dim = 40, rows = 6;
    const int64_t ld = heads * dim + 24;  // q inside a wider fused row
    const RopeTable t = make_rope_table(rope_inv_freq(10000.0, dim), 16, 1.0);
    std::vector<int32_t> pos = {0, 1, 2, 7, 15, 3};
    for (bool inter : {false, true}) {
      auto x = randn(size_t(rows * ld), 9), xr = x;
      apply_rope(x.data(), rows, heads, dim, pos.data(), t, inter, ld);
      apply_rope_ref(xr.data(), rows, heads, dim, pos.data(), t, inter, ld);
      expect_close(x, xr, 1e-6, 1e-6, inter ? "rope interleaved" : "rope rotate_half");
      // Columns beyond heads*dim are untouched.
      const auto orig = randn(size_t(rows * ld), 9);
      for (int r = 0; r < rows; ++r)
        for (int64_t c = heads * dim; c < ld; ++c) EXPECT_EQ(x[size_t(r * ld + c)], orig[size_t(r * ld + c)]);
    }
  }
}

TEST(OpsFast, Bf16ConversionMatchesScalarRounding) {
  // f32_to_bf16_n (vec.h) rounds to nearest even like f32_to_bf16, ties and tails included.
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    for (int64_t n : {1, 7, 8, 9, 16, 23, 100000}) {
      auto x = randn(size_t(n), uint32_t(n), 10.0f);
      x[0] = 1.0f + 0x1p-8f;  // exactly halfway between two bf16 values: rounds to even (1.0)
      std::vector<uint16_t> got(size_t(n) + 1, 0xabcd);
      f32_to_bf16_n(x.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], f32_to_bf16(x[size_t(i)])) << "n=" << n << " i=" << i;
      EXPECT_EQ(got[size_t(n)], 0xabcd);  // nothing written past n
    }
  }
}

}  // namespace
}  // namespace calq
