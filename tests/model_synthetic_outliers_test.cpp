// Planted outliers of synthetic models (model/synthetic.h): gains follow OPT-125m's real act_scales
// profile (scale / median of the same linear, layer i of L reading profile layer i*12/L), and the
// planted model's inputs carry them: the q_proj input's channel max|x| ranks like the profile's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "io/safetensors.h"
#include "model/observer.h"
#include "model/synthetic.h"
#include "test_util.h"

namespace calq {
namespace {

std::string act_scales() { return test::data("data/opt-125m-act-scales/act_scales.safetensors"); }

std::vector<float> profile(const std::string& name) {
  const Tensor t = SafetensorsFile::open(act_scales())->get(name).to(DType::F32);
  return std::vector<float>(t.f32(), t.f32() + t.numel());
}

TEST(SynthOutliers, GainsFollowTheActScalesProfile) {
  const ModelConfig c = synth_config("opt-125m", 2);
  OutlierPlan plan;
  plan.act_scales = act_scales();
  const SynthGains g = outlier_gains(c, plan);
  // Layer 1 of 2 reads profile layer 6 of 12.
  for (const auto& [layer, src] : std::vector<std::pair<int, int>>{{0, 0}, {1, 6}}) {
    const std::string L = "model.decoder.layers." + std::to_string(layer) + ".";
    std::vector<float> p = profile("model.decoder.layers." + std::to_string(src) + ".self_attn.q_proj");
    std::vector<float> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    const float median = 0.5f * (sorted[383] + sorted[384]);
    const auto& w = g.at(L + "self_attn_layer_norm.weight");
    ASSERT_EQ(w.size(), 768u);
    for (size_t ch : {size_t(0), size_t(422), size_t(767)}) EXPECT_FLOAT_EQ(w[ch], p[ch] / median) << L << ch;
    EXPECT_EQ(g.at(L + "self_attn_layer_norm.bias"), w);
    EXPECT_EQ(g.at(L + "fc1.weight").size(), 3072u);  // fc2's input: rows of fc1
  }
  // The profile's outliers stand far out: the largest gain of each norm, printed for the record.
  for (const std::string n : {"0.self_attn_layer_norm", "1.self_attn_layer_norm", "1.final_layer_norm"}) {
    const auto& w = g.at("model.decoder.layers." + n + ".weight");
    const auto top = std::max_element(w.begin(), w.end());
    std::printf("[ gains    ] layer %s: max %.2f at channel %d\n", n.c_str(), *top, int(top - w.begin()));
    EXPECT_GT(*top, 2.0f);
  }
  const auto& fc1_in = g.at("model.decoder.layers.1.final_layer_norm.weight");  // profile layer 6
  EXPECT_EQ(std::max_element(fc1_in.begin(), fc1_in.end()) - fc1_in.begin(), 422);  // OPT's known outlier channel
  EXPECT_GT(fc1_in[422], 20.0f);
  // Fixed channels instead: x factor on both norms, 1 elsewhere.
  OutlierPlan fixed;
  fixed.channels = {17};
  fixed.factor = 20;
  const SynthGains f = outlier_gains(c, fixed);
  EXPECT_EQ(f.at("model.decoder.layers.1.final_layer_norm.weight")[17], 20.0f);
  EXPECT_EQ(f.at("model.decoder.layers.1.final_layer_norm.weight")[16], 1.0f);
  fixed.channels = {768};
  EXPECT_THROW(outlier_gains(c, fixed), ArgError);
}

TEST(SynthOutliers, PlantedModelWeightsCarryTheGains) {
  const ModelConfig c = synth_config("opt-125m", 1);
  OutlierPlan plan;
  plan.channels = {5};
  plan.factor = 20;
  SynthOptions plain, planted;
  planted.gains = std::make_shared<const SynthGains>(outlier_gains(c, plan));
  const auto a = synth_source(c, plain), b = synth_source(c, planted);
  const std::string n = "model.decoder.layers.0.self_attn_layer_norm.weight";
  const Tensor wa = a->get(n), wb = b->get(n);
  EXPECT_EQ(wb.f32()[5], 20.0f * wa.f32()[5]);
  EXPECT_EQ(wb.f32()[6], wa.f32()[6]);
  const std::string q = "model.decoder.layers.0.self_attn.q_proj.weight";
  EXPECT_EQ(std::memcmp(a->get(q).raw(), b->get(q).raw(), a->get(q).nbytes()), 0);  // weights stay random
}

}  // namespace
}  // namespace calq
