// Quantized weights stay quantized in memory (formats/loader.h): GPTQ and AWQ folders, calq
// quantization states and GGUF Q4_0/Q8_0 files load as packed weights that run the quantized
// kernels (kernels/qgemm.h), with no float copy. Their logits equal the fake-quant float path
// (LoadOptions::float_weights: the same codes dequantized to f32, the path that is bitwise equal to
// the in-memory fake-quant model, tests/export_roundtrip_test.cpp) within kPackedTol: the packed
// kernels multiply the exact dequantized values, so only the f32 summation order differs.
// Odd widths: stories260K's FFN is 172 wide (no GPTQ/AWQ checkpoint can hold it; a 4-bit
// per-channel quantization state does).
#include <gtest/gtest.h>

#include <cstdio>

#include "export_fixtures.h"
#include "formats/gguf_model.h"
#include "formats/hf_quant_export.h"
#include "formats/loader.h"
#include "test_util.h"

namespace calq::test {
namespace {

constexpr double kPackedTol = 1e-4;  // max |Δlogit|, packed (f32 compute) vs dequantized f32 (measured <= 2e-5)

LoadOptions opts(bool float_weights, ComputeType c = ComputeType::F32) {
  LoadOptions o;
  o.compute = c;
  o.float_weights = float_weights;
  o.pack = !float_weights;
  return o;
}

// Loads `path` both ways and returns max |Δlogit| on the model's golden inputs; every decoder
// linear of the packed model must be quantized.
double packed_vs_float(const std::string& path, const std::string& model_dir, ComputeType c = ComputeType::F32) {
  auto packed = load_model(path, opts(false, c));
  auto flt = load_model(path, opts(true));
  for (int i = 0; i < packed->num_layers(); ++i)
    for (Linear* l : packed->layer(i).linears()) {
      if (!l->out) continue;  // absent (e.g. no gate in OPT)
      EXPECT_TRUE(l->quantized() != nullptr) << path << ": " << l->name << " is not packed";
    }
  for (Linear* l : flt->all_linears(true)) EXPECT_TRUE(l->quantized() == nullptr) << l->name;
  const double d = max_abs_diff(fixture_logits(*packed, model_dir), fixture_logits(*flt, model_dir));
  std::printf("%s: max |dlogit| packed vs float %.3g\n", path.c_str(), d);
  return d;
}

struct HfCase {
  const char* model;
  RtnSpec spec;
  bool awq;
};

TEST(PackedLoad, GptqAndAwqMatchTheFakeQuantFloatPath) {
  const HfCase cases[] = {
      {"models/tiny/llama2", {4, 32, false, false}, false},
      {"models/tiny/llama2", {4, 32, false, true}, false},  // act-order g_idx
      {"models/tiny/llama2", {3, 32, false, false}, false},
      {"models/tiny/qwen2", {4, 32, true, false}, false},   // q/k/v biases, sym
      {"models/tiny/opt", {8, -1, true, false}, false},     // OPT, per-channel 8-bit
      {"models/tiny/llama2", {4, 32, false, false}, true},  // AWQ
      {"models/tiny/mistral", {4, 64, false, false}, true},
  };
  int k = 0;
  for (const HfCase& c : cases) {
    SCOPED_TRACE(std::string(c.model) + (c.awq ? " awq" : " gptq") + " bits " + std::to_string(c.spec.bits));
    const std::string model = data(c.model);
    ScratchDir dir("packed" + std::to_string(k++));
    const MemoryRun q = rtn_quantize_model(model, c.spec);
    if (c.awq)
      export_awq(dir.state(q), dir / "out");
    else
      export_gptq(dir.state(q), dir / "out");
    EXPECT_LT(packed_vs_float(dir / "out", model), kPackedTol);
  }
}

TEST(PackedLoad, QuantStateRunsPacked) {
  for (const char* m : {"models/tiny/llama3", "models/stories260K"}) {
    const std::string model = data(m);
    ScratchDir dir("packed_qstate");
    write_quant_state(rtn_quantize_model(model, {4, -1, false, false}), dir / "state");
    EXPECT_EQ(detect_model_format(dir / "state"), "qstate");
    EXPECT_LT(packed_vs_float(dir / "state", model), kPackedTol) << m;
  }
}

TEST(PackedLoad, GgufBlocksRunPacked) {
  const std::string model = data("models/tiny/llama2");
  for (ggml::Type t : {ggml::Type::Q4_0, ggml::Type::Q8_0}) {
    ScratchDir dir("packed_gguf");
    GgufExportOptions o;
    o.type = t;
    o.pure = true;
    export_gguf(model, dir / "m.gguf", o);
    EXPECT_LT(packed_vs_float(dir / "m.gguf", model), kPackedTol) << int(t);
  }
}

// bf16 compute rounds the activations to bf16 (f32 accumulation): against the f32 path, the float
// forward's bf16 criterion (docs/performance.md): max |Δlogit| <= 5 % of max |logit|.
TEST(PackedLoad, Bf16ComputeStaysCloseToTheF32Path) {
  const std::string model = data("models/tiny/llama2");
  ScratchDir dir("packed_bf16");
  export_gptq(dir.state(rtn_quantize_model(model, {4, 32, false, false})), dir / "out");
  auto packed = load_model(dir / "out", opts(false, ComputeType::BF16));
  ASSERT_TRUE(packed->layer(0).q.quantized() != nullptr);
  const Tensor want = fixture_logits(*load_dequantized(dir / "out"), model);
  const double scale = max_abs_diff(want, Tensor::zeros(DType::F32, want.shape()));
  const double d = max_abs_diff(fixture_logits(*packed, model), want);
  std::printf("bf16 packed vs f32 dequantized: max |dlogit| %.3g of max |logit| %.3g\n", d, scale);
  EXPECT_LT(d, 0.05 * scale);
}

}  // namespace
}  // namespace calq::test
