// Known answers for the GPTQ and AWQ packings: small integer matrices packed by hand, AutoGPTQ's
// 3-bit cross-word loop transliterated independently, and pack/unpack round trips of every width.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "formats/packing.h"
#include "io/safetensors.h"
#include "quant/qstate.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace calq {
namespace {

// q[o][c] = (c + o) mod 2^bits, one group, zero[o] = 1 + o % (2^bits - 1), scale 0.5 + o/8.
QuantizedWeight ramp(int64_t out, int64_t in, int bits, int group_size = -1) {
  QuantizedWeight w;
  w.bits = bits;
  w.group_size = group_size;
  w.rows = out;
  w.cols = in;
  const int64_t ng = QuantizedWeight::groups_for(in, group_size);
  const uint32_t levels = 1u << bits;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < in; ++c) w.q.push_back(uint8_t((c + o) % levels));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < ng; ++g) {
      w.scale.push_back(0.5f + float(o) / 8);
      w.zero.push_back(float(1 + (o + g) % (levels - 1)));
    }
  for (int64_t c = 0; c < in; ++c) w.g_idx.push_back(group_size > 0 ? int32_t(c / group_size) : 0);
  return w;
}

uint32_t u(int32_t v) { return uint32_t(v); }

TEST(ExportPacking, Gptq4BitEightByEightByHand) {
  const QuantizedWeight w = ramp(8, 8, 4);
  const GptqTensors t = gptq_pack(w, GptqZeroFormat::V1, "m");
  ASSERT_EQ(t.qweight.shape(), (Shape{1, 8}));  // [in*4/32, out]
  // column o holds q[o][0..7] = o..o+7, element c in bits 4c..4c+3
  EXPECT_EQ(u(t.qweight.data<int32_t>()[0]), 0x76543210u);
  EXPECT_EQ(u(t.qweight.data<int32_t>()[1]), 0x87654321u);
  EXPECT_EQ(u(t.qweight.data<int32_t>()[7]), 0xEDCBA987u);
  ASSERT_EQ(t.qzeros.shape(), (Shape{1, 1}));  // [G, out*4/32]
  // zero[o] = 1 + o; v1 stores zero - 1 = o in nibble o
  EXPECT_EQ(u(t.qzeros.data<int32_t>()[0]), 0x76543210u);
  EXPECT_EQ(u(gptq_pack(w, GptqZeroFormat::V2, "m").qzeros.data<int32_t>()[0]), 0x87654321u);
  ASSERT_EQ(t.scales.shape(), (Shape{1, 8}));
  EXPECT_EQ(t.scales.dtype(), DType::F16);
  EXPECT_EQ(f16_to_f32(t.scales.data<uint16_t>()[3]), 0.875f);
  ASSERT_EQ(t.g_idx.shape(), (Shape{8}));
}

TEST(ExportPacking, Gptq8And2BitByHand) {
  const QuantizedWeight w8 = ramp(4, 4, 8);
  const GptqTensors t8 = gptq_pack(w8, GptqZeroFormat::V1, "m");
  ASSERT_EQ(t8.qweight.shape(), (Shape{1, 4}));
  EXPECT_EQ(u(t8.qweight.data<int32_t>()[2]), 0x05040302u);  // q[2][0..3] = 2..5, byte c
  EXPECT_EQ(u(t8.qzeros.data<int32_t>()[0]), 0x03020100u);    // zero - 1 = o
  QuantizedWeight w2 = ramp(16, 16, 2);
  const GptqTensors t2 = gptq_pack(w2, GptqZeroFormat::V1, "m");
  ASSERT_EQ(t2.qweight.shape(), (Shape{1, 16}));
  // q[0][c] = c % 4: 0,1,2,3,... in 2-bit fields -> 0b11100100 repeated
  EXPECT_EQ(u(t2.qweight.data<int32_t>()[0]), 0xE4E4E4E4u);
  // zero[o] = 1 + o % 3 -> stored o % 3: 0,1,2,0,1,2,... in 2-bit fields
  EXPECT_EQ(u(t2.qzeros.data<int32_t>()[0]), 0x24924924u);
}

