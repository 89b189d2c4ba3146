// Comparing statistics: the similarity measures' known answers, identical vs different sets,
// and the convergence curve.
#include <gtest/gtest.h>

#include <cmath>

#include "analysis/compare.h"
#include "calib/builders.h"
#include "calib/sources.h"
#include "tokenizer/tokenizer.h"
#include "calib/calib_set.h"
#include "model/decoder.h"
#include "observe/stats_runner.h"
#include "test_util.h"

namespace calq {
namespace {


TEST(CompareStats, MeasuresKnownAnswers) {
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {10, 20, 30, 45}), 1.0, 1e-12);
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0, 1e-12);
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(22.5), 1e-12);  // tie -> average rank
  EXPECT_NEAR(cosine_similarity({1, 0}, {1, 1}), 1 / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(cosine_similarity({0, 0}, {0, 0}), 1.0);
  EXPECT_EQ(jaccard({1, 2, 3}, {4, 3, 2}), 0.5);
  EXPECT_EQ(jaccard({}, {}), 1.0);
  EXPECT_EQ(jaccard({1}, {}), 0.0);
}

TEST(CompareStats, SameSetIsIdenticalOtherSetDiffers) {
  auto m = Decoder::load(test::data("models/tiny/llama2"));
  StatsRunOptions o;
  o.batch = 4;
  const ActStats a = collect_stats(*m, test::lcg_calib_set(8, 24, 0, 128, 1), o);
  const ActStats b = collect_stats(*m, test::lcg_calib_set(8, 24, 0, 8, 2), o);  // only 8 distinct tokens
  const StatsComparison same = compare_stats(a, a, "a", "a");
  EXPECT_NEAR(same.all.cos_rms, 1.0, 1e-12);
  EXPECT_NEAR(same.all.spearman_rms, 1.0, 1e-12);
  EXPECT_EQ(same.all.jaccard, 1.0);
  EXPECT_EQ(same.all.abs_absmax_change, 0.0);
  const StatsComparison diff = compare_stats(a, b, "a", "b");
  EXPECT_LT(diff.all.cos_rms, 0.999);
  EXPECT_LT(diff.all.spearman_rms, 0.95);
  EXPECT_EQ(diff.tensors.size(), a.tensors.size());
  ASSERT_FALSE(diff.by_kind.empty());
  EXPECT_EQ(diff.by_kind[0].first, "attn_in");
  const Json j = comparison_json(diff);
  EXPECT_EQ(j["tensors"].size(), a.tensors.size());
  const std::string text = format_comparisons({same, diff}, true);
  EXPECT_NE(text.find("cos(rms)"), std::string::npos);
  // Different models cannot be compared.
  auto opt = Decoder::load(test::data("models/tiny/opt"));
  const ActStats c = collect_stats(*opt, test::lcg_calib_set(2, 8, 0, 128, 3), o);
  EXPECT_THROW(compare_stats(a, c, "a", "c"), ArgError);
}

TEST(CompareStats, ConvergenceCurve) {
  auto m = Decoder::load(test::data("models/tiny/llama2"));
  StatsRunOptions o;
  const ActStats s = collect_stats(*m, test::lcg_calib_set(16, 16, 0, 128, 5), o);
  const auto curve = convergence_curve(s);
  ASSERT_EQ(curve.size(), 5u);  // snapshots at 1, 2, 4, 8 samples + the final 16
  EXPECT_EQ(curve[0].samples, 1);
  EXPECT_EQ(curve[3].samples, 8);
  EXPECT_EQ(curve[4].samples, 16);
  EXPECT_EQ(curve[4].mean_rel_err_rms, 0.0);
  EXPECT_NEAR(curve[4].mean_cos_rms, 1.0, 1e-12);
  EXPECT_GT(curve[0].mean_rel_err_rms, curve[3].mean_rel_err_rms);  // more tokens, closer to final
  for (const auto& p : curve) EXPECT_LE(p.mean_absmax_ratio, 1.0 + 1e-12);
  EXPECT_EQ(converged_at(curve, 1e-9), -1);
  EXPECT_EQ(converged_at(curve, 10.0), 1);
  EXPECT_EQ(convergence_json(curve).size(), 5u);
}

}  // namespace
}  // namespace calq

namespace calq {
namespace {

// On stories260K, TinyStories text (its training domain), punctuation strings, random tokens and
// every FLORES-200 language give visibly different statistics: each is further from a TinyStories
// set than a second TinyStories set drawn with another seed is.
TEST(CompareStoriesSlow, CalibrationSetsGiveDifferentStatistics) {
  const std::string model_dir = test::data("models/stories260K");
  auto model = Decoder::load(model_dir);
  auto tok = Tokenizer::from_path(model_dir);
  CalibSpec base;
  base.nsamples = 16;
  base.seqlen = 128;
  base.data_root = test::data();
  StatsRunOptions o;
  o.batch = 8;
  auto stats_of = [&](CalibSpec s) { return collect_stats(*model, build_calib_set(s, tok.get()), o); };
  CalibSpec ts = base;
  ts.builder = "text";
  ts.mode = "concat";
  ts.source = test::data("data/tinystories/tinystories_val.txt");
  const ActStats ref = stats_of(ts);
  ts.seed = 1;
  const double same = compare_stats(ref, stats_of(ts), "ts", "ts1").all.cos_rms;
  EXPECT_GT(same, 0.995);
  std::vector<std::pair<std::string, CalibSpec>> others;
  CalibSpec p = base;
  p.builder = "punct";
  others.push_back({"punct", p});
  p.builder = "random-tokens";
  others.push_back({"random", p});
  for (const auto& lang : available_flores_languages(test::data())) {
    p.builder = "lang";
    p.lang = lang;
    others.push_back({lang, p});
  }
  ASSERT_EQ(others.size(), 12u);
  for (const auto& [name, spec] : others) {
    const StatsComparison c = compare_stats(ref, stats_of(spec), "ts", name);
    EXPECT_LT(c.all.cos_rms, same) << name;
    EXPECT_LT(c.all.spearman_rms, 0.95) << name;  // channel ranking changes (TinyStories vs itself: ~0.99)
  }
}

}  // namespace
}  // namespace calq
