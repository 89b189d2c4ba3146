// Known answers for ggml's reference block quantizers (values derived by hand from the algorithm
// in ggml-quants.c: Q8_0 rounds halves away from zero, Q4_0 uses the signed value of largest
// magnitude with d = max / -8 and truncates x/d + 8.5, nibble j holds elements j and j + 16).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "io/ggml_quants.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace calq::ggml {
namespace {

TEST(GgmlQuants, TypeTraits) {
  EXPECT_EQ(row_size(Type::Q8_0, 64), 68u);
  EXPECT_EQ(row_size(Type::Q4_0, 64), 36u);
  EXPECT_EQ(row_size(Type::Q4_1, 32), 20u);
  EXPECT_EQ(row_size(Type::Q5_0, 32), 22u);
  EXPECT_EQ(row_size(Type::Q5_1, 32), 24u);
  EXPECT_EQ(row_size(Type::F16, 3), 6u);
  EXPECT_EQ(row_size(Type::Q6_K, 256), 210u);
  EXPECT_THROW(row_size(Type::Q8_0, 33), ArgError);
  Type t;
  EXPECT_TRUE(type_from_name("q4_0", &t));
  EXPECT_EQ(t, Type::Q4_0);
  EXPECT_FALSE(type_from_name("q4_2", &t));
  EXPECT_EQ(type_traits(4).name, nullptr);  // removed Q4_2
}

TEST(GgmlQuants, Q8_0KnownAnswer) {
  float x[64] = {};
  x[0] = -127.0f;  // amax 127 -> d = 1, id = 1
  x[1] = -1.5f;    // roundf: halves go away from zero
  x[2] = -0.5f;
  x[3] = 0.5f;
  x[4] = 1.5f;
  x[5] = 2.5f;
  x[6] = 126.6f;
  x[7] = 0.49f;
  // second block: all zero -> d = 0, id = 0
  block_q8_0 y[2];
  quantize_row_q8_0_ref(x, y, 64);
  EXPECT_EQ(y[0].d, 0x3c00);  // fp16 1.0
  const int8_t want[8] = {-127, -2, -1, 1, 2, 3, 127, 0};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(y[0].qs[j], want[j]) << j;
  for (int j = 8; j < 32; ++j) EXPECT_EQ(y[0].qs[j], 0);
  EXPECT_EQ(y[1].d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[1].qs[j], 0);

  // amax 63.5 -> d = 0.5 (exact in fp16), id = 2: 0.25 -> 0.5 -> 1
  float x2[32] = {};
  x2[0] = 63.5f;
  x2[1] = 0.25f;
  x2[2] = -0.74f;  // -1.48 -> -1
  block_q8_0 z;
  quantize_row_q8_0_ref(x2, &z, 32);
  EXPECT_EQ(z.d, 0x3800);  // fp16 0.5
  EXPECT_EQ(z.qs[0], 127);
  EXPECT_EQ(z.qs[1], 1);
  EXPECT_EQ(z.qs[2], -1);
  float back[32];
  dequantize_row_q8_0(&z, back, 32);
  EXPECT_EQ(back[0], 63.5f);
  EXPECT_EQ(back[1], 0.5f);
  EXPECT_EQ(back[2], -0.5f);
}

TEST(GgmlQuants, Q4_0KnownAnswer) {
  float x[64] = {};
  // block 0: max = +8 (largest magnitude, first of equals wins) -> d = -1, id = -1; q = trunc(-x + 8.5)
  x[0] = 8.0f;    // 0.5  -> 0  -> (0-8)*-1 = 8
  x[1] = -7.0f;   // 15.5 -> 15 -> -7
  x[2] = -8.0f;   // 16.5 -> 16 -> clamped 15 -> -7
  x[3] = 0.5f;    // 8.0  -> 8  -> 0
  x[4] = -0.5f;   // 9.0  -> 9  -> -1
  x[5] = 3.2f;    // 5.3  -> 5  -> 3
  x[16] = 1.0f;   // 7.5  -> 7  -> 1
  x[17] = -2.6f;  // 11.1 -> 11 -> -3
  // block 1: max = -8 (first) -> d = 1: -8 -> 0.5 -> 0; 8 -> 16.5 -> 15 (clamped) -> 7
  x[32] = -8.0f;
  x[33] = 8.0f;
  block_q4_0 y[2];
  quantize_row_q4_0_ref(x, y, 64);
  EXPECT_EQ(y[0].d, 0xbc00);  // fp16 -1.0
  const uint8_t want0[16] = {0x70, 0xbf, 0x8f, 0x88, 0x89, 0x85, 0x88, 0x88,
                             0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(y[0].qs[j], want0[j]) << j;
  EXPECT_EQ(y[1].d, 0x3c00);
  EXPECT_EQ(y[1].qs[0], 0x80);  // element 32 -> 0 (low), element 48 -> 8 (high)
  EXPECT_EQ(y[1].qs[1], 0x8f);  // element 33 -> 15
  float back[64];
  dequantize_row_q4_0(y, back, 64);
  const float want_back[] = {8, -7, -7, 0, -1, 3};
  for (int j = 0; j < 6; ++j) EXPECT_EQ(back[j], want_back[j]) << j;
  EXPECT_EQ(back[16], 1.0f);
  EXPECT_EQ(back[17], -3.0f);
  EXPECT_EQ(back[32], -8.0f);
  EXPECT_EQ(back[33], 7.0f);
}

TEST(GgmlQuants, Q4_1Q5_0Q5_1KnownAnswers) {
  // Q5_0: x_j = j - 16: max = -16 -> d = 1, q_j = trunc(j + 0.5) = j, 5th bit set for j >= 16.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16);
  block_q5_0 b5;
  quantize_row_q5_0_ref(x, &b5, 32);
  EXPECT_EQ(b5.d, 0x3c00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b5.qs[j], uint8_t(j | (j << 4))) << j;
  uint32_t qh;
  std::memcpy(&qh, b5.qh, 4);
  EXPECT_EQ(qh, 0xffff0000u);
  float back[32];
  dequantize_row_q5_0(&b5, back, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], x[j]) << j;

  // Q5_1: x_j = j / 2: min 0, max 15.5 -> d = 0.5, q_j = j.
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * float(j);
  block_q5_1 b51;
  quantize_row_q5_1_ref(x, &b51, 32);
  EXPECT_EQ(b51.d, 0x3800);
  EXPECT_EQ(b51.m, 0);
  std::memcpy(&qh, b51.qh, 4);
  EXPECT_EQ(qh, 0xffff0000u);
  dequantize_row_q5_1(&b51, back, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], x[j]) << j;

