// Quantizer primitives: known answers for both range conventions, RTN fast path == scalar
// reference, dequantize == fake-quant bitwise, activation fake-quant, bad settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "quant/act_quant.h"
#include "quant/quantizer.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace calq {
namespace {

QuantScheme scheme(int bits, bool sym, BlockShape b, int g, RangeRule r, bool f16 = false) {
  QuantScheme s;
  s.bits = bits;
  s.sym = sym;
  s.block = b;
  s.group_size = g;
  s.rule = r;
  s.f16_scales = f16;
  return s;
}

std::vector<float> randn(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

TEST(QuantQuantizer, GptqRangeKnownAnswers) {
  // asym 4-bit over {-1, 0.375, 2.75}: range [-1, 2.75], scale 3.75/15 = 0.25, zero round(4) = 4.
  const float x[] = {-1.0f, 0.375f, 2.75f};
  const auto s = scheme(4, false, BlockShape::PerChannel, 0, RangeRule::Gptq);
  const AffineParams p = find_params(x, 3, 1, s);
  EXPECT_EQ(p.scale, 0.25f);
  EXPECT_EQ(p.zero, 4.0f);
  EXPECT_EQ(quantize_code(-1.0f, p, 15), 0);
  EXPECT_EQ(quantize_code(2.75f, p, 15), 15);
  EXPECT_EQ(quantize_code(0.375f, p, 15), 6);   // 1.5 -> 2 (half to even)
  EXPECT_EQ(quantize_code(0.625f, p, 15), 6);   // 2.5 -> 2
  EXPECT_EQ(quantize_code(0.875f, p, 15), 8);   // 3.5 -> 4
  EXPECT_EQ(quantize_code(100.0f, p, 15), 15);  // clamped
  EXPECT_EQ(dequantize_code(6, p), 0.5f);

  // sym: max(|min|, max) = 3.75 -> range [-3.75, 3.75], scale 0.5, zero (15 + 1) / 2 = 8.
  const float y[] = {-3.75f, 1.0f};
  const AffineParams ps = find_params(y, 2, 1, scheme(4, true, BlockShape::PerChannel, 0, RangeRule::Gptq));
  EXPECT_EQ(ps.scale, 0.5f);
  EXPECT_EQ(ps.zero, 8.0f);
  EXPECT_EQ(quantize_code(-3.75f, ps, 15), 0);  // -7.5 -> -8
  EXPECT_EQ(quantize_code(1.0f, ps, 15), 10);

  // The range always contains 0 (quant.py): {0.5, 3} asym -> [0, 3]; sym keeps min = 0 (the reference's quirk).
  const float z[] = {0.5f, 3.0f};
  EXPECT_EQ(find_params(z, 2, 1, scheme(4, false, BlockShape::PerChannel, 0, RangeRule::Gptq)).zero, 0.0f);
  const AffineParams pz = find_params(z, 2, 1, scheme(4, true, BlockShape::PerChannel, 0, RangeRule::Gptq));
  EXPECT_EQ(pz.scale, 3.0f / 15.0f);
  EXPECT_EQ(pz.zero, 8.0f);
  // An all-zero block uses [-1, 1]: scale 2/15, zero round(1 / scale) (7: 1/fl(2/15) is just below 7.5).
  const float zero3[] = {0.0f, 0.0f, 0.0f};
  const AffineParams p0 = find_params(zero3, 3, 1, scheme(4, false, BlockShape::PerChannel, 0, RangeRule::Gptq));
  EXPECT_EQ(p0.scale, 2.0f / 15.0f);
  EXPECT_EQ(p0.zero, 7.0f);
  EXPECT_EQ(fake_quant_value(0.0f, p0, 15), 0.0f);
}

TEST(QuantQuantizer, AwqRangeKnownAnswers) {
  // Zero point over [min, max] without forcing 0 in: {0.5, 4.25} -> scale 0.25, zero clamp(-2) = 0.
  const float x[] = {0.5f, 4.25f};
  const AffineParams p = find_params(x, 2, 1, scheme(4, false, BlockShape::PerChannel, 0, RangeRule::Awq));
  EXPECT_EQ(p.scale, 0.25f);
  EXPECT_EQ(p.zero, 0.0f);
  EXPECT_EQ(quantize_code(0.5f, p, 15), 2);
  EXPECT_EQ(quantize_code(4.25f, p, 15), 15);  // 17 clamped
  // The GPTQ rule on the same values includes 0: [0, 4.25].
  EXPECT_EQ(find_params(x, 2, 1, scheme(4, false, BlockShape::PerChannel, 0, RangeRule::Gptq)).scale, 4.25f / 15.0f);
  // Symmetric absmax (AutoAWQ zero_point=False, SmoothQuant): scale = 3.5 / 7, zero 8.
  const float y[] = {-1.0f, 3.5f};
  const AffineParams ps = find_params(y, 2, 1, scheme(4, true, BlockShape::PerChannel, 0, RangeRule::Awq));
  EXPECT_EQ(ps.scale, 0.5f);
  EXPECT_EQ(ps.zero, 8.0f);
  EXPECT_EQ(quantize_code(-1.0f, ps, 15), 6);
  EXPECT_EQ(quantize_code(3.5f, ps, 15), 15);
  EXPECT_EQ(quantize_code(-4.5f, ps, 15), 0);  // -9 clamped to -8
  // 8-bit absmax = SmoothQuant's quantize_weight_per_channel_absmax: scale = max / 127.
  const float w[] = {1.984375f, -0.5f};
  const AffineParams p8 = find_params(w, 2, 1, scheme(8, true, BlockShape::PerChannel, 0, RangeRule::Awq));
  EXPECT_EQ(p8.scale, 1.0f / 64.0f);
  EXPECT_EQ(p8.zero, 128.0f);
  // Tiny ranges are clamped at 1e-5 before dividing (both conventions of AutoAWQ).
  const float t[] = {1e-9f, 2e-9f};
  EXPECT_EQ(find_params(t, 2, 1, scheme(4, false, BlockShape::PerChannel, 0, RangeRule::Awq)).scale, 1e-5f / 15.0f);
}

TEST(QuantQuantizer, Fp16ScalesAreRepresentable) {
  const float x[] = {-0.3f, 1.2f};
  for (RangeRule r : {RangeRule::Gptq, RangeRule::Awq})
    for (bool sym : {false, true}) {
      const AffineParams p = find_params(x, 2, 1, scheme(4, sym, BlockShape::PerChannel, 0, r, true));
      EXPECT_EQ(p.scale, f16_to_f32(f32_to_f16(p.scale)));
      EXPECT_GT(p.scale, 0.0f);
    }
  // A scale below the fp16 range becomes the smallest subnormal, never 0.
  const float tiny[] = {0.0f, 1e-12f};
  const AffineParams pt = find_params(tiny, 2, 1, scheme(4, false, BlockShape::PerChannel, 0, RangeRule::Gptq, true));
  EXPECT_EQ(pt.scale, std::ldexp(1.0f, -24));
}

TEST(QuantQuantizer, RtnFastPathEqualsReferenceAndDequantizeIsFakeQuant) {
  const int64_t rows = 37, cols = 100;
  const auto w = randn(size_t(rows * cols), 7);
  int checked = 0;
  for (int bits = 2; bits <= 8; ++bits)
    for (bool sym : {false, true})
      for (RangeRule rule : {RangeRule::Gptq, RangeRule::Awq})
        for (BlockShape b : {BlockShape::PerTensor, BlockShape::PerChannel, BlockShape::PerGroup})
          for (int g : {32, 128})
            for (bool f16 : {false, true}) {
              if (b != BlockShape::PerGroup && g == 128) continue;
              const QuantScheme s = scheme(bits, sym, b, g, rule, f16);
              const QuantizedWeight a = quantize_rtn_ref(w.data(), rows, cols, s);
              const QuantizedWeight f = quantize_rtn(w.data(), rows, cols, s);
              ASSERT_EQ(a.q, f.q) << s.describe();
              ASSERT_EQ(a.scale, f.scale) << s.describe();
              ASSERT_EQ(a.zero, f.zero) << s.describe();
              ASSERT_EQ(a.g_idx, f.g_idx) << s.describe();
              ASSERT_EQ(a.n_groups(), s.n_groups(cols));
              // dequantize() is bitwise the element-wise fake quantization with the same parameters.
              const Tensor dq = f.dequantize();
              const int64_t ng = f.n_groups();
              for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < cols; ++c) {
                  const int64_t k = r * ng + f.g_idx[size_t(c)];
                  const AffineParams p{f.scale[size_t(k)], f.zero[size_t(k)]};
                  const float want = fake_quant_value(w[size_t(r * cols + c)], p, s.maxq());
                  const float got = dq.f32()[r * cols + c];
                  ASSERT_EQ(std::memcmp(&want, &got, 4), 0);
                }
              ++checked;
            }
  EXPECT_EQ(checked, 7 * 2 * 2 * 4 * 2);
}

TEST(QuantQuantizer, PartialLastGroupAndPerTensor) {
  // 100 columns, group 32: groups of 32, 32, 32 and 4 (AutoGPTQ's g_idx = c / G).
  const auto w = randn(3 * 100, 3);
  const QuantizedWeight q = quantize_rtn(w.data(), 3, 100, scheme(4, false, BlockShape::PerGroup, 32, RangeRule::Gptq));
  EXPECT_EQ(q.n_groups(), 4);
  EXPECT_EQ(q.g_idx[99], 3);
  EXPECT_EQ(q.g_idx[96], 3);
  EXPECT_EQ(q.g_idx[95], 2);
  EXPECT_EQ(q.group_size, 32);
  // The last group's parameters come from its 4 columns only.
  const AffineParams p = find_params(&w[96], 4, 1, scheme(4, false, BlockShape::PerGroup, 32, RangeRule::Gptq));
  EXPECT_EQ(q.scale[3], p.scale);
  // Per tensor: one scale replicated on every row.
  const QuantizedWeight t = quantize_rtn(w.data(), 3, 100, scheme(8, true, BlockShape::PerTensor, 0, RangeRule::Awq));
  EXPECT_EQ(t.group_size, -1);
  EXPECT_EQ(t.scale[0], t.scale[1]);
  EXPECT_EQ(t.scale[1], t.scale[2]);
}

TEST(QuantQuantizer, BadSettingsAreRejected) {
  const float x[] = {1.0f, 2.0f};
  for (int bits : {0, 1, 9, 16})
    EXPECT_THROW(quantize_rtn(x, 1, 2, scheme(bits, false, BlockShape::PerChannel, 0, RangeRule::Gptq)), ArgError);
  EXPECT_THROW(quantize_rtn(x, 1, 2, scheme(4, false, BlockShape::PerGroup, 0, RangeRule::Gptq)), ArgError);
  EXPECT_THROW(quantize_rtn(x, 1, 2, scheme(4, false, BlockShape::PerGroup, -3, RangeRule::Gptq)), ArgError);
  float a[] = {1.0f};
  EXPECT_THROW(fake_quant_per_token(a, 1, 1, 1), ArgError);
  EXPECT_THROW(fake_quant_per_tensor_static(a, 1, 0.0f, 8), ArgError);
  EXPECT_THROW(parse_act_granularity("per_row"), ArgError);
  try {
    quantize_rtn(x, 1, 2, scheme(12, false, BlockShape::PerChannel, 0, RangeRule::Gptq));
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("bits must be in 2..8, got 12"), std::string::npos);
  }
}

