// AWQ: scale groups per architecture, scaling leaves the float function unchanged, α = 0 without
// clipping is RTN, the search never loses to α = 0, the clip search, unsupported architectures.
#include <gtest/gtest.h>

#include <random>

#include "quant/awq.h"
#include "quant_test_util.h"
#include "util/error.h"

namespace calq {
namespace {

using test::layer_inputs;
using test::random_ids;

TEST(QuantAwq, ScaleGroupsPerArchitecture) {
  auto llama = Decoder::load(test::tiny("llama2"));  // MHA: v -> o is a group
  auto g = awq_scale_groups(*llama, 0);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_EQ(g[0].describe(), "model.layers.0.input_layernorm -> q_proj,k_proj,v_proj");
  EXPECT_EQ(g[1].describe(), "model.layers.0.self_attn.v_proj -> o_proj");
  EXPECT_EQ(g[2].describe(), "model.layers.0.post_attention_layernorm -> gate_proj,up_proj");
  EXPECT_EQ(g[3].describe(), "model.layers.0.mlp.up_proj -> down_proj");
  EXPECT_EQ(g[0].inspect, ScaleGroup::Inspect::Attention);
  EXPECT_EQ(g[2].inspect, ScaleGroup::Inspect::Mlp);
  auto mistral = Decoder::load(test::tiny("mistral"));  // GQA: no v -> o (AutoAWQ's shape condition)
  EXPECT_EQ(awq_scale_groups(*mistral, 1).size(), 3u);
  auto opt = Decoder::load(test::tiny("opt"));
  auto go = awq_scale_groups(*opt, 0);
  ASSERT_EQ(go.size(), 4u);
  EXPECT_EQ(go[2].describe(), "model.decoder.layers.0.final_layer_norm -> fc1");
  EXPECT_EQ(go[3].describe(), "model.decoder.layers.0.fc1 -> fc2");
  auto cohere = Decoder::load(test::tiny("cohere"));
  EXPECT_THROW(awq_scale_groups(*cohere, 0), UnsupportedError);
}

// Random positive scales applied to every group leave the layer's float output unchanged.
TEST(QuantAwq, ChannelScalingPreservesTheFloatFunction) {
  for (const std::string arch : {"llama2", "opt", "qwen2", "mistral"}) {
    auto m = Decoder::load(test::tiny(arch));
    const int vocab = m->config().vocab_size;
    const auto ids = random_ids(3, 16, vocab, 5);
    const Tensor before = test::logits(*m, ids, 3, 16);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.25f, 4.0f);
    for (int i = 0; i < m->num_layers(); ++i)
      for (ScaleGroup& g : awq_scale_groups(*m, i)) {
        std::vector<float> s(static_cast<size_t>(g.layers[0]->in));
        for (float& v : s) v = u(rng);
        std::set<std::string> changed;
        apply_channel_scale(g, s, &changed);
        EXPECT_FALSE(changed.empty() && g.prev_norm) << g.describe();
      }
    const Tensor after = test::logits(*m, ids, 3, 16);
    EXPECT_LT(test::max_abs_diff(before, after), 2e-5 * (1 + test::max_abs(before))) << arch;
  }
}

TEST(QuantAwq, AlphaZeroWithoutClipIsRtn) {
  auto m = Decoder::load(test::tiny("llama2"));
  const auto ids = random_ids(4, 16, m->config().vocab_size, 11);
  const LayerInputs in = layer_inputs(*m, 1, ids, 4, 16);
  AwqConfig c;
  c.group_size = 32;
  c.fixed_alpha = 0.0;
  c.clip = false;
  Tensor next;
  const LayerResult r = awq_quantize_layer(*m, 1, in, c, &next);
  for (Linear* l : m->layer(1).linears()) {
    const Tensor w = l->weight_f32();
    const QuantizedWeight rtn = quantize_rtn(w.f32(), l->out, l->in, c.scheme());
    const QuantizedWeight& a = r.weights.at(l->name);
    EXPECT_EQ(a.q, rtn.q) << l->name;
    EXPECT_EQ(a.scale, rtn.scale) << l->name;
    EXPECT_EQ(a.zero, rtn.zero) << l->name;
  }
  // s = 1: the norms come back unchanged, and the model itself was left untouched.
  const Tensor n0 = r.replaced.at("model.layers.1.input_layernorm.weight");
  EXPECT_TRUE(test::bitwise_equal(n0, m->layer(1).attn_norm.weight.to(DType::F32)));
  EXPECT_TRUE(m->layer(1).q.weight().readonly());  // still the mapped checkpoint tensor
  // next = the float layer's output.
  EXPECT_TRUE(test::bitwise_equal(next, run_layer_chunked(*m, 1, in)));
}

TEST(QuantAwq, SearchNeverLosesToAlphaZeroAndBeatsRtnOnOutliers) {
  auto m = Decoder::load(test::tiny("opt"));  // planted outlier channel 17
  const auto ids = random_ids(8, 32, m->config().vocab_size, 13);
  const LayerInputs in = layer_inputs(*m, 0, ids, 8, 32);
  AwqConfig c;
  c.group_size = 32;
  c.bits = 3;
  Tensor next;
  const LayerResult r = awq_quantize_layer(*m, 0, in, c, &next);
  for (const auto& g : r.report["scale_groups"]) EXPECT_LE(g["loss"].get<double>(), g["loss_alpha0"].get<double>());
  // Layer output with AWQ weights vs RTN weights (same quantizer), against the float output.
  LayerSnapshot snap(*m, 0);
  install_layer(*m, r, Json());
  const Tensor y_awq = run_layer_chunked(*m, 0, in);
  snap.restore();
  for (Linear* l : m->layer(0).linears()) {
    const Tensor w = l->weight_f32();
    l->set_weight(quantize_rtn(w.f32(), l->out, l->in, c.scheme()).dequantize());
  }
  const Tensor y_rtn = run_layer_chunked(*m, 0, in);
  snap.restore();
  const double e_awq = test::mse(y_awq, next), e_rtn = test::mse(y_rtn, next);
  EXPECT_LT(e_awq, e_rtn) << "awq " << e_awq << " rtn " << e_rtn;
}

TEST(QuantAwq, ClipSearchShrinksOnlyWhenItHelps) {
  std::mt19937 g(3);
  std::normal_distribution<float> d(0, 1);
  const int64_t rows = 6, cols = 64, n = 700;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = d(g);
  w[5] = 9.0f;  // one outlier weight in row 0, group 0
  std::vector<float> xs(static_cast<size_t>(n * cols));
  for (auto& v : xs) v = d(g);
  const Tensor x = Tensor::from_f32(xs, {n, cols});
  AwqConfig c;
  c.bits = 3;
  c.group_size = 32;
  const auto mv = awq_search_clip(w.data(), rows, cols, x, c);
  ASSERT_EQ(mv.size(), size_t(rows * 2));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < 2; ++k) {
      float org = 0;
      for (int64_t j = 0; j < 32; ++j) org = std::max(org, std::fabs(w[size_t(r * cols + k * 32 + j)]));
      EXPECT_LE(mv[size_t(r * 2 + k)], org);
      EXPECT_GE(mv[size_t(r * 2 + k)], org * 0.5f);
    }
  // The clipped weights give a smaller output error on the inputs than the unclipped ones.
  std::vector<float> clipped = w;
  awq_apply_clip(clipped.data(), rows, cols, mv, c);
  auto err = [&](const std::vector<float>& src) {
    const Tensor q = quantize_rtn(src.data(), rows, cols, c.scheme()).dequantize();
    double e = 0;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t j = 0; j < cols; ++j) s += (double(q.f32()[r * cols + j]) - w[size_t(r * cols + j)]) * xs[size_t(t * cols + j)];
        e += s * s;
      }
    return e;
  };
  EXPECT_LT(err(clipped), err(w));
  EXPECT_LT(mv[0], 9.0f);  // the outlier row is clipped
}

TEST(QuantAwq, BadSettings) {
  AwqConfig c;
  c.bits = 1;
  EXPECT_THROW(c.validate(), ArgError);
  c.bits = 4;
  c.group_size = 0;
  EXPECT_THROW(c.validate(), ArgError);
  c.group_size = 128;
  c.fixed_alpha = 1.5;
  EXPECT_THROW(c.validate(), ArgError);
}

}  // namespace
}  // namespace calq