  // Q4_1: x_j = 1 + (j % 16): min 1, max 16 -> d = 1, m = 1, q_j = j % 16.
  for (int j = 0; j < 32; ++j) x[j] = float(1 + j % 16);
  block_q4_1 b41;
  quantize_row_q4_1_ref(x, &b41, 32);
  EXPECT_EQ(b41.d, 0x3c00);
  EXPECT_EQ(b41.m, 0x3c00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b41.qs[j], uint8_t(j | (j << 4)));
  dequantize_row_q4_1(&b41, back, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], x[j]) << j;
}

TEST(GgmlQuants, DispatchMatchesReferencesAndBoundsError) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 0.05f);
  std::vector<float> x(128);
  for (float& v : x) v = nd(rng);
  for (Type t : {Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::F16, Type::BF16, Type::F32}) {
    std::string bytes(row_size(t, 128), '\0');
    quantize_row(t, x.data(), bytes.data(), 128);
    std::vector<float> y(128);
    dequantize_row(t, bytes.data(), y.data(), 128);
    // Error bounded by the block's step (generous: 8-bit/16-level steps of a N(0, 0.05) block).
    const float tol = t == Type::F32 ? 0.f : (t == Type::Q8_0 || t == Type::F16 || t == Type::BF16) ? 2e-3f : 3e-2f;
    for (int j = 0; j < 128; ++j) EXPECT_NEAR(y[size_t(j)], x[size_t(j)], tol) << type_name(t) << " " << j;
    // Misaligned source gives the same values.
    std::string shifted = " " + bytes;
    std::vector<float> y2(128);
    dequantize_row(t, shifted.data() + 1, y2.data(), 128);
    EXPECT_EQ(0, std::memcmp(y.data(), y2.data(), 128 * 4)) << type_name(t);
  }
  std::string buf(row_size(Type::Q8_0, 32), '\0');
  x[3] = NAN;
  EXPECT_THROW(quantize_row(Type::Q8_0, x.data(), buf.data(), 32), ArgError);
  EXPECT_THROW(quantize_row(Type::Q6_K, x.data(), buf.data(), 256), UnsupportedError);
  EXPECT_THROW(dequantize_row(Type::Q8_0, buf.data(), x.data(), 31), ArgError);
}

}  // namespace
}  // namespace calq::ggml
