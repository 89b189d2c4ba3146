// Quantized weights stacked by rows (q|k|v, gate|up: kernels/qgemm.h stack_quantized, model/linear.h
// fused_linear): the stacked product equals the members' products bitwise on every ISA, compute
// type and row count (decode and prefill kernels); the members become views into the stacked codes
// with unchanged results and no second copy of the codes; weights that do not stack are refused;
// a decoder whose q|k|v and gate|up run stacked gives the same logits, bitwise, as one where they
// run one by one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/qgemm.h"
#include "model/decoder.h"
#include "model/linear.h"
#include "model/synthetic.h"
#include "qkernels_test_util.h"
#include "test_util.h"

namespace calq {
namespace {

using test::randn;

using Maker = std::function<std::shared_ptr<QuantPackedWeight>(int64_t n, ComputeType c)>;

std::vector<float> run(const QuantPackedWeight& w, const std::vector<float>& x, int64_t rows, const float* bias) {
  std::vector<float> y(size_t(rows * w.n()), -7.0f);
  gemm_packed(x.data(), rows, w, bias, y.data());
  return y;
}

// Members of widths `ns` (the last may be any width), stacked; every ISA × compute × rows.
void check_stack(const Maker& make, const std::vector<int64_t>& ns, int64_t k, const std::string& name) {
  uint32_t seed = 77;
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
    std::vector<std::shared_ptr<QuantPackedWeight>> members;
    std::vector<const QuantPackedWeight*> raw;
    int64_t total = 0;
    for (int64_t n : ns) {
      members.push_back(make(n, c));
      raw.push_back(members.back().get());
      total += n;
    }
    size_t member_bytes = 0;
    for (const auto& m : members) member_bytes += m->bytes();
    const QuantStack st = stack_quantized(raw, c);
    ASSERT_TRUE(st.stacked) << name;
    ASSERT_EQ(st.members.size(), ns.size());
    EXPECT_EQ(st.stacked->n(), total);
    EXPECT_EQ(st.stacked->k(), k);
    EXPECT_EQ(st.stacked->compute(), c);
    // The views hold what the members held (the codes now live once, in the stack).
    size_t view_bytes = 0;
    for (const auto& v : st.members) view_bytes += v->bytes();
    EXPECT_EQ(view_bytes, member_bytes) << name;
    EXPECT_LE(st.stacked->bytes(), member_bytes) << name;
    EXPECT_GE(st.stacked->bytes() + ns.size() * size_t(5 * (k + 32)), member_bytes) << name;  // the members' input orders
    for (Isa isa : test::test_isas()) {
      test::IsaScope scope(isa);
      for (int64_t rows : {1, 3, 4, 5, 13, 30}) {
        const std::string what = name + " " + compute_type_name(c) + " " + isa_name(isa) + " rows=" + std::to_string(rows);
        const auto x = randn(size_t(rows * k), seed++);
        const auto bias = randn(size_t(total), seed++);
        const float* b = rows % 2 ? bias.data() : nullptr;
        const auto got = run(*st.stacked, x, rows, b);
        int64_t col0 = 0;
        for (size_t i = 0; i < ns.size(); ++i) {
          const int64_t n = ns[i];
          const auto want = run(*members[i], x, rows, b ? b + col0 : nullptr);
          const auto view = run(*st.members[i], x, rows, b ? b + col0 : nullptr);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < n; ++j) {
              const float w = want[size_t(r * n + j)];
              ASSERT_EQ(std::memcmp(&got[size_t(r * total + col0 + j)], &w, 4), 0)
                  << what << " member " << i << " y[" << r << "," << j << "] " << got[size_t(r * total + col0 + j)]
                  << " vs " << w;
              ASSERT_EQ(std::memcmp(&view[size_t(r * n + j)], &w, 4), 0) << what << " view " << i;
            }
          col0 += n;
        }
      }
    }
  }
}