TEST(QuantQuantizer, ActivationFakeQuantKnownAnswers) {
  // Per token 8-bit: absmax 127/64 -> s = 1/64; 1/128 is half a step and rounds to 0 (half to even).
  std::vector<float> x = {1.984375f, -0.5f, 0.0078125f, 0.25f, 0.5f, -1.0f};
  fake_quant_per_token_ref(x.data(), 2, 3, 8);
  EXPECT_EQ(x[0], 1.984375f);
  EXPECT_EQ(x[1], -0.5f);
  EXPECT_EQ(x[2], 0.0f);
  // row 2: absmax 1 -> s = 1/127; every value is a multiple of s within float rounding.
  EXPECT_NEAR(x[3], 32.0 / 127.0, 1e-7);
  EXPECT_NEAR(x[4], 64.0 / 127.0, 1e-7);
  EXPECT_NEAR(x[5], -1.0, 1e-7);
  // Static per tensor saturates at int8: s = 1/64, 3.0 -> 127/64, -3.0 -> -128/64.
  std::vector<float> y = {3.0f, -3.0f, 0.5f};
  fake_quant_per_tensor_static(y.data(), 3, 1.0f / 64.0f, 8);
  EXPECT_EQ(y[0], 1.984375f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 0.5f);
  EXPECT_EQ(static_scale_for_absmax(1.984375f, 8), 1.0f / 64.0f);
  // Dynamic per tensor: one scale from the absmax of everything.
  std::vector<float> z = {1.984375f, 0.0078125f, 0.01f};
  fake_quant_per_tensor_dynamic(z.data(), 3, 8);
  EXPECT_EQ(z[1], 0.0f);
  EXPECT_EQ(z[2], 1.0f / 64.0f);
}

