// Decode (1-4 rows) with 4-bit codes × f32 activations on AVX2 (qkern_avx2.cpp gemv4): it masks
// each code in place (c·2^e) and multiplies it by the activation scaled by 2^-e, which must be
// the product x·c exactly. With 2-4 rows it sums in the order of the 8-bit-storage GEMV, so the
// same codes stored in 8 bits must give bitwise the same outputs — including activations near
// the documented bound (|x| >= 2^-102) and very large ones. One row sums even and odd inputs in
// two chains: within the f32 accumulation bound of the 8-bit result.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kernels/qkern.h"
#include "qkernels_test_util.h"

namespace calq {
namespace {

// The same codes, scales and zeros in 8-bit storage (qpack.h: chunk byte 32p + 2j + t holds
// output j of the tile at input 2p + t).
QPacked as_8bit_storage(const QPacked& p4) {
  QPacked p8 = p4;
  p8.storage = 8;
  p8.codes = AlignedBytes(size_t(p4.tiles * p4.chunks() * 128));
  for (int64_t t = 0; t < p4.tiles; ++t)
    for (int64_t c = 0; c < p4.chunks(); ++c)
      for (int pr = 0; pr < 4; ++pr)
        for (int s = 0; s < 32; ++s)
          p8.codes.data()[(t * p4.chunks() + c) * 128 + 32 * pr + s] =
              uint8_t(p4.code(16 * t + s / 2, 8 * c + 2 * pr + s % 2));
  return p8;
}

bool has_avx2() {
  for (Isa isa : test::test_isas())
    if (isa == Isa::Avx2) return true;
  return false;
}

TEST(QGemmDecode4, Avx2NibbleProductsAreExact) {
  if (!has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  const qk::Kernels& K = qk::kernels_avx2();
  uint32_t seed = 47000;
  for (const test::QSpec& s : std::vector<test::QSpec>{{4, 45, 320, 32, false, true, true},     // Q4_0-like
                                                       {4, 64, 256, 128, true, false, true},    // act-order, asym
                                                       {3, 33, 100, 20, false, false, false}}) {  // 3 bits, padded groups
    const QPacked p4 = qpack_codes(test::codes_view(test::random_qweight(s, seed++)));
    ASSERT_EQ(p4.storage, 4) << test::spec_name(s);
    const QPacked p8 = as_8bit_storage(p4);
    const int64_t kp = p4.kp, ldy = p4.tiles * 16;
    for (int rows = 1; rows <= 4; ++rows) {
      auto x = test::randn(size_t(rows * kp), seed++);
      for (size_t i = 0; i < x.size(); i += 7)  // >= 5e-31 (2^-101 > 2^-102): x·2^-24 is still normal
        x[i] = std::copysign(std::fmax(std::fabs(x[i]), 0.5f), x[i]) * 1e-30f;
      for (size_t i = 3; i < x.size(); i += 11) x[i] *= 1e30f;
      std::vector<float> xsum(size_t(rows * p4.groups), 0.0f);
      for (int r = 0; r < rows; ++r)
        for (int64_t i = 0; i < kp; ++i) xsum[size_t(r * p4.groups + p4.chunk_group[size_t(i / 8)])] += x[size_t(r * kp + i)];
      std::vector<float> got(size_t(rows * ldy), -7.0f), want(got.size(), -8.0f);
      K.gemv_f32(qk::view_of(p4), x.data(), kp, rows, xsum.data(), 0, p4.tiles, got.data(), ldy);
      K.gemv_f32(qk::view_of(p8), x.data(), kp, rows, xsum.data(), 0, p4.tiles, want.data(), ldy);
      const std::string what = test::spec_name(s) + " rows=" + std::to_string(rows);
      EXPECT_NE(want[0], -8.0f) << what;
      if (rows > 1) {
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0) << what;
        continue;
      }
      for (int64_t o = 0; o < p4.n; ++o) {  // M = Σ |x·w| bounds the reordering error
        double m = 0;
        for (int64_t i = 0; i < kp; ++i) m += std::fabs(double(x[size_t(i)]) * p4.weight(o, i));
        ASSERT_NEAR(got[size_t(o)], want[size_t(o)], 1e-6 * std::sqrt(double(kp)) * m + 1e-6) << what << " output " << o;
      }
    }
  }
}

}  // namespace
}  // namespace calq
