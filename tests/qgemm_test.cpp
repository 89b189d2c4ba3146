// W4A16 / W8A16 kernels (kernels/qgemm.h) on every ISA this CPU has (scalar, AVX2, AVX-512),
// against the scalar reference qgemm_ref (double accumulation) and the fake-quant float path.
//
// Tolerances, with M = Σ_i |x_i·w_i| of the values the kernel multiplies:
//  * |y − ref| <= 1e-6·√k·M + 1e-6: f32 accumulation in another order (as gemm_test.cpp). The
//    reference multiplies what the kernel multiplies: x or bf16(x), and exact dequantized weights,
//    or bf16-rounded ones for the BF16 prefill kernels (rows > 4, AVX2/AVX-512).
//  * 4e-6·√k·M for the AVX-512 bf16 decode kernel: it sums x·(128 + q) and subtracts
//    (128 + z)·Σx per group (codes exact), which cancels ~36 × more than Σ x·(q − z).
//  * Dequantization itself is bitwise: qpacked_dequantize equals QuantizedWeight::dequantize and
//    ggml's dequantize_row_* exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <thread>

#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/qkern.h"
#include "kernels/threads.h"
#include "kernels/vec.h"
#include "qkernels_test_util.h"
#include "util/error.h"

namespace calq {
namespace {

using test::randn;

std::vector<float> rounded(std::vector<float> v) {
  for (auto& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

std::vector<float> dequantized(const QPacked& p) {
  std::vector<float> w(size_t(p.n * p.k));
  qpacked_dequantize(p, w.data());
  return w;
}

const std::vector<int64_t> kRowCounts = {1, 2, 3, 4, 5, 13, 30};

// Every ISA × compute type × row count: kernel vs reference. QActs::Int8: the reference quantizes
// the activations the same way; the int8 kernels (AVX-512 and AVX2) multiply the exact d_b·q and
// codes, the scalar path d_b·q (and w) rounded to bf16 under BF16.
void check_kernels(const std::function<QPacked()>& make, const std::string& name, uint32_t seed,
                   QActs acts = QActs::Float) {
  const QPacked ref = make();
  const int64_t n = ref.n, k = ref.k;
  const auto wf = dequantized(ref);
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
    const bool bf = c == ComputeType::BF16;
    auto pw = pack_quantized(make(), c, acts);
    EXPECT_EQ(pw->n(), n);
    EXPECT_EQ(pw->k(), k);
    EXPECT_EQ(pw->compute(), c);
    for (Isa isa : test::test_isas()) {
      test::IsaScope scope(isa);
      for (int64_t rows : kRowCounts) {
        const std::string what = name + " " + compute_type_name(c) + " " + isa_name(isa) + " rows=" + std::to_string(rows);
        const auto x = randn(size_t(rows * k), seed++);
        const auto bias = randn(size_t(n), seed++);
        const float* b = rows % 2 ? bias.data() : nullptr;
        // Exact d·q where the int8 kernels run: 4-bit codes on AVX2 and AVX-512, 8-bit codes on
        // AVX-512 (gemv_a8_s8 at decode, the prefill tile above 4 rows) and on AVX2 at decode.
        const bool a8_exact = acts == QActs::Int8 && isa != Isa::Scalar &&
                              (ref.storage == 4 || isa == Isa::Avx512 || rows <= 4);
        const bool w_rounded = bf && rows > 4 && isa != Isa::Scalar && !a8_exact;
        std::vector<float> want(size_t(rows * n)), got(size_t(rows * n), -7.0f);
        qgemm_ref(x.data(), rows, ref, c, b, want.data(), w_rounded, acts, a8_exact);
        gemm_packed(x.data(), rows, *pw, b, got.data());
        const bool bf16_decode = bf && rows <= 4 && isa == Isa::Avx512 && ref.storage != 8 && acts == QActs::Float;
        const double rel = (bf16_decode ? 4e-6 : 1e-6) * std::sqrt(double(k));
        test::expect_close(got, want, bf ? rounded(x) : x, w_rounded ? rounded(wf) : wf, rows, n, k, rel, 1e-6, what);
      }
    }
  }
}

void check_codes(const test::QSpec& s, uint32_t seed) {
  const QuantizedWeight qw = test::random_qweight(s, seed);
  check_kernels([&] { return qpack_codes(test::codes_view(qw)); }, test::spec_name(s), seed);
}

TEST(QPack, DequantizationIsBitwiseQuantizedWeight) {
  uint32_t seed = 1;
  for (const test::QSpec& s : std::vector<test::QSpec>{{4, 33, 100, 32, false, false, true},
                                                       {4, 16, 256, 128, true, false, true},
                                                       {3, 5, 64, 32, true, false, false},
                                                       {2, 7, 40, 8, false, true, true},
                                                       {8, 9, 70, -1, false, true, false},
                                                       {4, 3, 50, 20, true, false, true},
                                                       {5, 2, 9, -1, false, false, true}}) {
    const QuantizedWeight qw = test::random_qweight(s, seed++);
    const QPacked p = qpack_codes(test::codes_view(qw));
    EXPECT_EQ(p.kp % kQChunkK, 0);
    EXPECT_EQ(p.perm.empty(), !s.act_order && (s.group <= 0 || s.group % 8 == 0)) << test::spec_name(s);
    EXPECT_EQ(p.scale_f16, s.f16_scales);
    EXPECT_EQ(p.zero_const, s.sym);
    const Tensor want = qw.dequantize();
    const auto got = dequantized(p);
    for (int64_t i = 0; i < s.rows * s.cols; ++i) ASSERT_EQ(got[size_t(i)], want.f32()[i]) << test::spec_name(s) << " at " << i;
  }
}

TEST(QPack, DequantizationIsBitwiseGgml) {
  for (ggml::Type t : {ggml::Type::Q4_0, ggml::Type::Q4_1, ggml::Type::Q5_0, ggml::Type::Q5_1, ggml::Type::Q8_0}) {
    const int64_t n = 21, k = 96;
    const auto blocks = test::random_ggml(t, n, k, 7);
    const QPacked p = qpack_ggml(t, blocks.data(), n, k);
    EXPECT_TRUE(p.perm.empty());
    EXPECT_EQ(p.groups, k / 32);
    const auto got = dequantized(p);
    std::vector<float> want(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
      ggml::dequantize_row(t, blocks.data() + size_t(r) * ggml::row_size(t, k), want.data(), k);
      for (int64_t i = 0; i < k; ++i) ASSERT_EQ(got[size_t(r * k + i)], want[size_t(i)]) << ggml::type_name(t) << " " << r << "," << i;
    }
    // Packed size: codes + f16 scales (+ f16 mins) ≈ the GGUF bytes (padding to 32 outputs aside).
    EXPECT_LE(p.bytes(), ggml::row_size(t, k) * 32 + 4096) << ggml::type_name(t);
  }
}

TEST(QGemm, CodesMatchReferenceOnEveryIsa) {
  uint32_t seed = 100;
  for (const test::QSpec& s : std::vector<test::QSpec>{
           {4, 33, 100, 32, false, false, true},   // k tail inside the last group, odd n
           {4, 70, 256, 128, true, false, true},   // act-order
           {4, 64, 600, 128, false, true, true},   // 3 k-panels, symmetric
           {3, 17, 96, 64, true, false, false},    // 3 bits, f32 scales
           {2, 40, 64, 16, false, false, true},
           {4, 31, 50, 20, false, false, true},    // group size not a multiple of 8: padded groups
           {8, 45, 200, -1, false, true, true},    // 8-bit per channel
           {8, 32, 160, 32, true, false, false},   // 8-bit act-order, f32 scales
           {5, 20, 40, 8, false, false, true},     // 5 bits: 8-bit storage
           {4, 1, 9, -1, false, false, true}}) {   // one output, k = 9
    check_codes(s, seed);
    seed += 1000;
  }
}

TEST(QGemm, GgmlMatchesReferenceOnEveryIsa) {
  uint32_t seed = 5000;
  for (ggml::Type t : {ggml::Type::Q4_0, ggml::Type::Q4_1, ggml::Type::Q5_0, ggml::Type::Q5_1, ggml::Type::Q8_0})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{45, 320}, {3, 32}}) {
      const auto blocks = test::random_ggml(t, n, k, seed);
      check_kernels([&] { return qpack_ggml(t, blocks.data(), n, k); },
                    ggml::type_name(t) + " " + std::to_string(n) + "x" + std::to_string(k), seed);
      seed += 1000;
    }
}

TEST(QGemm, Int8ActivationsMatchReferenceOnEveryIsa) {
  uint32_t seed = 9000;
  for (const test::QSpec& s : std::vector<test::QSpec>{
           {4, 70, 256, 128, true, false, true},   // act-order
           {4, 33, 100, 32, false, false, true},   // k tail: last group padded to 32
           {4, 31, 50, 20, false, false, true},    // groups of 20 padded to 32
           {3, 17, 96, -1, false, true, false},    // per channel, f32 scales
           {2, 40, 64, 64, false, false, true},
           {8, 45, 200, 32, false, false, true},   // 8-bit codes (8-bit storage: vpermw + vpdpbusd)
           {8, 64, 256, 128, true, false, false},  // 8-bit act-order, f32 scales
           {6, 33, 96, -1, false, true, true}}) {  // 6 bits per channel: 8-bit storage
    const QuantizedWeight qw = test::random_qweight(s, seed);
    check_kernels([&] { return qpack_codes(test::codes_view(qw), "w", 32); }, test::spec_name(s) + " a8", seed, QActs::Int8);
    seed += 1000;
  }
  for (ggml::Type t : {ggml::Type::Q4_0, ggml::Type::Q4_1, ggml::Type::Q8_0}) {
    const auto blocks = test::random_ggml(t, 45, 320, seed);
    check_kernels([&] { return qpack_ggml(t, blocks.data(), 45, 320); }, ggml::type_name(t) + " a8", seed, QActs::Int8);
    seed += 1000;
  }
  // Only codes stored in 4 or 8 bits, groups of whole 32-blocks; activations finite.
  const auto q5 = test::random_ggml(ggml::Type::Q5_0, 4, 64, 2);
  EXPECT_THROW(pack_ggml(ggml::Type::Q5_0, q5.data(), 4, 64, ComputeType::F32, "w", QActs::Int8), UnsupportedError);
  const QuantizedWeight w4 = test::random_qweight({4, 8, 64, 16, false, false, true}, 3);
  EXPECT_THROW(pack_quantized(qpack_codes(test::codes_view(w4)), ComputeType::F32, QActs::Int8), UnsupportedError);
  auto q = pack_quantized(test::codes_view(w4), ComputeType::F32, "w", QActs::Int8);
  std::vector<float> x(64, 1.0f), y(8);
  x[7] = std::nanf("");
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    EXPECT_THROW(gemm_packed(x.data(), 1, *q, nullptr, y.data()), ArgError) << isa_name(isa);
  }
}

