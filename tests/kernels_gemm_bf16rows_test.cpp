// Weights kept as bf16 or f16 rows (gemm.h HalfStorage::Rows; the default on CPUs without AVX-512)
// against the scalar reference gemm_xwt_ref on the widened weights: decode rows (1-4: calq's GEMV,
// AVX2 and scalar), more rows (widened chunks + sgemm, several chunks when k is long), every
// epilogue, f32 and bf16 compute. Bound as kernels_gemm_test.cpp: 1e-6·sqrt(k)·Σ|x||w| + 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/ops.h"
#include "kernels/qgemm.h"  // widen_half
#include "kernels/vec.h"
#include "qkernels_test_util.h"
#include "tensor/dtype.h"

namespace calq {
namespace {

using test::randn;

std::vector<float> randn_bf16(size_t n, uint32_t seed, float scale = 1.0f) {
  std::vector<float> v = randn(n, seed, scale);
  for (auto& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

std::vector<uint16_t> bits(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
  return b;
}

// got against the reference on x (rounded to bf16 for BF16 compute) and the bf16 weight w.
void expect_near_reference(const std::vector<float>& got, const std::vector<float>& x, int64_t rows,
                           const std::vector<float>& w, int64_t n, int64_t k, ComputeType c, const float* bias) {
  std::vector<float> xr = x;
  if (c == ComputeType::BF16)
    for (auto& v : xr) v = bf16_to_f32(f32_to_bf16(v));
  std::vector<float> ref(size_t(rows * n));
  gemm_xwt_ref(xr.data(), rows, k, w.data(), n, bias, ref.data());
  test::expect_close(got, ref, xr, w, rows, n, k, 1e-6 * std::sqrt(double(k)), 1e-6, compute_type_name(c));
}

// The scalar path (no AVX2) computes the same decode products (1 and 3 rows) as the AVX2 kernel on
// the packed weight p, up to summation order, and both match the reference on w's values.
void check_scalar_decode(const PackedWeight& p, const std::vector<float>& x, const std::vector<float>& w, int64_t n,
                         int64_t k, ComputeType c) {
  for (int64_t rows : {1, 3}) {
    std::vector<float> fast(size_t(rows * n)), slow(size_t(rows * n));
    gemm_packed(x.data(), rows, p, nullptr, fast.data());
    {
      test::IsaScope scalar(Isa::Scalar);
      gemm_packed(x.data(), rows, p, nullptr, slow.data());
    }
    for (size_t i = 0; i < fast.size(); ++i) EXPECT_NEAR(fast[i], slow[i], 1e-5 * (1 + std::fabs(slow[i]))) << i;
    expect_near_reference(slow, x, rows, w, n, k, c, nullptr);
  }
}

void check_rows(int64_t rows, int64_t n, int64_t k, ComputeType c, bool with_bias, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << compute_type_name(c) << " rows=" << rows << " n=" << n << " k=" << k
                                    << " bias=" << with_bias);
  const auto x = randn(size_t(rows * k), seed);
  const auto w = randn_bf16(size_t(n * k), seed + 1, 1.0f / std::sqrt(float(k)));
  const auto b = randn(size_t(n), seed + 2);
  auto p = pack_weight_bf16(bits(w).data(), n, k, c, HalfStorage::Rows);
  EXPECT_EQ(p->bytes(), size_t(n * k) * 2);
  EXPECT_EQ(p->compute(), c);
  std::vector<float> got(size_t(rows * n), -7.0f);
  gemm_packed(x.data(), rows, *p, with_bias ? b.data() : nullptr, got.data());
  expect_near_reference(got, x, rows, w, n, k, c, with_bias ? b.data() : nullptr);
}

class GemmBf16Rows : public ::testing::TestWithParam<ComputeType> {};

TEST_P(GemmBf16Rows, MatchesReferenceOnOddShapes) {
  uint32_t seed = 101;
  for (int64_t rows : {1, 2, 3, 4, 5, 33})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 5}, {17, 31}, {64, 64}, {100, 129}})
      check_rows(rows, n, k, GetParam(), rows % 2 == 1, seed++);
}

