// The packed (oneDNN) GEMM against the scalar reference gemm_xwt_ref.
// f32: |y - ref| <= 1e-6·sqrt(k)·Σ|x||w| + tiny (fp32 accumulation error grows like sqrt(k)·u on
// random data; u = 6e-8, so this is ~16x the expected error and far below any real bug's error).
// bf16: the reference rounds x and W to bf16 first (what the kernel multiplies), same bound.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/vec.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace calq {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<float> round_bf16(std::vector<float> v) {
  for (auto& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

void check_gemm(int64_t rows, int64_t n, int64_t k, ComputeType c, bool with_bias, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << compute_type_name(c) << " rows=" << rows << " n=" << n << " k=" << k
                                    << " bias=" << with_bias);
  const auto x = randn(size_t(rows * k), seed);
  const auto w = randn(size_t(n * k), seed + 1, 1.0f / std::sqrt(float(k)));
  const auto b = randn(size_t(n), seed + 2);
  const bool bf = c == ComputeType::BF16;
  const auto xr = bf ? round_bf16(x) : x;
  const auto wr = bf ? round_bf16(w) : w;
  std::vector<float> ref(size_t(rows * n)), got(size_t(rows * n), -7.0f);
  gemm_xwt_ref(xr.data(), rows, k, wr.data(), n, with_bias ? b.data() : nullptr, ref.data());
  auto packed = pack_weight(w.data(), n, k, c);
  EXPECT_EQ(packed->n(), n);
  EXPECT_EQ(packed->k(), k);
  EXPECT_EQ(packed->compute(), c);
  EXPECT_GE(packed->bytes(), size_t(n * k) * (bf ? 2 : 4));
  gemm_packed(x.data(), rows, *packed, with_bias ? b.data() : nullptr, got.data());
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double mag = 0;
      for (int64_t i = 0; i < k; ++i) mag += std::fabs(double(xr[r * k + i]) * wr[j * k + i]);
      const double tol = 1e-6 * std::sqrt(double(k)) * mag + 1e-6;
      const double e = std::fabs(double(got[r * n + j]) - ref[r * n + j]);
      if (e > tol && bad++ < 5) ADD_FAILURE() << "y[" << r << "," << j << "] = " << got[r * n + j] << ", ref " << ref[r * n + j];
    }
  EXPECT_EQ(bad, 0);
}

class GemmPacked : public ::testing::TestWithParam<ComputeType> {};

TEST_P(GemmPacked, MatchesReferenceOnOddShapes) {
  const ComputeType c = GetParam();
  uint32_t seed = 11;
  for (int64_t rows : {1, 2, 7, 33})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 5}, {17, 31}, {64, 64}, {100, 129}})
      check_gemm(rows, n, k, c, rows % 2 == 1, seed++);
}

TEST_P(GemmPacked, MatchesReferenceOnModelShapes) {
  const ComputeType c = GetParam();
  check_gemm(70, 192, 256, c, true, 5);
  check_gemm(129, 96, 1024, c, false, 6);  // long k: accumulation order differs from the reference
  check_gemm(3, 1000, 96, c, false, 7);
  // Packed copies of 1 MiB and more get their own pre-faulted mapping (gemm.cpp PackedMemory).
  check_gemm(20, 1024, 640, c, true, 8);  // 2.5 MiB f32, 1.25 MiB bf16
}

TEST_P(GemmPacked, ZeroRowsIsANoOp) {
  const auto w = randn(12, 1);
  auto p = pack_weight(w.data(), 3, 4, GetParam());
  float y = 42.0f;
  gemm_packed(nullptr, 0, *p, nullptr, &y);
  EXPECT_EQ(y, 42.0f);
}