// The int8 kernels (QActs::Int8) against their arithmetic in scalar form, bitwise: exact int32
// block sums of int8 activations × 4-bit codes (AVX2, AVX-512) and × 8-bit codes (GGUF Q8_0 and
// W8 groups: AVX-512 at any row count, AVX2 at decode), then the same f32 steps per block.
TEST(QGemm, Int8KernelsAreBitwiseTheirBlockReference) {
  uint32_t seed = 12000;
  std::vector<std::pair<std::string, QPacked>> cases;
  for (ggml::Type t : {ggml::Type::Q4_0, ggml::Type::Q4_1, ggml::Type::Q8_0}) {
    const auto blocks = test::random_ggml(t, 64, 320, seed++);
    cases.emplace_back(ggml::type_name(t), qpack_ggml(t, blocks.data(), 64, 320));
  }
  for (const test::QSpec& s : std::vector<test::QSpec>{{8, 45, 256, 128, true, false, false}, {4, 33, 96, 32, false, false, true}}) {
    const QuantizedWeight qw = test::random_qweight(s, seed++);
    cases.emplace_back(test::spec_name(s), qpack_codes(test::codes_view(qw), "w", 32));
  }
  for (auto& [name, ref] : cases) {
    const int64_t n = ref.n, k = ref.k;
    auto pw = pack_quantized(QPacked(ref), ComputeType::BF16, QActs::Int8);
    for (Isa isa : test::test_isas()) {
      test::IsaScope scope(isa);
      for (int64_t rows : {1, 3, 4, 7, 13}) {
        const bool kernel = isa == Isa::Avx512 || (isa == Isa::Avx2 && (ref.storage == 4 || rows <= 4));
        if (!kernel) continue;  // x' = d·q through the float kernels there (Int8ActivationsMatchReference)
        const auto x = randn(size_t(rows * k), seed++);
        std::vector<float> want(size_t(rows * n)), got(size_t(rows * n), -7.0f);
        qgemm_int8_blocks_ref(x.data(), rows, ref, want.data());
        gemm_packed(x.data(), rows, *pw, nullptr, got.data());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0) << name << " " << isa_name(isa) << " rows=" << rows;
      }
    }
  }
}

