// SmoothQuant: the smoothing factors (Eq. 4), smoothing leaves the float model unchanged, W8A8 with
// smoothing beats naive W8A8 on the planted-outlier OPT fixture, static activation scales.
#include <gtest/gtest.h>

#include "quant/smoothquant.h"
#include "quant_test_util.h"
#include "util/error.h"

namespace calq {
namespace {

using test::layer_inputs;
using test::random_ids;

TEST(QuantSmoothQuant, ScalesFollowEquationFour) {
  auto m = Decoder::load(test::tiny("llama2"));
  auto groups = smoothquant_groups(*m, 0);
  ASSERT_EQ(groups.size(), 2u);
  const ScaleGroup& g = groups[0];
  const int64_t in = g.layers[0]->in;
  std::vector<float> act(static_cast<size_t>(in));
  for (int64_t j = 0; j < in; ++j) act[size_t(j)] = 0.1f * float(j + 1);
  const auto s = smoothquant_scales(g, act, 0.5);
  for (int64_t j = 0; j < in; j += 7) {
    float wmax = 0;
    for (const Linear* l : g.layers) {
      const Tensor w = l->weight_f32();
      for (int64_t r = 0; r < l->out; ++r) wmax = std::max(wmax, std::fabs(w.f32()[r * in + j]));
    }
    EXPECT_NEAR(s[size_t(j)], std::sqrt(act[size_t(j)]) / std::sqrt(wmax), 1e-6 * s[size_t(j)]);
  }
  // α = 1 moves everything to the weights: s = max|X_j|; α = 0: s = 1 / max|W_j|.
  EXPECT_NEAR(smoothquant_scales(g, act, 1.0)[3], act[3], 1e-6);
  auto cohere = Decoder::load(test::tiny("cohere"));
  auto gc = smoothquant_groups(*cohere, 0);  // parallel block: one norm feeds attention and MLP
  ASSERT_EQ(gc.size(), 1u);
  EXPECT_EQ(gc[0].layers.size(), 5u);
}

TEST(QuantSmoothQuant, SmoothingLeavesTheFloatModelUnchanged) {
  for (const std::string arch : {"llama2", "opt", "qwen2", "cohere", "llama3"}) {
    auto m = Decoder::load(test::tiny(arch));
    const int64_t T = 16;
    const auto ids = random_ids(3, T, m->config().vocab_size, 21);
    const Tensor before = test::logits(*m, ids, 3, T);
    LayerInputs in = layer_inputs(*m, 0, ids, 3, T);
    for (int i = 0; i < m->num_layers(); ++i) {
      Tensor next;
      const auto absmax = smoothquant_act_absmax(*m, i, in, &next);
      for (ScaleGroup& g : smoothquant_groups(*m, i))
        apply_channel_scale(g, smoothquant_scales(g, absmax.at(g.layers[0]->name), 0.8), nullptr);
      in.x = next;
    }
    const Tensor after = test::logits(*m, ids, 3, T);
    EXPECT_LT(test::max_abs_diff(before, after), 2e-5 * (1 + test::max_abs(before))) << arch;
  }
}

// Layer-0 output error of a W8A8 variant against the float layer.
double w8a8_error(Decoder& m, const LayerInputs& in, SmoothQuantConfig c) {
  Tensor ref;
  const LayerResult r = smoothquant_quantize_layer(m, 0, in, c, &ref);
  LayerSnapshot snap(m, 0);
  Json act = c.activation_json();
  act["modules"] = Json::array();
  for (Linear* l : m.layer(0).linears()) act["modules"].push_back(l->name);
  install_layer(m, r, act);
  for (Linear* l : m.layer(0).linears()) EXPECT_TRUE(l->input_transform != nullptr);
  const Tensor y = run_layer_chunked(m, 0, in);
  snap.restore();
  return test::mse(y, ref);
}

TEST(QuantSmoothQuant, SmoothingBeatsNaiveW8A8OnOutlierChannel) {
  auto m = Decoder::load(test::tiny("opt"));  // input_layernorm channel 17 scaled x20
  const auto ids = random_ids(6, 32, m->config().vocab_size, 23);
  const LayerInputs in = layer_inputs(*m, 0, ids, 6, 32);
  SmoothQuantConfig sq;
  SmoothQuantConfig naive;
  naive.smooth = false;
  const double e_sq = w8a8_error(*m, in, sq), e_naive = w8a8_error(*m, in, naive);
  EXPECT_LT(e_sq, e_naive) << "smoothquant " << e_sq << " naive " << e_naive;
  // The static per-tensor variant runs too, with one positive scale per linear.
  SmoothQuantConfig st;
  st.act = ActGranularity::PerTensorStatic;
  Tensor next;
  const LayerResult r = smoothquant_quantize_layer(*m, 0, in, st, &next);
  EXPECT_EQ(r.input_scales.size(), m->layer(0).linears().size());
  for (const auto& [mod, s] : r.input_scales) EXPECT_GT(s, 0.0f) << mod;
  EXPECT_TRUE(std::isfinite(w8a8_error(*m, in, st)));
  // Weights: 8-bit per output channel, symmetric absmax.
  const QuantizedWeight& q = r.weights.at("model.decoder.layers.0.self_attn.q_proj");
  EXPECT_EQ(q.bits, 8);
  EXPECT_TRUE(q.sym);
  EXPECT_EQ(q.group_size, -1);
  EXPECT_EQ(q.zero[0], 128.0f);
}

TEST(QuantSmoothQuant, BadSettings) {
  SmoothQuantConfig c;
  c.alpha = 1.5;
  EXPECT_THROW(c.validate(), ArgError);
  c.alpha = 0.5;
  c.a_bits = 9;
  EXPECT_THROW(c.validate(), ArgError);
}

}  // namespace
}  // namespace calq