// AutoGPTQ's 3-bit loop, transliterated: 32 values into 3 words, v10 and v21 straddle.
std::vector<uint32_t> autogptq_pack3(const std::vector<uint32_t>& v) {
  std::vector<uint32_t> w(3, 0);
  int i = 0;
  for (int j = i; j < i + 10; ++j) w[0] |= v[size_t(j)] << (3 * (j - i));
  i += 10;
  w[0] |= v[size_t(i)] << 30;
  w[1] |= (v[size_t(i)] >> 2) & 1;
  i += 1;
  for (int j = i; j < i + 10; ++j) w[1] |= v[size_t(j)] << (3 * (j - i) + 1);
  i += 10;
  w[1] |= v[size_t(i)] << 31;
  w[2] |= (v[size_t(i)] >> 1) & 3;
  i += 1;
  for (int j = i; j < i + 10; ++j) w[2] |= v[size_t(j)] << (3 * (j - i) + 2);
  return w;
}

TEST(ExportPacking, Gptq3BitCrossWordLayout) {
  std::vector<uint32_t> v(32);
  for (int k = 0; k < 32; ++k) v[size_t(k)] = uint32_t(k % 8);
  // Worked out from the loop above (and checked against it below).
  EXPECT_EQ(pack_bits(v.data(), 32, 3), (std::vector<uint32_t>{0x88fac688u, 0xc688fac6u, 0xfac688fau}));
  std::mt19937 rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    for (auto& x : v) x = rng() % 8;
    EXPECT_EQ(pack_bits(v.data(), 32, 3), autogptq_pack3(v));
    const auto words = pack_bits(v.data(), 32, 3);
    for (int k = 0; k < 32; ++k) EXPECT_EQ(unpack_bits_at(words.data(), k, 3), v[size_t(k)]);
  }
  // A 32x32 weight: column o of qweight is the 3-word stream of q[o][*].
  QuantizedWeight w = ramp(32, 32, 3, 8);
  const GptqTensors t = gptq_pack(w, GptqZeroFormat::V1, "m");
  ASSERT_EQ(t.qweight.shape(), (Shape{3, 32}));
  ASSERT_EQ(t.qzeros.shape(), (Shape{4, 3}));
  ASSERT_EQ(t.scales.shape(), (Shape{4, 32}));
  for (int64_t o = 0; o < 32; ++o) {
    std::vector<uint32_t> col(32);
    for (int c = 0; c < 32; ++c) col[size_t(c)] = w.q[size_t(o * 32 + c)];
    const auto want = autogptq_pack3(col);
    for (int r = 0; r < 3; ++r) EXPECT_EQ(u(t.qweight.data<int32_t>()[r * 32 + o]), want[size_t(r)]);
  }
  for (int64_t g = 0; g < 4; ++g) {
    std::vector<uint32_t> zs(32);
    for (int o = 0; o < 32; ++o) zs[size_t(o)] = uint32_t(w.zero[size_t(o * 4 + g)]) - 1;
    const auto want = autogptq_pack3(zs);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(u(t.qzeros.data<int32_t>()[g * 3 + k]), want[size_t(k)]);
  }
}

TEST(ExportPacking, AwqInterleaveByHand) {
  uint32_t v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  // nibble i holds column order[i] = 0,2,4,6,1,3,5,7
  EXPECT_EQ(awq_pack_word(v), 0x75316420u);
  uint32_t back[8];
  awq_unpack_word(0x75316420u, back);
  for (int j = 0; j < 8; ++j) EXPECT_EQ(back[j], uint32_t(j));

  const QuantizedWeight w = ramp(8, 8, 4, 8);
  const AwqTensors t = awq_pack(w, "m");
  ASSERT_EQ(t.qweight.shape(), (Shape{8, 1}));  // [in, out/8]
  EXPECT_EQ(u(t.qweight.data<int32_t>()[0]), 0x75316420u);  // row c=0: q[o][0] = o
  EXPECT_EQ(u(t.qweight.data<int32_t>()[1]), 0x86427531u);  // row c=1: q[o][1] = o + 1
  ASSERT_EQ(t.qzeros.shape(), (Shape{1, 1}));
  // zero[o] = 1 + o % 15 = 1..8, stored as is: nibbles 1,3,5,7,2,4,6,8
  EXPECT_EQ(u(t.qzeros.data<int32_t>()[0]), 0x86427531u);
  ASSERT_EQ(t.scales.shape(), (Shape{1, 8}));
}