// The block quantizer of every ISA against the scalar definition, bitwise: ties (x / d = m + 0.5),
// an all-zero block, a block with one non-zero value.
TEST(QGemm, Int8BlockQuantizerIsBitwiseTheReference) {
  const int64_t kp = 256;
  auto x = randn(size_t(kp), 5, 3.0f);
  for (int i = 0; i < 32; ++i) x[size_t(32 + i)] = 0.0f;
  for (int i = 0; i < 32; ++i) x[size_t(64 + i)] = i == 9 ? -2.5f : 0.0f;
  for (int i = 0; i < 32; ++i) x[size_t(96 + i)] = float(i - 16) * 0.5f + (i == 0 ? 127.0f * 0.5f : 0.0f);
  std::vector<int8_t> qr(static_cast<size_t>(kp)), qk(static_cast<size_t>(kp));
  std::vector<float> dr(kp / 32), dk(kp / 32);
  std::vector<int32_t> sr(kp / 32), sk(kp / 32);
  ASSERT_TRUE(quantize_blocks_int8_ref(x.data(), kp, qr.data(), dr.data(), sr.data()));
  EXPECT_EQ(dr[1], 0.0f);
  EXPECT_EQ(qr[size_t(64 + 9)], -127);
  for (Isa isa : test::test_isas()) {
    if (isa == Isa::Scalar) continue;
    const auto& kernel = isa == Isa::Avx512 ? qk::kernels_avx512() : qk::kernels_avx2();
    ASSERT_TRUE(kernel.quant_blocks(x.data(), kp, qk.data(), dk.data(), sk.data(), false));
    EXPECT_EQ(qk, qr) << isa_name(isa);
    EXPECT_EQ(dk, dr) << isa_name(isa);
    EXPECT_EQ(sk, sr) << isa_name(isa);
    ASSERT_TRUE(kernel.quant_blocks(x.data(), kp, qk.data(), dk.data(), sk.data(), true));  // kernel order
    static const int kOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    for (int64_t i = 0; i < kp; ++i) ASSERT_EQ(qk[size_t(i)], qr[size_t(i / 8 * 8 + kOrder[i % 8])]) << isa_name(isa) << " " << i;
  }
}

