// Every quantizer refuses non-finite input (before: RTN's min/max skipped a NaN and returned a
// finite code, the NaN -> uint8 cast was undefined, GPTQ blamed a non-positive-definite Hessian on
// the dampening), and the layer drivers name the module; `quantize` checks the calibration set's
// tokenizer as `stats` does.
#include <gtest/gtest.h>

#include <limits>

#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/quantizer.h"
#include "quant/smoothquant.h"
#include "quant_test_util.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

template <class E = NonFiniteError, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

void expect_has(const std::string& msg, std::initializer_list<std::string> needles) {
  for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
}

std::vector<float> ramp(int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) w[size_t(i)] = float((i * 37) % 23) / 7.0f - 1.5f;
  return w;
}

TEST(QuantNonFinite, FindParamsAndCodesNeverHideANaN) {
  const QuantScheme s = QuantScheme::weights(4, false, 8, RangeRule::Gptq, true);
  std::vector<float> x = {0.5f, -1.0f, 2.0f, kNaN, 1.0f};
  const AffineParams p = find_params(x.data(), 5, 1, s);  // the NaN is not first: min/max alone skip it
  EXPECT_TRUE(std::isnan(p.scale));
  QuantizedWeight qw = make_quantized_weight(1, 5, s);
  qw.scale[0] = p.scale;
  EXPECT_NE(qw.problem(), "");  // refused by every writer
  EXPECT_EQ(quantize_code(kNaN, {0.1f, 8.0f}, 15), 0);  // defined: no NaN -> uint8_t conversion
  EXPECT_EQ(quantize_code(1e30f, {0.1f, 8.0f}, 15), 15);
  EXPECT_EQ(quantize_code(-kInf, {0.1f, 8.0f}, 15), 0);
  EXPECT_EQ(quantize_code(0.25f, {0.5f, 8.0f}, 15), 8);  // finite values as before: 0.5 rounds to even 0
  EXPECT_EQ(quantize_code(0.75f, {0.5f, 8.0f}, 15), 10);
}

TEST(QuantNonFinite, EveryQuantizerRefusesIt) {
  const int64_t rows = 8, cols = 32;
  std::vector<float> w = ramp(rows * cols);
  w[size_t(2 * cols + 5)] = kInf;
  const QuantScheme s = QuantScheme::weights(4, false, 16, RangeRule::Gptq, true);
  expect_has(error_of([&] { quantize_rtn(w.data(), rows, cols, s); }), {"the weight", "+inf at [2, 5]"});
  expect_has(error_of([&] { quantize_rtn_ref(w.data(), rows, cols, s); }), {"+inf at [2, 5]"});

  GptqConfig g;
  g.group_size = 16;
  Hessian h(cols);
  for (int64_t i = 0; i < cols; ++i) h.h[size_t(i * cols + i)] = 1.0f;
  expect_has(error_of([&] { gptq_quantize(w.data(), rows, cols, h, g); }), {"the weight", "+inf at [2, 5]"});
  w[size_t(2 * cols + 5)] = 0.5f;
  h.h[size_t(3 * cols + 4)] = kNaN;  // not "increase --percdamp": the Hessian is named
  expect_has(error_of([&] { gptq_quantize(w.data(), rows, cols, h, g); }), {"Hessian", "NaN at [3, 4]"});

  AwqConfig a;
  a.group_size = 16;
  Tensor x = Tensor::from_f32(ramp(4 * cols), {4, cols});
  x.f32_mut()[cols + 1] = kNaN;
  expect_has(error_of([&] { awq_search_clip(w.data(), rows, cols, x, a, nullptr); }), {"the input", "NaN at [1, 1]"});

  std::vector<float> act(4 * cols, 1.0f);
  act[5] = -kInf;
  expect_has(error_of([&] { fake_quant_per_token(act.data(), 4, cols, 8); }), {"input row 0", "-inf"});
  expect_has(error_of([&] { fake_quant_per_token_ref(act.data(), 4, cols, 8); }), {"input row 0", "-inf"});
  expect_has(error_of([&] { fake_quant_per_tensor_dynamic(act.data(), 4 * cols, 8); }), {"-inf"});

  auto m = Decoder::load(test::tiny("llama2"));
  const auto groups = smoothquant_groups(*m, 0);
  std::vector<float> absmax(size_t(groups[0].layers[0]->in), 1.0f);
  absmax[3] = kNaN;
  expect_has(error_of([&] { smoothquant_scales(groups[0], absmax, 0.5); }), {"input absmax", "NaN"});
}

// Every method: a NaN planted in a weight after load (where the load check cannot see it) stops the
// run naming the module, and nothing of that layer is written.
TEST(QuantNonFinite, EveryMethodNamesTheModule) {
  test::TempDir t("qnan");
  const int64_t n = 4, T = 16;
  for (const char* method : {"rtn", "gptq", "awq", "smoothquant", "naive-w8a8"}) {
    auto m = Decoder::load(test::tiny("llama2"));
    const CalibSet calib = test::make_calib(test::random_ids(n, T, m->config().vocab_size, 3), n, T);
    Linear& up = m->layer(1).up;
    Tensor w = f32_copy(up.weight());
    w.f32_mut()[3 * up.in + 2] = kNaN;
    up.set_weight(w);
    const std::string msg =
        error_of([&] { quantize_model(*m, &calib, test::method_options(method), t / method); });
    expect_has(msg, {method, "model.layers.1.mlp.up_proj"});
    const QuantState qs = QuantState::open(t / method);
    EXPECT_TRUE(qs.layer_done(0)) << method;
    EXPECT_FALSE(qs.layer_done(1)) << method << ": " << msg;
  }
}

// `quantize` checks the set's tokenizer as `stats` does (before: accepted whenever the ids were in
// range), naming the calibration file; --allow-tokenizer-mismatch (check_tokenizer = false) accepts.
TEST(QuantNonFinite, QuantizeChecksTheCalibrationTokenizer) {
  test::TempDir t("qtok");
  const std::string model = test::data("models/stories260K");
  auto m = Decoder::load(model);
  CalibSet set = test::make_calib(test::random_ids(2, 16, m->config().vocab_size, 5), 2, 16);
  set.manifest["tokenizer_sha256"] = sha256_hex("another tokenizer");
  save_calib_set(set, t / "other.safetensors");
  const CalibSet other = load_calib_set(t / "other.safetensors");
  QuantizeOptions o = test::method_options("gptq");
  const std::string msg = error_of<ArgError>([&] { quantize_model(*m, &other, o, t / "q1"); });
  expect_has(msg, {t / "other.safetensors", "tokenizer", model + "/tokenizer.json"});
  EXPECT_FALSE(std::filesystem::exists(t / "q1"));
  o.check_tokenizer = false;
  EXPECT_EQ(quantize_model(*m, &other, o, t / "q2").layers_quantized, m->num_layers());
  set.manifest["tokenizer_sha256"] = sha256_file(model + "/tokenizer.json");
  save_calib_set(set, t / "same.safetensors");
  const CalibSet same = load_calib_set(t / "same.safetensors");
  EXPECT_EQ(quantize_model(*m, &same, test::method_options("gptq"), t / "q3").layers_quantized, m->num_layers());
}

}  // namespace
}  // namespace calq
