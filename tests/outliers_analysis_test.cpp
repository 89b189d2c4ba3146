// Outlier analysis: finds exactly the planted channel 17 of tiny/opt; the criteria on hand-built
// statistics (relative, massive, LLM.int8), the histogram median estimate, the report outputs.
#include <gtest/gtest.h>

#include <cmath>

#include "analysis/outliers.h"
#include "calib/calib_set.h"
#include "model/decoder.h"
#include "observe/stats_runner.h"
#include "test_util.h"

namespace calq {
namespace {


// tiny/opt multiplies LayerNorm weight 17 by 20 in self_attn_layer_norm and final_layer_norm of
// every layer (../shared/models/tiny/opt/golden/README.md): the q/k/v and fc1 inputs carry it.
TEST(OutliersAnalysis, FindsExactlyThePlantedOptChannel) {
  auto m = Decoder::load(test::data("models/tiny/opt"));
  StatsRunOptions o;
  o.batch = 4;
  const ActStats s = collect_stats(*m, test::lcg_calib_set(16, 64, 0, 128, 1), o);
  const OutlierReport r = analyze_outliers(s);  // default thresholds
  using Flags = std::vector<std::pair<int, int>>;
  ASSERT_EQ(r.relative_by_kind.size(), 2u) << format_outlier_report(r);
  EXPECT_EQ(r.relative_by_kind.at("attn_in"), (Flags{{17, 2}}));
  EXPECT_EQ(r.relative_by_kind.at("mlp_in"), (Flags{{17, 2}}));
  EXPECT_TRUE(r.massive_by_kind.empty());
  ASSERT_EQ(r.int8.size(), 1u);  // the absolute 6.0 criterion agrees on this model
  EXPECT_EQ(r.int8[0].channel, 17);
  EXPECT_EQ(r.int8[0].layers, 2);
  for (const auto& t : r.tensors) {
    if (t.kind == "attn_in" || t.kind == "mlp_in") {
      EXPECT_EQ(t.argmax_channel, 17) << t.name;
      EXPECT_GT(t.ratio(), 10.0) << t.name;
      ASSERT_FALSE(t.top.empty());
      EXPECT_EQ(t.top[0].channel, 17);
      EXPECT_GE(t.top[0].sample, 0);
    } else {
      EXPECT_LT(t.ratio(), 5.0) << t.name;  // nothing else comes close to k = 8
    }
  }
  const Json j = outlier_report_json(r, [](const TopValue& v) { return "tok" + std::to_string(v.token); });
  EXPECT_EQ(j["int8_channels"][0]["channel"], 17);
  EXPECT_EQ(j["tensors"][0]["top"][0]["text"], "tok" + std::to_string(r.tensors[0].top[0].token));
  const std::string text = format_outlier_report(r);
  EXPECT_NE(text.find("attn in (q/k/v): 17 (2)"), std::string::npos) << text;
}

TEST(OutliersAnalysis, HistogramMedian) {
  std::array<double, kHistBins> h{};
  h[size_t(0 - kHistMinExp + 1)] = 10;  // all values in [1, 2)
  EXPECT_NEAR(hist_median(h), std::sqrt(2.0), 1e-12);
  h.fill(0);
  h[0] = 6;                                  // zeros
  h[size_t(3 - kHistMinExp + 1)] = 4;        // [8, 16)
  EXPECT_EQ(hist_median(h), 0.0);
  h[0] = 2;
  // 6 values, half = 3: past the 2 zeros, a quarter into the octave [8, 16): 8 * 2^(1/4).
  EXPECT_NEAR(hist_median(h), 8.0 * std::exp2(0.25), 1e-12);
}

ActStats hand_built(int layers, int64_t cols) {
  ActStats s;
  s.meta = {{"model", {{"num_layers", layers}, {"hidden_size", cols}, {"config_sha256", "x"}}},
            {"thresholds", {6.0, 20.0}}, {"topn", 4}, {"samples", 1}, {"tokens", 100.0}};
  for (int l = 0; l < layers; ++l) {
    TensorStats t;
    t.name = "model.layers." + std::to_string(l) + ".self_attn.q_proj";
    t.modules = {t.name};
    t.kind = "attn_in";
    t.layer = l;
    t.init(cols);
    t.count = 100;
    for (int64_t c = 0; c < cols; ++c) {
      t.min[c] = -1;
      t.max[c] = 1;
      t.sum2[c] = 100;
    }
    t.hist[size_t(-4 - kHistMinExp + 1)] = 100.0 * cols;  // |x| in [1/16, 1/8): median ~0.09
    s.tensors.push_back(t);
  }
  return s;
}

TEST(OutliersAnalysis, CriteriaOnHandBuiltStats) {
  ActStats s = hand_built(4, 6);
  TensorStats& t0 = s.tensors[0];
  t0.max[4] = 10;   // 10 > 8 x median 1: relative, not massive (not > 100)
  t0.max[5] = 200;  // relative and massive (200 > 100, > 1000 x ~0.09)
  t0.ge[0][3] = 10;  // channel 3: 10% of tokens >= 6 in layer 0 only -> 1 of 4 layers = 25%
  for (auto& t : s.tensors) t.ge[0][2] = 5;  // channel 2: 5% in every layer -> below 6%
  const OutlierReport r = analyze_outliers(s);
  EXPECT_EQ(r.tensors[0].relative, (std::vector<int>{5, 4}));
  EXPECT_EQ(r.tensors[0].massive, (std::vector<int>{5}));
  EXPECT_NEAR(r.tensors[0].median_abs, 0.0625 * std::exp2(0.5), 1e-12);
  ASSERT_EQ(r.int8.size(), 1u);
  EXPECT_EQ(r.int8[0].channel, 3);
  OutlierConfig strict;
  strict.int8_layer_share = 0.5;
  EXPECT_TRUE(analyze_outliers(s, strict).int8.empty());
  strict.rel_k = 50;
  EXPECT_EQ(analyze_outliers(s, strict).tensors[0].relative, (std::vector<int>{5}));
  OutlierConfig bad;
  bad.rel_k = -1;
  EXPECT_THROW(analyze_outliers(s, bad), ArgError);
}

TEST(OutliersAnalysis, MedianOf) {
  EXPECT_EQ(median_of({3, 1, 2}), 2);
  EXPECT_EQ(median_of({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median_of({}), 0);
}

}  // namespace
}  // namespace calq