// Members of one input: act-order ones share one g_idx (GPTQ's q/k/v: one Hessian, one order).
Maker codes_maker(test::QSpec s, QActs acts = QActs::Float) {
  return [s, acts](int64_t n, ComputeType c) mutable {
    s.rows = n;
    QuantizedWeight qw = test::random_qweight(s, uint32_t(1000 + n));
    test::QSpec one = s;
    one.rows = 1;
    qw.g_idx = test::random_qweight(one, 999).g_idx;
    return pack_quantized(test::codes_view(qw), c, "w", acts);
  };
}

Maker ggml_maker(ggml::Type t, int64_t k, QActs acts = QActs::Float) {
  return [t, k, acts](int64_t n, ComputeType c) {
    const auto blocks = test::random_ggml(t, n, k, uint32_t(2000 + n));
    return pack_ggml(t, blocks.data(), n, k, c, "w", acts);
  };
}

Maker w8a8_maker(int64_t k, W8A8Options o) {
  return [k, o](int64_t n, ComputeType c) {
    std::vector<int8_t> w(size_t(n * k));
    std::mt19937 g(uint32_t(3000 + n));
    for (auto& v : w) v = int8_t(std::uniform_int_distribution<int>(-127, 127)(g));
    const auto s = randn(size_t(n), uint32_t(n), 0.01f);
    std::vector<float> scale(s.size());
    for (size_t i = 0; i < s.size(); ++i) scale[i] = std::fabs(s[i]) + 1e-3f;
    return pack_w8a8(w8a8_pack(w.data(), scale.data(), n, k), o, c);
  };
}

TEST(QStack, StackedProductEqualsMembersBitwise) {
  check_stack(codes_maker({4, 0, 160, 32, false, false, true}), {64, 32, 45}, 160, "w4 g32 asym");
  check_stack(codes_maker({4, 0, 256, 128, true, false, true}), {32, 96}, 256, "w4 g128 act-order");
  check_stack(codes_maker({3, 0, 96, 64, false, false, false}), {32, 32, 32}, 96, "w3 f32 scales");
  check_stack(codes_maker({8, 0, 200, -1, false, true, true}), {64, 20}, 200, "w8 per-channel");
  check_stack(codes_maker({4, 0, 256, 128, false, false, true}, QActs::Int8), {32, 64}, 256, "w4 int8 acts");
  for (ggml::Type t : {ggml::Type::Q4_0, ggml::Type::Q4_1, ggml::Type::Q5_0, ggml::Type::Q5_1, ggml::Type::Q8_0})
    check_stack(ggml_maker(t, 320), {64, 32, 32}, 320, ggml::type_name(t));
  check_stack(ggml_maker(ggml::Type::Q4_0, 320, QActs::Int8), {32, 33}, 320, "q4_0 int8 acts");
  check_stack(w8a8_maker(100, {}), {32, 64, 7}, 100, "w8a8 per-token");
}

TEST(QStack, RefusesWeightsThatDoNotStack) {
  const ComputeType c = ComputeType::BF16;
  auto stacks = [&](std::shared_ptr<QuantPackedWeight> a, std::shared_ptr<QuantPackedWeight> b) {
    return stack_quantized({a.get(), b.get()}, c).stacked != nullptr;
  };
  const Maker g128 = codes_maker({4, 0, 256, 128, false, false, true});
  EXPECT_TRUE(stacks(g128(32, c), g128(40, c)));
  EXPECT_FALSE(stacks(g128(40, c), g128(32, c)));  // a block of 32 outputs would straddle members
  EXPECT_FALSE(stacks(g128(32, c), codes_maker({4, 0, 256, 64, false, false, true})(32, c)));   // groups
  EXPECT_FALSE(stacks(g128(32, c), codes_maker({4, 0, 256, 128, true, false, true})(32, c)));   // act-order
  EXPECT_FALSE(stacks(g128(32, c), codes_maker({4, 0, 256, 128, false, true, true})(32, c)));   // sym vs asym
  EXPECT_FALSE(stacks(g128(32, c), codes_maker({8, 0, 256, 128, false, false, true})(32, c)));  // storage
  EXPECT_FALSE(stacks(g128(32, c), codes_maker({4, 0, 128, 128, false, false, true})(32, c)));  // input size
  EXPECT_FALSE(stacks(g128(32, c), codes_maker({4, 0, 256, 128, false, false, true}, QActs::Int8)(32, c)));
  EXPECT_FALSE(stacks(ggml_maker(ggml::Type::Q4_0, 256)(32, c), ggml_maker(ggml::Type::Q8_0, 256)(32, c)));
  EXPECT_FALSE(stacks(w8a8_maker(256, {})(32, c), g128(32, c)));  // kinds
  W8A8Options st;
  st.act = W8A8Act::PerTensorStatic;
  st.static_scale = 0.5f;
  EXPECT_FALSE(stacks(w8a8_maker(256, {})(32, c), w8a8_maker(256, st)(32, c)));
  EXPECT_FALSE(stack_quantized({g128(32, c).get()}, c).stacked);
}