// The fake-quant float path (dequantize, then the float GEMM of gemm.h) against the kernels.
// The AVX-512 bf16 prefill runs up to kMaxGemmBlocks 32-output blocks per pass over the activations,
// in chunks of rows; how many blocks a call gets depends on the thread count (qgemm.cpp
// run_superblocks). Products must not depend on it: bitwise equal at 1, 2 and 4 blocks per call (8, 2 and
// 1 threads over 16 blocks), with row counts across the row-chunk and tile
// edges; and close to the reference.
TEST(QGemm, PrefillBlocksPerCallDoNotChangeProducts) {
  if (test::test_isas().back() != Isa::Avx512) GTEST_SKIP() << "AVX-512 not available (CPU or CALQ_ISA)";
  test::IsaScope scope(Isa::Avx512);
  const QuantizedWeight qw = test::random_qweight({4, 512, 600, 128, false, false, true}, 11);
  const QPacked ref = qpack_codes(test::codes_view(qw));
  auto pw = pack_quantized(qpack_codes(test::codes_view(qw)), ComputeType::BF16);
  const auto wf = dequantized(ref);
  for (int64_t rows : {97, 200}) {
    const auto x = randn(size_t(rows * 600), uint32_t(rows));
    std::vector<float> want(size_t(rows * 512));
    qgemm_ref(x.data(), rows, ref, ComputeType::BF16, nullptr, want.data(), true, QActs::Float, false);
    std::vector<float> one;
    for (int threads : {8, 2, 1}) {
      const ThreadScope ts(threads);
      std::vector<float> got(size_t(rows * 512), -7.0f);
      gemm_packed(x.data(), rows, *pw, nullptr, got.data());
      if (one.empty()) {
        one = got;
        test::expect_close(got, want, rounded(x), rounded(wf), rows, 512, 600, 1e-6 * std::sqrt(600.0), 1e-6,
                           "rows=" + std::to_string(rows));
      } else {
        ASSERT_EQ(std::memcmp(got.data(), one.data(), got.size() * sizeof(float)), 0) << rows << " rows, " << threads << " threads";
      }
    }
  }
}

