// Parity of the float forward pass with the goldens of ../shared/models/tiny/<arch> (independent
// float64 reference): max |Δlogit| < 1e-4; hidden |Δ| <= 1e-4 + 1e-5·|golden| (golden/README.md).
#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "model/decoder.h"
#include "test_util.h"

namespace calq {
namespace {

struct Diff {
  double max_abs = 0;
  bool within = true;
};

Diff compare(const Tensor& got, const Tensor& want, double abs_tol, double rel_tol) {
  EXPECT_EQ(got.shape(), want.shape());
  Diff d;
  if (got.shape() != want.shape()) return {1e30, false};
  const float* a = got.f32();
  const float* b = want.f32();
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double e = std::fabs(double(a[i]) - b[i]);
    d.max_abs = std::max(d.max_abs, e);
    if (e > abs_tol + rel_tol * std::fabs(b[i])) d.within = false;
  }
  return d;
}

class TinyParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyParity, LogitsAndHiddenStatesMatchGolden) {
  const std::string dir = test::data("models/tiny/" + GetParam());
  auto model = Decoder::load(dir);
  int64_t B, T;
  const auto ids = test::read_id_batch(dir + "/golden/input_ids.json", &B, &T);
  ForwardOptions opt;
  opt.hidden_states = true;
  const ForwardOutput out = model->forward(ids.data(), B, T, opt);

  auto logits = SafetensorsFile::open(dir + "/golden/logits.safetensors");
  const Diff dl = compare(out.logits, logits->get("logits"), 1e-4, 0);
  EXPECT_TRUE(dl.within) << GetParam() << " max |Δlogit| = " << dl.max_abs;
  EXPECT_LT(dl.max_abs, 1e-4);

  auto hs = SafetensorsFile::open(dir + "/golden/hidden_states.safetensors");
  ASSERT_EQ(out.hidden_states.size(), size_t(model->num_layers() + 1));
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    const Diff d = compare(out.hidden_states[i], hs->get("hidden_states." + std::to_string(i)), 1e-4, 1e-5);
    EXPECT_TRUE(d.within) << GetParam() << " hidden_states." << i << " max |Δ| = " << d.max_abs;
  }
  const Diff dh = compare(out.last_hidden_state, hs->get("last_hidden_state"), 1e-4, 1e-5);
  EXPECT_TRUE(dh.within) << GetParam() << " last_hidden_state max |Δ| = " << dh.max_abs;
}

INSTANTIATE_TEST_SUITE_P(AllArchs, TinyParity, ::testing::ValuesIn(test::tiny_archs()));

TEST(Stories260K, LogitsMatchGolden) {
  const std::string dir = test::data("models/stories260K");
  auto model = Decoder::load(dir);
  const Json j = load_json_file(dir + "/golden/input_ids.json");
  auto gold = SafetensorsFile::open(dir + "/golden/logits.safetensors");
  for (size_t t = 0; t < j.at("input_ids").size(); ++t) {
    std::vector<int32_t> ids = j.at("input_ids")[t].get<std::vector<int32_t>>();
    const ForwardOutput out = model->forward(ids.data(), 1, int64_t(ids.size()));
    const Tensor want = gold->get("logits." + std::to_string(t));
    const Diff d = compare(out.logits.reshaped(want.shape()), want, 1e-4, 0);
    EXPECT_LT(d.max_abs, 5e-5) << "text " << t;
  }
}

TEST(Stories260K, GreedyContinuationMatchesGolden) {
  const std::string dir = test::data("models/stories260K");
  auto model = Decoder::load(dir);
  const Json g = load_json_file(dir + "/golden/greedy.json");
  std::vector<int32_t> ids = g.at("prompt_ids").get<std::vector<int32_t>>();
  const auto want = g.at("generated_ids").get<std::vector<int32_t>>();
  ForwardOptions opt;
  opt.logits = ForwardOptions::Logits::Last;
  for (size_t s = 0; s < want.size(); ++s) {
    const ForwardOutput out = model->forward(ids.data(), 1, int64_t(ids.size()), opt);
    const float* l = out.logits.f32();
    int32_t best = 0;
    for (int32_t v = 1; v < model->config().vocab_size; ++v)
      if (l[v] > l[best]) best = v;
    ids.push_back(best);
  }
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 1, ids.end()), want);
}

// TinyStories-656K stores its tied embedding matrix only as lm_head.weight (no
// model.embed_tokens.weight): the decoder reads it under that name.
TEST(TinyStories656K, LogitsAndGreedyMatchGolden) {
  const std::string dir = test::data("models/TinyStories-656K");
  auto model = Decoder::load(dir);
  const Json j = load_json_file(dir + "/golden/input_ids.json");
  auto gold = SafetensorsFile::open(dir + "/golden/logits.safetensors");
  for (size_t t = 0; t < j.at("input_ids").size(); ++t) {
    std::vector<int32_t> ids = j.at("input_ids")[t].get<std::vector<int32_t>>();
    const ForwardOutput out = model->forward(ids.data(), 1, int64_t(ids.size()));
    const Tensor want = gold->get("logits." + std::to_string(t));
    const Diff d = compare(out.logits.reshaped(want.shape()), want, 1e-4, 0);
    EXPECT_LT(d.max_abs, 5e-5) << "text " << t;
  }
  const Json g = load_json_file(dir + "/golden/greedy.json");
  std::vector<int32_t> ids = g.at("prompt_ids").get<std::vector<int32_t>>();
  const auto want = g.at("generated_ids").get<std::vector<int32_t>>();
  ForwardOptions opt;
  opt.logits = ForwardOptions::Logits::Last;
  for (size_t s = 0; s < want.size(); ++s) {
    const ForwardOutput out = model->forward(ids.data(), 1, int64_t(ids.size()), opt);
    const float* l = out.logits.f32();
    int32_t best = 0;
    for (int32_t v = 1; v < model->config().vocab_size; ++v)
      if (l[v] > l[best]) best = v;
    ids.push_back(best);
  }
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 1, ids.end()), want);
}

}  // namespace
}  // namespace calq