TEST_P(GemmPacked, ManyRowCountsReuseOnePackedWeight) {
  // More distinct row counts than the primitive cache holds: results stay exact after eviction.
  const ComputeType c = GetParam();
  const int64_t n = 8, k = 16;
  const auto w = randn(size_t(n * k), 3);
  auto p = pack_weight(w.data(), n, k, c);
  const auto wr = c == ComputeType::BF16 ? round_bf16(w) : w;
  for (int64_t rows = 1; rows <= 300; rows += 1) {
    const auto x = randn(size_t(rows * k), uint32_t(rows));
    const auto xr = c == ComputeType::BF16 ? round_bf16(x) : x;
    std::vector<float> ref(size_t(rows * n)), got(size_t(rows * n));
    gemm_xwt_ref(xr.data(), rows, k, wr.data(), n, nullptr, ref.data());
    gemm_packed(x.data(), rows, *p, nullptr, got.data());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-4) << "rows=" << rows;
  }
}

TEST_P(GemmPacked, ConcurrentCallersGetCorrectResults) {
  const ComputeType c = GetParam();
  const int64_t n = 48, k = 80;
  const auto w = randn(size_t(n * k), 9);
  auto p = pack_weight(w.data(), n, k, c);
  const auto wr = c == ComputeType::BF16 ? round_bf16(w) : w;
  std::vector<std::thread> th;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      int good = 1;
      for (int it = 0; it < 20; ++it) {
        const int64_t rows = 1 + (t * 20 + it) % 13;
        const auto x = randn(size_t(rows * k), uint32_t(100 * t + it));
        const auto xr = c == ComputeType::BF16 ? round_bf16(x) : x;
        std::vector<float> ref(size_t(rows * n)), got(size_t(rows * n));
        gemm_xwt_ref(xr.data(), rows, k, wr.data(), n, nullptr, ref.data());
        gemm_packed(x.data(), rows, *p, nullptr, got.data());
        for (size_t i = 0; i < ref.size(); ++i) good &= std::fabs(got[i] - ref[i]) < 1e-4;
      }
      ok[size_t(t)] = good;
    });
  for (auto& t : th) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

TEST_P(GemmPacked, AccumulateAddsToOutput) {
  const ComputeType c = GetParam();
  const int64_t rows = 9, n = 40, k = 70;
  const auto x = randn(size_t(rows * k), 21), w = randn(size_t(n * k), 22), b = randn(size_t(n), 23);
  const auto y0 = randn(size_t(rows * n), 24);
  auto p = pack_weight(w.data(), n, k, c);
  std::vector<float> plain(size_t(rows * n)), acc = y0;
  gemm_packed(x.data(), rows, *p, b.data(), plain.data());
  gemm_packed(x.data(), rows, *p, b.data(), acc.data(), /*accumulate=*/true);
  for (size_t i = 0; i < acc.size(); ++i) EXPECT_NEAR(acc[i], y0[i] + plain[i], 1e-5) << i;
}

// Packing from a bf16 weight's own bits (no float copy) runs the same products bitwise as packing
// its exact f32 conversion, for f32 and bf16 compute, on odd and blocked shapes, 1 and many rows.
// (Not for f32 compute where oneDNN has no bf16 matmul: the bits stay bf16 there and run other
// kernels than the f32 weight's: tests/kernels_gemm_bf16rows_test.cpp.)
TEST_P(GemmPacked, PackingFromBf16BitsEqualsPackingTheF32Conversion) {
  if (GetParam() == ComputeType::F32 && !gemm_bf16_native()) GTEST_SKIP() << "bf16 bits kept as bf16 rows here";
  for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 53}, {192, 256}}) {
    const auto w = round_bf16(randn(size_t(n * k), 11, 0.1f));
    std::vector<uint16_t> w16(w.size());
    for (size_t i = 0; i < w.size(); ++i) w16[i] = f32_to_bf16(w[i]);
    auto from_f32 = pack_weight(w.data(), n, k, GetParam());
    auto from_bf16 = pack_weight_bf16(w16.data(), n, k, GetParam());
    EXPECT_EQ(from_bf16->bytes(), from_f32->bytes());
    for (int64_t rows : {1, 7}) {
      const auto x = randn(size_t(rows * k), 12);
      std::vector<float> a(size_t(rows * n)), b(size_t(rows * n));
      gemm_packed(x.data(), rows, *from_f32, nullptr, a.data());
      gemm_packed(x.data(), rows, *from_bf16, nullptr, b.data());
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "n=" << n << " k=" << k << " rows=" << rows << " i=" << i;
    }
  }
}

