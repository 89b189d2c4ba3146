// Decode (1-4 rows) with 8-bit weights: the GEMVs for 8-bit codes × int8 activations (qkern.h
// gemv_a8_s8: GGUF Q8_0, W8 groups, QActs::Int8; AVX-512 and AVX2) and for W8A8 (w8a8_gemv,
// AVX-512). Both keep
// their integer sums exact and round the float steps in the reference's order, so they must equal
// their scalar definitions bitwise: qgemm_int8_blocks_ref and w8a8_gemm_ref. Shapes: odd output
// counts (a partial tile, an odd number of tile pairs), k tails, and weights above the 256 KiB at
// which decode splits the tiles across threads.
#include <gtest/gtest.h>

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "kernels/gemm.h"
#include "kernels/qkern.h"
#include "qkernels_test_util.h"
#include "util/huge_pages.h"

namespace calq {
namespace {

using test::randn;

bool has_avx512() {
  for (Isa isa : test::test_isas())
    if (isa == Isa::Avx512) return true;
  return false;
}

// The int8 kernels of every SIMD ISA this CPU runs.
std::vector<std::pair<Isa, const qk::Kernels*>> int8_isas() {
  std::vector<std::pair<Isa, const qk::Kernels*>> v;
  for (Isa isa : test::test_isas())
    if (isa != Isa::Scalar) v.emplace_back(isa, isa == Isa::Avx512 ? &qk::kernels_avx512() : &qk::kernels_avx2());
  return v;
}

TEST(QGemmDecode8, Int8ActivationGemvIsBitwiseTheBlockReference) {
  uint32_t seed = 31000;
  std::vector<std::pair<std::string, QPacked>> cases;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 32}, {17, 96}, {45, 320}, {200, 64}, {544, 1024}}) {
    const auto blocks = test::random_ggml(ggml::Type::Q8_0, n, k, seed++);
    cases.emplace_back("q8_0 " + std::to_string(n) + "x" + std::to_string(k), qpack_ggml(ggml::Type::Q8_0, blocks.data(), n, k));
  }
  for (const test::QSpec& s : std::vector<test::QSpec>{{8, 45, 256, 128, true, false, false},  // act-order, f32 scales
                                                       {8, 33, 100, 32, false, false, true},   // k tail, asymmetric
                                                       {6, 19, 96, -1, false, true, true}}) {  // per channel, 8-bit storage
    const QuantizedWeight qw = test::random_qweight(s, seed++);
    cases.emplace_back(test::spec_name(s), qpack_codes(test::codes_view(qw), "w", 32));
  }
  for (auto [isa, kernels] : int8_isas()) {
    test::IsaScope scope(isa);
    ASSERT_NE(kernels->gemv_a8_s8, nullptr) << isa_name(isa);
    for (auto& [name, ref] : cases) {
      ASSERT_EQ(ref.storage, 8) << name;
      auto pw = pack_quantized(QPacked(ref), ComputeType::BF16, QActs::Int8);
      for (int64_t rows : {1, 2, 3, 4}) {
        const auto x = randn(size_t(rows * ref.k), seed++);
        std::vector<float> want(size_t(rows * ref.n)), got(want.size(), -7.0f);
        qgemm_int8_blocks_ref(x.data(), rows, ref, want.data());
        gemm_packed(x.data(), rows, *pw, nullptr, got.data());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0) << name << " " << isa_name(isa) << " rows=" << rows;
        EXPECT_NE(want[0], 0.0f) << name;  // a real product, not an untouched buffer
      }
    }
  }
}

