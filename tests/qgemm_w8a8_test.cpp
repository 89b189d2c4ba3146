// W8A8 (kernels/qgemm.h): int8 weights with per-output scales × int8 activations quantized per
// token or with a static per-tensor scale. The integer sums are exact and the float epilogue
// rounds in the reference's order, so every ISA must equal w8a8_gemm_ref bitwise. Against the
// fake-quant float path (fake-quantized x times dequantized W in f32): |Δ| <= 1e-6·√k·Σ|x_fq·w| + 1e-6.
#include <gtest/gtest.h>

#include <limits>

#include "kernels/gemm.h"
#include "qkernels_test_util.h"
#include "quant/quantizer.h"
#include "util/error.h"

namespace calq {
namespace {

using test::randn;

struct W8Case {
  std::vector<int8_t> w;
  std::vector<float> scale;
  int64_t n, k;
};

W8Case random_w8(int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 g(seed);
  W8Case c{std::vector<int8_t>(size_t(n * k)), std::vector<float>(size_t(n)), n, k};
  for (auto& v : c.w) v = int8_t(std::uniform_int_distribution<int>(-127, 127)(g));
  for (auto& s : c.scale) s = std::uniform_real_distribution<float>(1e-4f, 1e-2f)(g);
  return c;
}

TEST(W8A8, ActivationCodesAreTheFakeQuantValues) {
  const int64_t rows = 5, k = 77;
  auto x = randn(size_t(rows * k), 1, 3.0f);
  x[10] = 0.0f;
  std::fill(x.begin() + 2 * k, x.begin() + 3 * k, 0.0f);  // an all-zero row: scale 1e-5 / 127
  std::vector<int8_t> q(size_t(rows * 80));
  std::vector<float> s(static_cast<size_t>(rows));
  quantize_act_int8(x.data(), rows, k, W8A8Options{}, q.data(), 80, s.data());
  auto fq = x;
  fake_quant_per_token(fq.data(), rows, k, 8);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) ASSERT_EQ(s[size_t(r)] * float(q[size_t(r * 80 + i)]), fq[size_t(r * k + i)]) << r << "," << i;
    for (int64_t i = k; i < 80; ++i) ASSERT_EQ(q[size_t(r * 80 + i)], 0);
  }
  const W8A8Options st{W8A8Act::PerTensorStatic, 0.01f};  // saturates: |x| up to ~10
  quantize_act_int8(x.data(), rows, k, st, q.data(), 80, s.data());
  fq = x;
  fake_quant_per_tensor_static(fq.data(), rows * k, 0.01f, 8);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < k; ++i) ASSERT_EQ(s[size_t(r)] * float(q[size_t(r * 80 + i)]), fq[size_t(r * k + i)]);
  x[3] = std::nanf("");
  EXPECT_THROW(quantize_act_int8_ref(x.data(), rows, k, W8A8Options{}, q.data(), 80, s.data()), ArgError);
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    x[3] = std::nanf("");
    EXPECT_THROW(quantize_act_int8(x.data(), rows, k, W8A8Options{}, q.data(), 80, s.data()), ArgError) << isa_name(isa);
    x[3] = std::numeric_limits<float>::infinity();
    EXPECT_THROW(quantize_act_int8(x.data(), rows, k, st, q.data(), 80, s.data()), ArgError) << isa_name(isa);
  }
}

// The vectorised quantizer of every ISA against the scalar definition, bitwise, including exact
// ties (x / s = m + 0.5 round to even) and saturation.
TEST(W8A8, ActivationQuantizerIsBitwiseTheReferenceOnEveryIsa) {
  for (int64_t k : {1, 7, 16, 33, 300}) {
    const int64_t rows = 6, ldq = k + 5;
    auto x = randn(size_t(rows * k), uint32_t(k), 2.0f);
    for (int64_t i = 0; i < k; i += 3) x[size_t(i)] = 0.25f * float(int(i % 40) - 20) + 0.125f;  // ties at s = 0.25
    for (const W8A8Options& o : {W8A8Options{}, W8A8Options{W8A8Act::PerTensorStatic, 0.25f}}) {
      std::vector<int8_t> want(size_t(rows * ldq), 99), got(want.size(), 77);
      std::vector<float> sw(static_cast<size_t>(rows)), sg(static_cast<size_t>(rows));
      quantize_act_int8_ref(x.data(), rows, k, o, want.data(), ldq, sw.data());
      for (Isa isa : test::test_isas()) {
        test::IsaScope scope(isa);
        quantize_act_int8(x.data(), rows, k, o, got.data(), ldq, sg.data());
        EXPECT_EQ(got, want) << isa_name(isa) << " k=" << k;
        EXPECT_EQ(sg, sw) << isa_name(isa) << " k=" << k;
      }
    }
  }
}