void set_quantized_linear(Linear& l, const std::string& name, std::shared_ptr<QuantPackedWeight> w) {
  l.name = name;
  l.out = w->n();
  l.in = w->k();
  l.set_quantized(std::move(w));
}

// fused_linear on quantized members: the members' weights become views (same outputs, bitwise),
// the fused product is their concatenation, and nothing is held twice.
TEST(QStack, FusedLinearReplacesTheMembersCodes) {
  const ComputeType c = ComputeType::BF16;
  const Maker make = ggml_maker(ggml::Type::Q4_0, 256);
  Linear q, k, v;
  set_quantized_linear(q, "q", make(64, c));
  set_quantized_linear(k, "k", make(32, c));
  set_quantized_linear(v, "v", make(32, c));
  k.bias = Tensor::empty(DType::F32, {32});
  for (int j = 0; j < 32; ++j) k.bias.f32_mut()[j] = 0.25f * float(j);
  const auto x = randn(size_t(9 * 256), 5);
  std::vector<std::vector<float>> before;
  size_t bytes = 0;
  for (Linear* l : {&q, &k, &v}) {
    before.emplace_back(size_t(9 * l->out));
    linear_forward(*l, x.data(), 9, before.back().data(), c);
    bytes += l->resident_bytes();
  }
  const auto* old_q = q.quantized().get();
  auto f = fused_linear({&q, &k, &v}, c);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->out, 128);
  EXPECT_NE(q.quantized().get(), old_q);  // a view now
  EXPECT_EQ(q.fused(), f);
  EXPECT_EQ(fused_linear({&q, &k, &v}, c), f);  // built once
  EXPECT_EQ(q.resident_bytes() + k.resident_bytes() + v.resident_bytes(), bytes);
  EXPECT_EQ(f->own_bytes, 0u);  // no permutation: the stack holds exactly the members' bytes
  std::vector<float> y(size_t(9 * 128));
  gemm_packed(x.data(), 9, *f->packed, f->bias.data(), y.data());
  int64_t col0 = 0;
  size_t i = 0;
  for (Linear* l : {&q, &k, &v}) {
    std::vector<float> after(size_t(9 * l->out));
    linear_forward(*l, x.data(), 9, after.data(), c);
    EXPECT_EQ(std::memcmp(after.data(), before[i].data(), after.size() * 4), 0) << l->name;
    for (int64_t r = 0; r < 9; ++r)
      EXPECT_EQ(std::memcmp(&y[size_t(r * 128 + col0)], &before[i][size_t(r * l->out)], size_t(l->out) * 4), 0) << l->name;
    col0 += l->out;
    ++i;
  }
  // Another compute type shares the codes; float and quantized members do not mix.
  auto f32 = fused_linear({&q, &k, &v}, ComputeType::F32);
  ASSERT_TRUE(f32);
  EXPECT_EQ(f32->compute, ComputeType::F32);
  EXPECT_EQ(f32->own_bytes, 0u);
  Linear flt;
  flt.name = "float";
  flt.out = 32;
  flt.in = 256;
  flt.set_weight(Tensor::zeros(DType::F32, {32, 256}));
  EXPECT_FALSE(fused_linear({&q, &flt}, c));
  EXPECT_FALSE(fused_quantized_linear({&flt, &flt}, c));
}