TEST(QuantQuantizer, PerTokenFastPathAndTransformEqualReference) {
  const auto x = randn(300 * 70, 11, 3.0f);
  for (int bits : {4, 8}) {
    std::vector<float> a = x, b = x, c = x;
    fake_quant_per_token_ref(a.data(), 300, 70, bits);
    fake_quant_per_token(b.data(), 300, 70, bits);
    PerTokenActQuant(bits).apply(c.data(), 300, 70);
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    ASSERT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * 4));
    // Every row now holds at most 2^bits - 1 distinct levels.
    for (int r = 0; r < 300; ++r) {
      std::vector<float> row(a.begin() + r * 70, a.begin() + (r + 1) * 70);
      std::sort(row.begin(), row.end());
      EXPECT_LE(std::unique(row.begin(), row.end()) - row.begin(), (1 << bits) - 1);
    }
  }
}

}  // namespace
}  // namespace calq

namespace calq {
namespace {

// The qllm-eval activation granularities beside per-token: known answers at 8 bits (s = absmax/127).
TEST(QuantQuantizer, PerChannelAndPerTensorActivationsKnownAnswers) {
  EXPECT_EQ(parse_act_granularity("per_channel"), ActGranularity::PerChannel);
  EXPECT_EQ(parse_act_granularity("per-tensor"), ActGranularity::PerTensor);
  // rows x cols = 2 x 2: column 0 {1, 0.3}, column 1 {100, 40}.
  float c[] = {1.0f, 100.0f, 0.3f, 40.0f}, r[4];
  std::copy(c, c + 4, r);
  fake_quant_per_channel(c, 2, 2, 8);
  fake_quant_per_channel_ref(r, 2, 2, 8);
  EXPECT_EQ(std::memcmp(c, r, sizeof c), 0);
  EXPECT_FLOAT_EQ(c[0], 1.0f);
  EXPECT_FLOAT_EQ(c[2], 38.0f / 127.0f);          // 0.3 * 127 = 38.1
  EXPECT_FLOAT_EQ(c[3], 51.0f * 100.0f / 127.0f);  // 40 * 1.27 = 50.8
  float t[] = {1.0f, 100.0f, 0.3f, 40.0f};
  fake_quant_per_tensor_dynamic(t, 4, 8);
  EXPECT_FLOAT_EQ(t[0], 100.0f / 127.0f);  // 1.27 -> 1
  EXPECT_EQ(t[2], 0.0f);                   // 0.381 -> 0
  EXPECT_FLOAT_EQ(t[1], 100.0f);
  const auto pc = make_dynamic_act_quant(ActGranularity::PerChannel, 8);
  ASSERT_TRUE(pc);
  EXPECT_EQ(pc->describe(), "a8 per-channel dynamic");
  EXPECT_FALSE(make_dynamic_act_quant(ActGranularity::PerTensorStatic, 8));
}

}  // namespace
}  // namespace calq