TEST(GemmPackedBf16Input, SameAsConvertingInside) {
  const int64_t rows = 6, n = 24, k = 50;
  const auto x = randn(size_t(rows * k), 31), w = randn(size_t(n * k), 32);
  auto p = pack_weight(w.data(), n, k, ComputeType::BF16);
  std::vector<uint16_t> xb(x.size());
  f32_to_bf16_n(x.data(), xb.data(), int64_t(x.size()));
  std::vector<float> a(size_t(rows * n)), b(size_t(rows * n));
  gemm_packed(x.data(), rows, *p, nullptr, a.data());
  gemm_packed_bf16(xb.data(), rows, *p, nullptr, b.data());
  EXPECT_EQ(a, b);
  auto p32 = pack_weight(w.data(), n, k, ComputeType::F32);
  EXPECT_THROW(gemm_packed_bf16(xb.data(), rows, *p32, nullptr, b.data()), ArgError);
}

TEST_P(GemmPacked, GatedEpilogueMatchesActTimesMul) {
  const ComputeType c = GetParam();
  const bool bf = c == ComputeType::BF16;
  const int64_t rows = 7, n = 50, k = 90;
  const auto x = randn(size_t(rows * k), 41), w = randn(size_t(n * k), 42, 0.2f), b = randn(size_t(n), 43);
  const auto mul = randn(size_t(rows * n), 44);
  auto p = pack_weight(w.data(), n, k, c);
  std::vector<float> r(size_t(rows * n));
  gemm_packed(x.data(), rows, *p, b.data(), r.data());
  for (ActKind a : {ActKind::SiLU, ActKind::ReLU, ActKind::GELU, ActKind::GELUTanh}) {
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
    if (bf) {  // bf16 output: the f32 result rounded once
      std::vector<uint16_t> yb(size_t(rows * n));
      gemm_packed_ex(x.data(), nullptr, rows, *p, b.data(), e, nullptr, yb.data());
      for (size_t i = 0; i < y.size(); ++i)
        EXPECT_NEAR(bf16_to_f32(yb[i]), y[i], std::fabs(y[i]) / 256 + 1e-6) << i;
      // bf16 multiplier: act(r) · bf16(mul).
      std::vector<uint16_t> mul16(mul.size());
      f32_to_bf16_n(mul.data(), mul16.data(), int64_t(mul.size()));
      GemmEpilogue e16 = e;
      e16.mul = nullptr;
      e16.mul_bf16 = mul16.data();
      gemm_packed_ex(x.data(), nullptr, rows, *p, b.data(), e16, y.data());
      for (size_t i = 0; i < y.size(); ++i) {
        const float want = activate(r[i], a) * bf16_to_f32(mul16[i]);
        EXPECT_NEAR(y[i], want, 1e-5 + 1e-5 * std::fabs(want)) << "bf16 mul, act " << int(a) << " at " << i;
      }
    } else {
      std::vector<uint16_t> yb(size_t(rows * n));
      EXPECT_THROW(gemm_packed_ex(x.data(), nullptr, rows, *p, b.data(), e, nullptr, yb.data()), ArgError);
    }
  }
  EXPECT_THROW(gemm_packed_ex(x.data(), nullptr, rows, *p, b.data(), GemmEpilogue{false, true, ActKind::SiLU, nullptr},
                              r.data()),
               ArgError);
}