// Decode shapes split across threads (n·k·2 bytes over 256 KiB), and a long k whose f32 chunks
// (16 MiB / (4·k) = 512 outputs) make two sgemm calls, the second one narrower.
TEST_P(GemmBf16Rows, MatchesReferenceOnThreadedAndChunkedShapes) {
  check_rows(1, 1000, 2100, GetParam(), true, 201);
  check_rows(4, 514, 1030, GetParam(), false, 202);
  check_rows(7, 600, 8192, GetParam(), true, 203);
  check_rows(70, 192, 256, GetParam(), false, 204);
}

// Every epilogue at decode (1, 3 rows) and chunked (9 rows, 2 chunks) sizes equals the plain
// product followed by the epilogue computed here.
TEST_P(GemmBf16Rows, EpiloguesEqualPlainProductThenEpilogue) {
  const ComputeType c = GetParam();
  const bool bf = c == ComputeType::BF16;
  for (auto [rows, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 70, 33}, {3, 70, 33}, {9, 600, 8192}}) {
    SCOPED_TRACE(::testing::Message() << compute_type_name(c) << " rows=" << rows << " n=" << n << " k=" << k);
    const auto x = randn(size_t(rows * k), 301), b = randn(size_t(n), 302), mul = randn(size_t(rows * n), 303);
    const auto y0 = randn(size_t(rows * n), 304);
    const auto w = randn_bf16(size_t(n * k), 305, 0.02f);
    auto p = pack_weight(w.data(), n, k, c, HalfStorage::Rows);
    std::vector<float> r(size_t(rows * n));
    gemm_packed(x.data(), rows, *p, b.data(), r.data());
    std::vector<float> acc = y0;
    gemm_packed(x.data(), rows, *p, b.data(), acc.data(), /*accumulate=*/true);
    for (size_t i = 0; i < acc.size(); ++i) EXPECT_NEAR(acc[i], y0[i] + r[i], 1e-5 * (1 + std::fabs(acc[i]))) << i;
    std::vector<uint16_t> mul16(mul.size());
    f32_to_bf16_n(mul.data(), mul16.data(), int64_t(mul.size()));
    for (ActKind a : {ActKind::SiLU, ActKind::GELU}) {
      GemmEpilogue e;
      e.gated = true;
      e.act = a;
      e.mul = mul.data();
      std::vector<float> y(size_t(rows * n));
      gemm_packed_ex(x.data(), nullptr, rows, *p, b.data(), e, y.data());
      for (size_t i = 0; i < y.size(); ++i) {
        const float want = activate(r[i], a) * mul[i];
        EXPECT_NEAR(y[i], want, 1e-5 + 1e-5 * std::fabs(want)) << "act " << int(a) << " at " << i;
      }
      if (!bf) continue;
      GemmEpilogue e16 = e;  // bf16 multiplier and bf16 output (rounded once)
      e16.mul = nullptr;
      e16.mul_bf16 = mul16.data();
      std::vector<uint16_t> yb(size_t(rows * n));
      gemm_packed_ex(x.data(), nullptr, rows, *p, b.data(), e16, nullptr, yb.data());
      for (size_t i = 0; i < yb.size(); ++i) {
        const float want = activate(r[i], a) * bf16_to_f32(mul16[i]);
        EXPECT_NEAR(bf16_to_f32(yb[i]), want, std::fabs(want) / 128 + 1e-5) << "bf16 out, act " << int(a) << " at " << i;
      }
    }
  }
}