TEST(QGemm, MatchesFakeQuantFloatPath) {
  const test::QSpec s{4, 96, 512, 128, true, false, true};
  const QuantizedWeight qw = test::random_qweight(s, 77);
  const Tensor wt = qw.dequantize();
  const std::vector<float> wf(wt.f32(), wt.f32() + s.rows * s.cols);
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
    const bool bf = c == ComputeType::BF16;
    auto fake = pack_weight(wf.data(), s.rows, s.cols, c);
    auto q = pack_quantized(test::codes_view(qw), c);
    for (Isa isa : test::test_isas()) {
      test::IsaScope scope(isa);
      for (int64_t rows : {1, 3, 64}) {
        const auto x = randn(size_t(rows * s.cols), 78 + uint32_t(rows));
        std::vector<float> a(size_t(rows * s.rows)), b(a.size());
        gemm_packed(x.data(), rows, *fake, nullptr, a.data());
        gemm_packed(x.data(), rows, *q, nullptr, b.data());
        // Same products (bf16-rounded x, and W when both round it) up to summation order; the
        // decode kernel keeps the codes exact where the float path rounds W to bf16 (2^-9 each).
        const bool same_w = !bf || (rows > 4 && isa != Isa::Scalar);
        const double rel = same_w ? 2e-6 * std::sqrt(double(s.cols)) : 1.0 / 256;
        test::expect_close(b, a, bf ? rounded(x) : x, wf, rows, s.rows, s.cols, rel, 1e-6,
                           std::string("fake-quant ") + compute_type_name(c) + " " + isa_name(isa) + " rows=" + std::to_string(rows));
      }
    }
  }
}

TEST(QGemm, EpiloguesMatchPlainProduct) {
  const test::QSpec s{4, 50, 256, 64, false, false, true};
  const QuantizedWeight qw = test::random_qweight(s, 91);
  const int64_t n = s.rows, k = s.cols;
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
    const bool bf = c == ComputeType::BF16;
    auto q = pack_quantized(test::codes_view(qw), c);
    for (Isa isa : test::test_isas()) {
      test::IsaScope scope(isa);
      for (int64_t rows : {3, 20}) {
        const std::string what = std::string(compute_type_name(c)) + " " + isa_name(isa) + " rows=" + std::to_string(rows);
        const auto x = randn(size_t(rows * k), 92), b = randn(size_t(n), 93), y0 = randn(size_t(rows * n), 94);
        const auto mul = randn(size_t(rows * n), 95);
        std::vector<float> plain(size_t(rows * n));
        gemm_packed(x.data(), rows, *q, b.data(), plain.data());
        std::vector<float> acc = y0;  // residual accumulate
        gemm_packed(x.data(), rows, *q, b.data(), acc.data(), true);
        for (size_t i = 0; i < acc.size(); ++i) ASSERT_NEAR(acc[i], y0[i] + plain[i], 1e-5) << what;
        for (ActKind a : {ActKind::SiLU, ActKind::ReLU, ActKind::GELU, ActKind::GELUTanh}) {
          GemmEpilogue e;
          e.gated = true;
          e.act = a;
          e.mul = mul.data();
          std::vector<float> y(size_t(rows * n));
          gemm_packed_ex(x.data(), nullptr, rows, *q, b.data(), e, y.data());
          for (size_t i = 0; i < y.size(); ++i) {
            const float want = activate(plain[i], a) * mul[i];
            ASSERT_NEAR(y[i], want, 1e-5 + 1e-5 * std::fabs(want)) << what << " act " << int(a);
          }
          if (!bf) continue;
          std::vector<uint16_t> mul16(mul.size()), yb(y.size());
          f32_to_bf16_n(mul.data(), mul16.data(), int64_t(mul.size()));
          GemmEpilogue e16 = e;
          e16.mul = nullptr;
          e16.mul_bf16 = mul16.data();
          gemm_packed_ex(x.data(), nullptr, rows, *q, b.data(), e16, nullptr, yb.data());  // bf16 in, bf16 out
          for (size_t i = 0; i < y.size(); ++i) {
            const float want = activate(plain[i], a) * bf16_to_f32(mul16[i]);
            ASSERT_NEAR(bf16_to_f32(yb[i]), want, std::fabs(want) / 128 + 1e-5) << what << " bf16 act " << int(a);
          }
        }
        if (bf) {  // bf16 activations in: the same as converting inside
          std::vector<uint16_t> xb(x.size());
          f32_to_bf16_n(x.data(), xb.data(), int64_t(x.size()));
          std::vector<float> y(size_t(rows * n));
          gemm_packed_bf16(xb.data(), rows, *q, b.data(), y.data());
          EXPECT_EQ(y, plain) << what;
        }
      }
    }
  }
}