void expect_same(const QuantizedWeight& a, const QuantizedWeight& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.q, b.q);
  EXPECT_EQ(a.zero, b.zero);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.g_idx, b.g_idx);
  const Tensor da = a.dequantize(), db = b.dequantize();
  EXPECT_EQ(0, std::memcmp(da.f32(), db.f32(), da.nbytes()));
}

QuantizedWeight random_weight(int64_t out, int64_t in, int bits, int gs, bool act_order, std::mt19937& rng) {
  QuantizedWeight w;
  w.bits = bits;
  w.group_size = gs;
  w.rows = out;
  w.cols = in;
  const int64_t ng = QuantizedWeight::groups_for(in, gs);
  const uint32_t levels = 1u << bits;
  for (int64_t k = 0; k < out * in; ++k) w.q.push_back(uint8_t(rng() % levels));
  std::uniform_real_distribution<float> ud(1e-3f, 0.1f);
  for (int64_t k = 0; k < out * ng; ++k) {
    w.scale.push_back(f16_to_f32(f32_to_f16(ud(rng))));  // the export contract: fp16 scales
    w.zero.push_back(float(rng() % levels));              // includes zero == 0
  }
  std::vector<int32_t> perm(static_cast<size_t>(in));
  for (int64_t c = 0; c < in; ++c) perm[size_t(c)] = int32_t(c);
  if (act_order) std::shuffle(perm.begin(), perm.end(), rng);
  w.g_idx.resize(size_t(in));
  for (int64_t c = 0; c < in; ++c) w.g_idx[size_t(perm[size_t(c)])] = gs > 0 ? int32_t(c / gs) : 0;
  return w;
}

TEST(ExportPacking, RoundTripsEveryWidthAndFormat) {
  std::mt19937 rng(42);
  for (int bits : {2, 3, 4, 8})
    for (int gs : {-1, 32})
      for (bool act : {false, true})
        for (GptqZeroFormat f : {GptqZeroFormat::V1, GptqZeroFormat::V2}) {
          const QuantizedWeight w = random_weight(64, 96, bits, gs, act, rng);
          PackStats st;
          const GptqTensors t = gptq_pack(w, f, "m", &st);
          EXPECT_EQ(st.scales_rounded, 0);
          const QuantizedWeight b = gptq_unpack(t.qweight, t.qzeros, t.scales, t.g_idx, bits, gs, false, f, "m");
          expect_same(w, b);
        }
  const QuantizedWeight w = random_weight(64, 96, 4, 32, false, rng);
  const AwqTensors t = awq_pack(w, "m");
  expect_same(w, awq_unpack(t.qweight, t.qzeros, t.scales, 32, "m"));
}

