// attention() (blocked, online softmax) against attention_ref on random shapes: GQA, sliding
// windows, T = 1, T not a multiple of 16 and longer than one key chunk, head_dim 8..128 incl.
// non-multiples of 16, batch > 1, soft and very sharp score distributions.
// f32: max |Δ| <= 1e-5·qscale (outputs are convex combinations of N(0,1) values; fp32 rounding
// of the scores, which grow with qscale, and of the softmax is ~1e-6·qscale; measured <= 7e-6). bf16: against the reference run on bf16-rounded q, k, v,
// max |Δ| <= 1e-2 (the probabilities are also rounded to bf16: 2^-9 relative each; measured <= 5e-3).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "qkernels_test_util.h"
#include "tensor/dtype.h"

namespace calq {
namespace {

struct Case {
  int64_t batch, seq;
  int heads, kv_heads, head_dim, window;
  float qscale;  // multiplies q: 1 = soft scores, 8 = near-argmax attention
};

std::vector<float> randn(size_t n, std::mt19937& g) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

double max_diff(const Case& c, bool bf16, uint32_t seed) {
  std::mt19937 g(seed);
  const int64_t rows = c.batch * c.seq;
  auto q = randn(size_t(rows * c.heads * c.head_dim), g);
  auto k = randn(size_t(rows * c.kv_heads * c.head_dim), g);
  auto v = randn(size_t(rows * c.kv_heads * c.head_dim), g);
  for (auto& x : q) x *= c.qscale;
  AttnDims d;
  d.batch = c.batch;
  d.seq = c.seq;
  d.heads = c.heads;
  d.kv_heads = c.kv_heads;
  d.head_dim = c.head_dim;
  d.window = c.window;
  d.scale = 1.0f / std::sqrt(float(c.head_dim));
  d.bf16 = bf16;
  std::vector<float> got(q.size(), NAN), ref(q.size(), NAN);
  attention(q.data(), k.data(), v.data(), got.data(), d);
  if (bf16)
    for (auto* t : {&q, &k, &v})
      for (auto& x : *t) x = bf16_to_f32(f32_to_bf16(x));
  attention_ref(q.data(), k.data(), v.data(), ref.data(), d);
  double m = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    m = std::max(m, std::fabs(double(got[i]) - ref[i]));
  }
  return m;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {1, 1, 4, 4, 16, 0, 1},      // one token
      {2, 1, 8, 2, 64, 0, 1},      // one token per sequence, GQA
      {1, 24, 8, 2, 8, 0, 1},      // llama3 tiny fixture: head_dim 8
      {2, 24, 4, 2, 16, 8, 1},     // mistral tiny fixture: window 8
      {1, 37, 4, 4, 24, 0, 1},     // head_dim not a multiple of 16
      {1, 300, 8, 2, 64, 0, 1},    // several key chunks, T % 16 != 0
      {1, 300, 8, 2, 64, 0, 8},    // sharp scores: the running max moves across chunks
      {3, 131, 4, 1, 128, 0, 1},   // head_dim 128, MQA, batch 3
      {1, 200, 6, 3, 80, 50, 1},   // window spanning chunk boundaries, head_dim 80
      {1, 77, 4, 2, 32, 1, 1},     // window 1: each query sees only itself
      {2, 260, 32, 8, 64, 129, 8}, // llama-1b-like heads, window just over a chunk
      {1, 50, 2, 2, 40, 100, 1},   // window longer than the sequence
  };
  return c;
}

TEST(AttentionFast, MatchesReferenceF32) {
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    uint32_t seed = 1;
    for (const Case& c : cases()) {
      const double e = max_diff(c, false, seed++);
      EXPECT_LE(e, 1e-5 * c.qscale) << "B=" << c.batch << " T=" << c.seq << " h=" << c.heads << "/" << c.kv_heads
                         << " hd=" << c.head_dim << " window=" << c.window << " qscale=" << c.qscale;
    }
  }
}

TEST(AttentionFast, MatchesBf16RoundedReference) {
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    uint32_t seed = 100;
    for (const Case& c : cases()) {
      const double e = max_diff(c, true, seed++);
      EXPECT_LE(e, 1e-2) << "B=" << c.batch << " T=" << c.seq << " h=" << c.heads << "/" << c.kv_heads
                         << " hd=" << c.head_dim << " window=" << c.window << " qscale=" << c.qscale;
    }
  }
}

TEST(AttentionFast, FirstQueryCopiesItsValue) {
  for (Isa isa : test::test_isas()) {
    test::IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    // Causal: position 0 attends only to key 0, so out[0] == v[0] exactly up to rounding.
    std::mt19937 g(5);
    const int hd = 16;
    auto q = randn(size_t(10 * 2 * hd), g), k = randn(size_t(10 * 2 * hd), g), v = randn(size_t(10 * 2 * hd), g);
    AttnDims d;
    d.seq = 10;
    d.heads = d.kv_heads = 2;
    d.head_dim = hd;
    d.scale = 0.25f;
    std::vector<float> out(q.size());
    attention(q.data(), k.data(), v.data(), out.data(), d);
    for (int e = 0; e < 2 * hd; ++e) EXPECT_NEAR(out[size_t(e)], v[size_t(e)], 1e-6);
  }
}

}  // namespace
}  // namespace calq