TEST(QGemm, ConcurrentCallersShareOneWeight) {
  const test::QSpec s{4, 48, 160, 32, true, false, true};
  const QuantizedWeight qw = test::random_qweight(s, 31);
  const QPacked ref = qpack_codes(test::codes_view(qw));
  auto q = pack_quantized(test::codes_view(qw), ComputeType::F32);
  std::vector<std::thread> th;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      int good = 1;
      for (int it = 0; it < 10; ++it) {
        const int64_t rows = 1 + (t * 10 + it) % 9;
        const auto x = randn(size_t(rows * s.cols), uint32_t(100 * t + it));
        std::vector<float> want(size_t(rows * s.rows)), got(want.size());
        qgemm_ref(x.data(), rows, ref, ComputeType::F32, nullptr, want.data());
        gemm_packed(x.data(), rows, *q, nullptr, got.data());
        for (size_t i = 0; i < want.size(); ++i) good &= std::fabs(got[i] - want[i]) < 1e-4;
      }
      ok[size_t(t)] = good;
    });
  for (auto& t : th) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

TEST(QGemm, RejectsBadInputs) {
  test::QSpec s{4, 8, 64, 32, false, false, true};
  QuantizedWeight qw = test::random_qweight(s, 3);
  QuantCodesView v = test::codes_view(qw);
  qw.g_idx[5] = 2;  // only groups 0 and 1 exist
  EXPECT_THROW(qpack_codes(v), ArgError);
  qw.g_idx[5] = 0;
  qw.q[3] = 16;  // does not fit in 4 bits
  EXPECT_THROW(qpack_codes(v), ArgError);
  qw.q[3] = 1;
  qw.zero[1] = 2.5f;
  EXPECT_THROW(qpack_codes(v), ArgError);
  qw.zero[1] = 2.0f;
  const std::vector<uint8_t> blocks(ggml::row_size(ggml::Type::Q4_0, 64) * 4);
  EXPECT_THROW(qpack_ggml(ggml::Type::Q4_K, blocks.data(), 1, 256), UnsupportedError);
  EXPECT_THROW(qpack_ggml(ggml::Type::Q4_0, blocks.data(), 4, 40), ArgError);
  auto q = pack_quantized(v, ComputeType::F32);
  std::vector<float> x(64), y(8);
  std::vector<uint16_t> xb(64);
  EXPECT_THROW(gemm_packed_ex(nullptr, nullptr, 1, *q, nullptr, GemmEpilogue{}, y.data()), ArgError);
  EXPECT_THROW(gemm_packed_bf16(xb.data(), 1, *q, nullptr, y.data()), ArgError);  // F32 weight
  float untouched = 42.0f;
  gemm_packed(x.data(), 0, *q, nullptr, &untouched);
  EXPECT_EQ(untouched, 42.0f);
}

TEST(Isa, NamesAndCeiling) {
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    Isa back;
    ASSERT_TRUE(isa_from_name(isa_name(i), &back));
    EXPECT_EQ(back, i);
  }
  Isa dummy;
  EXPECT_TRUE(isa_from_name("AVX2", &dummy));
  EXPECT_FALSE(isa_from_name("sse", &dummy));
  EXPECT_LE(active_isa(), cpu_isa());
  const Isa before = max_isa();
  {
    test::IsaScope scope(Isa::Scalar);
    EXPECT_EQ(active_isa(), Isa::Scalar);
  }
  EXPECT_EQ(max_isa(), before);
}

}  // namespace
}  // namespace calq