TEST(ExportPacking, RefusesWhatTheFormatsCannotHold) {
  std::mt19937 rng(5);
  EXPECT_THROW(gptq_pack(random_weight(172, 64, 4, 32, false, rng), GptqZeroFormat::V1, "m"), UnsupportedError);
  EXPECT_THROW(gptq_pack(random_weight(64, 48, 3, 16, false, rng), GptqZeroFormat::V1, "m"), UnsupportedError);
  EXPECT_THROW(gptq_pack(random_weight(64, 64, 5, 32, false, rng), GptqZeroFormat::V1, "m"), UnsupportedError);
  EXPECT_THROW(awq_pack(random_weight(64, 64, 3, 32, false, rng), "m"), UnsupportedError);
  EXPECT_THROW(awq_pack(random_weight(64, 64, 4, 32, true, rng), "m"), UnsupportedError);
  EXPECT_THROW(awq_pack(random_weight(64, 64, 4, -1, false, rng), "m"), UnsupportedError);
  EXPECT_THROW(awq_pack(random_weight(172, 64, 4, 32, false, rng), "m"), UnsupportedError);
  QuantizedWeight bad = random_weight(64, 64, 4, 32, false, rng);
  bad.sym = true;  // zeros are random, not 8
  EXPECT_THROW(gptq_pack(bad, GptqZeroFormat::V1, "m"), ArgError);
  bad.sym = false;
  bad.zero[0] = 2.5f;
  EXPECT_THROW(gptq_pack(bad, GptqZeroFormat::V1, "m"), ArgError);
  // Scales that are not fp16 values are rounded and counted.
  QuantizedWeight w = random_weight(64, 64, 4, 32, false, rng);
  w.scale[0] = 0.1f;  // not an fp16 value
  PackStats st;
  gptq_pack(w, GptqZeroFormat::V1, "m", &st);
  EXPECT_EQ(st.scales_rounded, 1);
  // Unpacking validates shapes against each other.
  const GptqTensors t = gptq_pack(random_weight(64, 64, 4, 32, false, rng), GptqZeroFormat::V1, "m");
  EXPECT_THROW(gptq_unpack(t.qweight, t.qzeros, t.scales.slice_rows(0, 1), t.g_idx, 4, 32, false, GptqZeroFormat::V1, "m"), FormatError);
  EXPECT_THROW(gptq_unpack(t.qweight, t.qzeros, t.scales, t.g_idx, 8, 32, false, GptqZeroFormat::V1, "m"), FormatError);
  Tensor gi = t.g_idx.clone();
  gi.data_mut<int32_t>()[3] = 99;
  EXPECT_THROW(gptq_unpack(t.qweight, t.qzeros, t.scales, gi, 4, 32, false, GptqZeroFormat::V1, "m"), FormatError);
}

// One rule set for QuantizedWeight, whoever checks it: the state files, both packings and
// dequantize() accept and refuse the same weights.
TEST(QuantizedWeightRules, OneRuleSetForStatePackingAndDequantize) {
  QuantizedWeight ok;
  ok.bits = 4;
  ok.group_size = 32;
  ok.rows = 8;
  ok.cols = 64;
  ok.q.assign(8 * 64, 3);
  ok.scale.assign(8 * 2, 0.5f);
  ok.zero.assign(8 * 2, 8.0f);
  for (int64_t c = 0; c < 64; ++c) ok.g_idx.push_back(int32_t(c / 32));
  EXPECT_EQ(ok.n_groups(), 2);
  EXPECT_EQ(QuantizedWeight::groups_for(65, 32), 3);  // a partial last group
  EXPECT_EQ(QuantizedWeight::groups_for(65, -1), 1);  // per output channel
  ASSERT_EQ(ok.problem(), "");
  auto refused_everywhere = [](const QuantizedWeight& w, const std::string& why) {
    EXPECT_NE(w.problem().find(why), std::string::npos) << w.problem();
    EXPECT_THROW(w.validate("w"), ArgError) << why;
    EXPECT_THROW(w.dequantize(), ArgError) << why;
    EXPECT_THROW(gptq_pack(w, GptqZeroFormat::V1, "w"), ArgError) << why;
    EXPECT_THROW(awq_pack(w, "w"), ArgError) << why;
    SafetensorsWriter sw;
    EXPECT_THROW(add_quantized_weight(sw, "w", w), ArgError) << why;
  };
  QuantizedWeight w = ok;
  w.bits = 1;
  w.q.assign(w.q.size(), 1);
  w.zero.assign(w.zero.size(), 1.0f);
  refused_everywhere(w, "bits");
  w = ok;
  w.scale[3] = 0.0f;  // the packings used to accept a zero scale, the state files did not
  refused_everywhere(w, "scale");
  w = ok;
  w.scale.resize(8 * 3);  // three groups do not fit group_size 32 over 64 columns
  w.zero.resize(8 * 3, 8.0f);
  refused_everywhere(w, "scale/zero");
  w = ok;
  w.sym = true;
  w.zero[0] = 7.0f;
  refused_everywhere(w, "sym");
  w = ok;
  w.g_idx[5] = 2;
  refused_everywhere(w, "g_idx");
}

}  // namespace
}  // namespace calq