// The scalar path (no AVX2) computes the same decode products as the AVX2 kernel, up to
// summation order, and both match the reference.
TEST_P(GemmBf16Rows, ScalarDecodeMatchesVectorised) {
  const int64_t n = 77, k = 203;
  const auto w = randn_bf16(size_t(n * k), 401, 0.1f), x = randn(size_t(3 * k), 402);
  auto p = pack_weight(w.data(), n, k, GetParam(), HalfStorage::Rows);
  check_scalar_decode(*p, x, w, n, k, GetParam());
}

// From a bf16 checkpoint's bits or from their f32 values: the same stored bytes, bitwise the same
// products (both keep bf16 bits; f32 values of bf16 numbers round to themselves).
TEST_P(GemmBf16Rows, PackingFromBitsEqualsPackingTheValues) {
  const int64_t n = 130, k = 96;
  const auto w = randn_bf16(size_t(n * k), 501, 0.1f);
  auto from_bits = pack_weight_bf16(bits(w).data(), n, k, GetParam(), HalfStorage::Rows);
  for (int64_t rows : {1, 6}) {
    const auto x = randn(size_t(rows * k), 502);
    std::vector<float> a(size_t(rows * n)), b(size_t(rows * n));
    gemm_packed(x.data(), rows, *from_bits, nullptr, a.data());
    if (GetParam() == ComputeType::BF16) {
      auto from_values = pack_weight(w.data(), n, k, ComputeType::BF16, HalfStorage::Rows);
      gemm_packed(x.data(), rows, *from_values, nullptr, b.data());
      EXPECT_EQ(a, b) << "rows=" << rows;
    }
    expect_near_reference(a, x, rows, w, n, k, GetParam(), nullptr);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GemmBf16Rows, ::testing::Values(ComputeType::F32, ComputeType::BF16),
                         [](const auto& i) { return std::string(compute_type_name(i.param)); });

// ---- f16 rows: an f16 checkpoint at f32 compute ----------------------------------------------

std::vector<uint16_t> f16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_f16(v[i]);
  return b;
}

std::vector<float> f16_values(const std::vector<uint16_t>& b) {
  std::vector<float> v(b.size());
  for (size_t i = 0; i < b.size(); ++i) v[i] = f16_to_f32(b[i]);
  return v;
}

// f16 weights (with subnormals and values near the f16 maximum) against the reference on their
// exact f32 values, at decode and prefill sizes, threaded and chunked.
void check_f16_rows(int64_t rows, int64_t n, int64_t k, bool with_bias, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "f16 rows=" << rows << " n=" << n << " k=" << k << " bias=" << with_bias);
  const auto x = randn(size_t(rows * k), seed);
  auto wv = randn(size_t(n * k), seed + 1, 1.0f / std::sqrt(float(k)));
  for (size_t i = 0; i < wv.size(); i += 97) wv[i] *= 1e-4f;  // f16 subnormals (below 6.1e-5)
  if (wv.size() > 50) wv[50] = 60000.0f;
  const auto bits16 = f16_bits(wv);
  const auto w = f16_values(bits16);
  const auto b = randn(size_t(n), seed + 2);
  auto p = pack_weight_f16(bits16.data(), n, k, ComputeType::F32, HalfStorage::Rows);
  EXPECT_EQ(p->bytes(), size_t(n * k) * 2);
  std::vector<float> got(size_t(rows * n), -7.0f);
  gemm_packed(x.data(), rows, *p, with_bias ? b.data() : nullptr, got.data());
  expect_near_reference(got, x, rows, w, n, k, ComputeType::F32, with_bias ? b.data() : nullptr);
}

TEST(GemmF16Rows, MatchesReferenceOnOddShapes) {
  uint32_t seed = 701;
  for (int64_t rows : {1, 2, 3, 4, 5, 33})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 5}, {17, 31}, {64, 64}, {100, 129}})
      check_f16_rows(rows, n, k, rows % 2 == 1, seed++);
}