// The kernel alone over a sub-range of tiles: it writes those tiles' outputs and nothing else.
TEST(QGemmDecode8, Int8ActivationGemvWritesOnlyItsTiles) {
  const int64_t n = 96, k = 128, nblk = k / 32;
  const auto blocks = test::random_ggml(ggml::Type::Q8_0, n, k, 5);
  const QPacked p = qpack_ggml(ggml::Type::Q8_0, blocks.data(), n, k);
  const auto x = randn(size_t(k), 6);
  std::vector<int8_t> xq(static_cast<size_t>(k));
  std::vector<float> d(static_cast<size_t>(nblk)), want(static_cast<size_t>(n)), y(static_cast<size_t>(n), -7.0f);
  std::vector<int32_t> qsum(static_cast<size_t>(nblk));
  ASSERT_TRUE(quantize_blocks_int8_ref(x.data(), k, xq.data(), d.data(), qsum.data()));
  qgemm_int8_blocks_ref(x.data(), 1, p, want.data());
  const qk::QW w = qk::view_of(p);
  for (auto [isa, kernels] : int8_isas()) {
    std::fill(y.begin(), y.end(), -7.0f);
    kernels->gemv_a8_s8(w, xq.data(), k, d.data(), qsum.data(), nblk, 1, 2, 4, y.data(), n);
    for (int64_t o = 0; o < n; ++o) {
      if (o >= 32 && o < 64) EXPECT_EQ(y[size_t(o)], want[size_t(o)]) << isa_name(isa) << " " << o;
      else EXPECT_EQ(y[size_t(o)], -7.0f) << isa_name(isa) << " " << o;
    }
  }
}

TEST(QGemmDecode8, W8A8GemvIsBitwiseTheReference) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  test::IsaScope scope(Isa::Avx512);
  ASSERT_NE(qk::kernels_avx512().w8a8_gemv, nullptr);
  uint32_t seed = 32000;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 5}, {33, 37}, {45, 1000}, {200, 64}, {544, 1030}})
    for (const W8A8Options& o : {W8A8Options{}, W8A8Options{W8A8Act::PerTensorStatic, 0.02f}}) {
      std::mt19937 g(seed++);
      std::vector<int8_t> w(static_cast<size_t>(n * k));
      std::vector<float> scale(static_cast<size_t>(n));
      for (auto& v : w) v = int8_t(std::uniform_int_distribution<int>(-127, 127)(g));
      for (auto& s : scale) s = std::uniform_real_distribution<float>(1e-4f, 1e-2f)(g);
      const W8A8Packed ref = w8a8_pack(w.data(), scale.data(), n, k);
      auto q = pack_w8a8(w8a8_pack(w.data(), scale.data(), n, k), o);
      for (int64_t rows : {1, 2, 3, 4}) {
        const auto x = randn(size_t(rows * k), seed++);
        const auto bias = randn(size_t(n), seed++);
        const float* b = rows % 2 ? bias.data() : nullptr;
        std::vector<float> want(size_t(rows * n)), got(want.size(), -7.0f);
        w8a8_gemm_ref(x.data(), rows, ref, o, b, want.data());
        gemm_packed(x.data(), rows, *q, b, got.data());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0) << n << "x" << k << " rows=" << rows;
        EXPECT_NE(want[0], 0.0f);
      }
    }
}

// Packed weights of 2 MiB or more start on a huge page (util/huge_pages.h) and are zeroed like
// the small ones; views keep their offsets; the advice itself accepts any range.
TEST(AlignedBytesHuge, LargeBuffersStartOnAHugePageAndAreZeroed) {
  for (size_t n : {size_t(100), kHugePageBytes - 64, kHugePageBytes, 3 * kHugePageBytes + 17}) {
    AlignedBytes b(n);
    ASSERT_EQ(b.size(), n);
    const auto addr = reinterpret_cast<uintptr_t>(b.data());
    EXPECT_EQ(addr % (n >= kHugePageBytes ? kHugePageBytes : 64), 0u) << n;
    size_t nonzero = 0;
    for (size_t i = 0; i < n; ++i) nonzero += b.data()[i] != 0;
    EXPECT_EQ(nonzero, 0u) << n;
    AlignedBytes v = b.view(64, n - 64);
    EXPECT_EQ(v.data(), b.data() + 64);
  }
  std::vector<uint8_t> small(100, 1);
  advise_huge_pages(small.data() + 3, 50);  // no whole huge page inside: nothing happens
  advise_huge_pages(nullptr, 0);
  EXPECT_EQ(small[3], 1);
}

}  // namespace
}  // namespace calq