TEST(W8A8, KernelsEqualReferenceBitwise) {
  uint32_t seed = 10;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{33, 37}, {64, 256}, {50, 1000}, {1, 5}})
    for (const W8A8Options& o : {W8A8Options{}, W8A8Options{W8A8Act::PerTensorStatic, 0.02f}}) {
      const W8Case c = random_w8(n, k, seed++);
      const W8A8Packed ref = w8a8_pack(c.w.data(), c.scale.data(), n, k);
      auto q = pack_w8a8(w8a8_pack(c.w.data(), c.scale.data(), n, k), o);
      for (Isa isa : test::test_isas()) {
        test::IsaScope scope(isa);
        for (int64_t rows : {1, 2, 5, 12, 13, 40}) {
          const auto x = randn(size_t(rows * k), seed++);
          const auto bias = randn(size_t(n), seed++);
          const float* b = rows % 2 ? bias.data() : nullptr;
          std::vector<float> want(size_t(rows * n)), got(want.size(), -7.0f);
          w8a8_gemm_ref(x.data(), rows, ref, o, b, want.data());
          gemm_packed(x.data(), rows, *q, b, got.data());
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << isa_name(isa) << " " << n << "x" << k << " rows=" << rows << " at " << i;
        }
      }
    }
}

TEST(W8A8, MatchesFakeQuantFloatPath) {
  const int64_t n = 48, k = 512, rows = 9;
  const W8Case c = random_w8(n, k, 5);
  std::vector<float> wf(size_t(n * k));
  for (int64_t o = 0; o < n; ++o)
    for (int64_t i = 0; i < k; ++i) wf[size_t(o * k + i)] = c.scale[size_t(o)] * float(c.w[size_t(o * k + i)]);
  auto q = pack_w8a8(w8a8_pack(c.w.data(), c.scale.data(), n, k), W8A8Options{});
  const auto x = randn(size_t(rows * k), 6);
  auto xf = x;
  fake_quant_per_token(xf.data(), rows, k, 8);
  std::vector<float> want(size_t(rows * n)), got(want.size());
  gemm_xwt_ref(xf.data(), rows, k, wf.data(), n, nullptr, want.data());
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    gemm_packed(x.data(), rows, *q, nullptr, got.data());
    test::expect_close(got, want, xf, wf, rows, n, k, 1e-6 * std::sqrt(double(k)), 1e-6, std::string("w8a8 ") + isa_name(isa));
  }
}

TEST(W8A8, FromSymmetricCodesAndBf16Input) {
  test::QSpec s{8, 20, 64, -1, false, true, true};
  const QuantizedWeight qw = test::random_qweight(s, 8);
  const W8A8Packed a = w8a8_pack(test::codes_view(qw));
  for (int64_t o = 0; o < s.rows; ++o) {
    EXPECT_EQ(a.scale[size_t(o)], qw.scale[size_t(o)]);
    for (int64_t i = 0; i < s.cols; ++i) ASSERT_EQ(int(a.weight(o, i)), int(qw.q[size_t(o * s.cols + i)]) - 128);
  }
  auto q = pack_w8a8(w8a8_pack(test::codes_view(qw)), W8A8Options{}, ComputeType::BF16);
  const auto x = randn(size_t(3 * s.cols), 9);
  std::vector<uint16_t> xb(x.size());
  std::vector<float> xr(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = f32_to_bf16(x[i]), xr[i] = bf16_to_f32(xb[i]);
  std::vector<float> y1(size_t(3 * s.rows)), y2(y1.size());
  gemm_packed_bf16(xb.data(), 3, *q, nullptr, y1.data());
  gemm_packed(xr.data(), 3, *q, nullptr, y2.data());
  EXPECT_EQ(y1, y2);
  test::QSpec asym = s;
  asym.sym = false;
  const QuantizedWeight qa = test::random_qweight(asym, 9);
  EXPECT_THROW(w8a8_pack(test::codes_view(qa)), UnsupportedError);
  test::QSpec grouped{8, 4, 64, 32, false, true, true};
  const QuantizedWeight qg = test::random_qweight(grouped, 10);
  EXPECT_THROW(w8a8_pack(test::codes_view(qg)), UnsupportedError);
  EXPECT_THROW(pack_w8a8(w8a8_pack(test::codes_view(qw)), W8A8Options{W8A8Act::PerTensorStatic, 0.0f}), ArgError);
}

}  // namespace
}  // namespace calq