INSTANTIATE_TEST_SUITE_P(Types, GemmPacked, ::testing::Values(ComputeType::F32, ComputeType::BF16),
                         [](const auto& i) { return std::string(compute_type_name(i.param)); });

TEST(Bf16Convert, MatchesScalarRoundingIncludingTies) {
  std::vector<float> v = randn(1000, 4, 100.0f);
  // Exact ties (lower 16 bits = 0x8000) with even and odd upper halves, and zeros.
  for (uint32_t u : {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x00000000u, 0x80000000u, 0x7f7fffffu}) {
    float f;
    std::memcpy(&f, &u, 4);
    v.push_back(f);
  }
  for (size_t n : {size_t(0), size_t(1), size_t(15), size_t(17), v.size()}) {
    std::vector<uint16_t> got(n + 1, 0xdead);
    f32_to_bf16_n(v.data(), got.data(), int64_t(n));
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], f32_to_bf16(v[i])) << i;
    EXPECT_EQ(got[n], 0xdead);  // no write past the end
  }
}


// One row (decode) runs calq's kernel on oneDNN's blocked layout on AVX-512 (qgemm.h
// gemv_onednn_blocked), more rows run oneDNN: the reference bound at decode shapes (multi-threaded
// when 2·n·k >= 4 MFLOP, n not a multiple of 64, k not a multiple of 32), and every epilogue equal
// to the same row computed by oneDNN as row 0 of two (up to summation order).
TEST_P(GemmPacked, OneRowMatchesReferenceAndMultiRowEpilogues) {
  const ComputeType c = GetParam();
  const bool bf = c == ComputeType::BF16;
  check_gemm(1, 1000, 2100, c, true, 51);
  check_gemm(1, 2048, 2048, c, false, 52);
  check_gemm(1, 70, 33, c, true, 53);
  const int64_t n = 1000, k = 2100;
  const auto x = randn(size_t(2 * k), 54), w = randn(size_t(n * k), 55, 0.05f), b = randn(size_t(n), 56);
  const auto mul = randn(size_t(2 * n), 57), y0 = randn(size_t(2 * n), 58);
  auto p = pack_weight(w.data(), n, k, c);
  std::vector<uint16_t> mul16(mul.size()), x16(x.size());
  f32_to_bf16_n(mul.data(), mul16.data(), int64_t(mul.size()));
  f32_to_bf16_n(x.data(), x16.data(), int64_t(x.size()));
  for (int variant = 0; variant < 5; ++variant) {
    SCOPED_TRACE(::testing::Message() << compute_type_name(c) << " epilogue variant " << variant);
    if (!bf && variant >= 3) continue;  // bf16 multiplier / bf16 in-out need a bf16 weight
    GemmEpilogue e;
    e.accumulate = variant == 1;
    e.gated = variant == 2 || variant == 3;
    e.act = ActKind::SiLU;
    if (variant == 2) e.mul = mul.data();
    if (variant == 3) e.mul_bf16 = mul16.data();
    std::vector<float> two = y0, one(y0.begin(), y0.begin() + n);
    if (variant == 4) {  // bf16 input and output
      std::vector<uint16_t> t2(static_cast<size_t>(2 * n)), t1(static_cast<size_t>(n));
      gemm_packed_ex(nullptr, x16.data(), 2, *p, b.data(), e, nullptr, t2.data());
      gemm_packed_ex(nullptr, x16.data(), 1, *p, b.data(), e, nullptr, t1.data());
      for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(bf16_to_f32(t1[j]), bf16_to_f32(t2[j]), 1e-2 * (1 + std::fabs(bf16_to_f32(t2[j])))) << j;
      continue;
    }
    gemm_packed_ex(x.data(), nullptr, 2, *p, b.data(), e, two.data());
    gemm_packed_ex(x.data(), nullptr, 1, *p, b.data(), e, one.data());
    for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(one[j], two[j], 1e-4 * (1 + std::fabs(two[j]))) << j;
  }
}
}  // namespace
}  // namespace calq