TEST(GemmF16Rows, MatchesReferenceOnThreadedAndChunkedShapes) {
  check_f16_rows(1, 1000, 2100, true, 801);
  check_f16_rows(4, 514, 1030, false, 802);
  check_f16_rows(7, 600, 8192, true, 803);
  check_f16_rows(70, 192, 256, false, 804);
}

TEST(GemmF16Rows, ScalarDecodeMatchesVectorised) {
  const int64_t n = 77, k = 203;
  const auto bits16 = f16_bits(randn(size_t(n * k), 901, 0.1f));
  const auto w = f16_values(bits16), x = randn(size_t(3 * k), 902);
  auto p = pack_weight_f16(bits16.data(), n, k, ComputeType::F32, HalfStorage::Rows);
  check_scalar_decode(*p, x, w, n, k, ComputeType::F32);
}

// The widening the prefill chunks use equals the scalar conversion bit for bit, over every f16
// value (subnormals, infinities and NaNs included; NaN compared as NaN).
TEST(GemmF16Rows, WideningIsExactForEveryValue) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  std::vector<float> got(all.size());
  widen_half(all.data(), HalfType::F16, int64_t(all.size()), got.data());
  for (size_t i = 0; i < all.size(); ++i) {
    const float want = f16_to_f32(all[i]);
    if (std::isnan(want)) EXPECT_TRUE(std::isnan(got[i])) << i;
    else EXPECT_EQ(got[i], want) << i;
  }
}

// At bf16 compute an f16 weight is rounded to bf16 once: the same products as packing its f32
// values (storage as Auto picks it); at f32 compute without rows it packs the exact f32 values.
TEST(GemmF16Rows, OtherStoragesPackTheWidenedValues) {
  const int64_t n = 70, k = 100;
  const auto bits16 = f16_bits(randn(size_t(n * k), 1001, 0.1f));
  const auto w = f16_values(bits16);
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16})
    for (int64_t rows : {1, 6}) {
      const auto x = randn(size_t(rows * k), 1002);
      std::vector<float> a(size_t(rows * n)), b(size_t(rows * n));
      gemm_packed(x.data(), rows, *pack_weight_f16(bits16.data(), n, k, c), nullptr, a.data());
      gemm_packed(x.data(), rows, *pack_weight(w.data(), n, k, c), nullptr, b.data());
      if (c == ComputeType::BF16 || gemm_bf16_native()) {
        EXPECT_EQ(a, b) << compute_type_name(c) << " rows=" << rows;
      }
      std::vector<float> wc = w;  // what BF16 compute multiplies: the weights rounded to bf16
      if (c == ComputeType::BF16)
        for (auto& v : wc) v = bf16_to_f32(f32_to_bf16(v));
      expect_near_reference(a, x, rows, wc, n, k, c, nullptr);
    }
}

// Auto keeps bf16 values as bf16 rows, and f16 checkpoints at f32 compute as f16 rows, exactly where
// oneDNN has no bf16 matmul; an f32 weight at f32 compute always keeps its f32 values.
TEST(GemmBf16RowsAuto, StorageFollowsTheCpu) {
  const int64_t n = 70, k = 100;  // oneDNN's blocked layouts pad both: more than 2·n·k bytes
  const auto w = randn_bf16(size_t(n * k), 601);
  const size_t rows_bytes = size_t(n * k) * 2;
  const bool rows = !gemm_bf16_native();
  EXPECT_EQ(pack_weight_bf16(bits(w).data(), n, k, ComputeType::F32)->bytes() == rows_bytes, rows);
  EXPECT_EQ(pack_weight(w.data(), n, k, ComputeType::BF16)->bytes() == rows_bytes, rows);
  EXPECT_EQ(pack_weight_f16(f16_bits(w).data(), n, k, ComputeType::F32)->bytes() == rows_bytes, rows);
  EXPECT_GE(pack_weight(w.data(), n, k, ComputeType::F32, HalfStorage::Rows)->bytes(), size_t(n * k) * 4);
}

}  // namespace
}  // namespace calq