// Identity transform: fusion off for that layer without changing the math.
struct Identity final : InputTransform {
  void apply(float*, int64_t, int64_t) const override {}
  std::string describe() const override { return "identity"; }
};

// A decoder with quantized (GGUF Q4_0 / W4 g64) linears: q|k|v and gate|up stacked vs run one by
// one. Unstacked model: q gets an identity input transform (three GEMMs, the same kernels), and
// gate's packed input order an explicit identity permutation (the same products, but a layout the
// stack refuses), so its MLP runs the float path's up-then-gated-epilogue: logits equal bitwise.
TEST(QStack, DecoderLogitsEqualUnstackedBitwise) {
  ModelConfig cfg = synth_config("llama-tiny", 2);
  cfg.intermediate_size = 704;  // a multiple of 32: gate|up stack (688 does not)
  SynthOptions so;
  so.seed = 3;
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
    auto stacked = synth_decoder(cfg, so, c), plain = synth_decoder(cfg, so, c);
    uint32_t seed = 1;
    for (int i = 0; i < cfg.num_layers; ++i)
      for (size_t j = 0; j < stacked->layer(i).linears().size(); ++j) {
        Linear* a = stacked->layer(i).linears()[j];
        Linear* b = plain->layer(i).linears()[j];
        if (!a->out) continue;
        test::QSpec s{4, a->out, a->in, 64, false, false, true};
        QuantizedWeight qw = test::random_qweight(s, seed++);
        for (auto& sc : qw.scale) sc *= 0.2f;  // activations of a sane size through the layers
        a->set_quantized(pack_quantized(test::codes_view(qw), c));
        QPacked p = qpack_codes(test::codes_view(qw));
        if (b == &plain->layer(i).gate) {
          p.perm.resize(size_t(p.kp));
          std::iota(p.perm.begin(), p.perm.end(), 0);
        }
        b->set_quantized(pack_quantized(std::move(p), c));
        if (b == &plain->layer(i).q) b->input_transform = std::make_shared<Identity>();
      }
    const size_t plain_bytes = plain->pack_weights(), stacked_bytes = stacked->pack_weights();
    ASSERT_TRUE(stacked->layer(0).q.fused());
    ASSERT_TRUE(stacked->layer(0).gate.fused());
    EXPECT_FALSE(plain->layer(0).q.fused());
    EXPECT_FALSE(plain->layer(0).gate.fused());
    // The stacks replace the members' codes: the same resident bytes (the plain gate's permutation aside).
    EXPECT_LE(stacked_bytes, plain_bytes);
    EXPECT_GE(stacked_bytes + size_t(cfg.num_layers * 4 * (cfg.hidden_size + 64)), plain_bytes);
    const std::vector<int32_t> ids = {1, 7, 300, 9, 44, 1000, 2, 5, 6, 8, 11, 12};
    for (int64_t batch : {1, 3}) {  // decode-sized (4 rows) and prefill-sized (12 rows) products
      const Tensor a = stacked->forward(ids.data(), batch, 4).logits, b = plain->forward(ids.data(), batch, 4).logits;
      ASSERT_EQ(a.numel(), b.numel());
      EXPECT_EQ(std::memcmp(a.f32(), b.f32(), size_t(a.numel()) * 4), 0) << compute_type_name(c) << " batch " << batch;
      double amax = 0;
      for (int64_t j = 0; j < a.numel(); ++j) amax = std::max(amax, std::fabs(double(a.f32()[j])));
      EXPECT_GT(amax, 1e-3);
      EXPECT_TRUE(std::isfinite(amax));
    }
  }
}

}  // namespace
}  // namespace calq
