// The layer-wise pipeline: fake-quant checkpoint == in-memory fake-quant model (bitwise logits,
// W8A8 activation quantization included), resume after a kill gives the uninterrupted result,
// state validation, bad requests write nothing, padded calibration sets, the CLI.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/mapped_file.h"
#include "formats/loader.h"
#include "formats/fakequant.h"
#include "quant/pipeline.h"
#include "quant_test_util.h"
#include "util/error.h"

namespace calq {
namespace {

namespace fs = std::filesystem;
using test::random_ids;

QuantizeOptions options(const std::string& method) {
  QuantizeOptions o = test::method_options(method);
  o.batch = 2;
  return o;
}

struct Fixture {
  std::unique_ptr<Decoder> model;
  CalibSet calib;
};

Fixture setup(const std::string& arch, int64_t n = 6, int64_t T = 24) {
  Fixture r;
  r.model = Decoder::load(test::tiny(arch));
  r.calib = test::make_calib(random_ids(n, T, r.model->config().vocab_size, 99), n, T);
  return r;
}

void expect_roundtrip(const std::string& arch, QuantizeOptions o, const std::string& tag) {
  test::TempDir t("rt");
  Fixture r = setup(arch);
  const auto ids = random_ids(2, 20, r.model->config().vocab_size, 5);
  const Tensor float_logits = test::logits(*r.model, ids, 2, 20);
  const QuantizeSummary s = quantize_model(*r.model, &r.calib, o, t / "q/qstate");
  EXPECT_EQ(s.layers_quantized, r.model->num_layers());
  // The source model is left as it was: mapped weights, float outputs.
  for (Linear* l : r.model->all_linears()) EXPECT_TRUE(l->weight().readonly()) << l->name;
  EXPECT_TRUE(test::bitwise_equal(float_logits, test::logits(*r.model, ids, 2, 20)));

  const QuantState qs = QuantState::open(t / "q/qstate");
  ASSERT_TRUE(qs.complete());
  write_fake_quant_checkpoint(qs, t / "q");
  auto mem = Decoder::load(test::tiny(arch));
  apply_quant_state(*mem, qs);
  auto loaded = load_model(t / "q");
  const Tensor a = test::logits(*mem, ids, 2, 20), b = test::logits(*loaded, ids, 2, 20);
  EXPECT_TRUE(test::bitwise_equal(a, b)) << tag << ": max |diff| " << test::max_abs_diff(a, b);
  EXPECT_GT(test::max_abs_diff(a, float_logits), 0.0) << tag << ": quantization changed nothing?";
  // Every quantized linear of the loaded checkpoint holds exactly the dequantized codes.
  for (Linear* l : loaded->all_linears()) {
    auto qw = qs.weight(l->name);
    ASSERT_TRUE(qw.has_value()) << l->name;
    EXPECT_TRUE(test::bitwise_equal(l->weight().to(DType::F32), qw->dequantize())) << l->name;
    EXPECT_EQ(l->input_transform != nullptr, !o.activation().is_null()) << l->name;
  }
}

TEST(QuantPipeline, FakeQuantCheckpointRoundTripIsBitwise) {
  expect_roundtrip("llama2", options("gptq"), "gptq");
  QuantizeOptions act = options("gptq");
  test::config<GptqConfig>(act).desc_act = true;
  test::config<GptqConfig>(act).sym = true;
  expect_roundtrip("qwen2", act, "gptq act-order qwen2");
  expect_roundtrip("llama2", options("awq"), "awq");
  expect_roundtrip("llama2", options("rtn"), "rtn");
  expect_roundtrip("opt", options("smoothquant"), "smoothquant per-token");
  QuantizeOptions st = options("naive-w8a8");
  test::config<SmoothQuantConfig>(st).act = ActGranularity::PerTensorStatic;
  expect_roundtrip("opt", st, "naive w8a8 static");
  QuantizeOptions sqs = options("smoothquant");
  test::config<SmoothQuantConfig>(sqs).act = ActGranularity::PerTensorStatic;
  expect_roundtrip("llama3", sqs, "smoothquant static bf16 source");
}

std::string bytes_of(const std::string& p) { return read_file(p); }

TEST(QuantPipeline, KilledRunResumesToTheSameResult) {
  for (const std::string m : {"gptq", "awq"}) {
    test::TempDir t("resume");
    Fixture r = setup("llama2");
    QuantizeOptions o = options(m);
    // Uninterrupted reference run.
    quantize_model(*r.model, &r.calib, o, t / "full");
    // "Kill" the run after its first layer is written.
    QuantizeOptions k = o;
    k.log = [](const std::string& line) {
      if (line.rfind("layer 1/", 0) == 0) throw std::runtime_error("killed");
    };
    EXPECT_THROW(quantize_model(*r.model, &r.calib, k, t / "part"), std::runtime_error);
    {
      const QuantState half = QuantState::open(t / "part");
      EXPECT_EQ(half.layers_done(), std::vector<int>{0});
      EXPECT_FALSE(half.complete());
      EXPECT_THROW(write_fake_quant_checkpoint(half, t / "out"), FormatError);
    }
    std::vector<std::string> lines;
    o.log = [&](const std::string& l) { lines.push_back(l); };
    const QuantizeSummary s = quantize_model(*r.model, &r.calib, o, t / "part");
    EXPECT_EQ(s.layers_resumed, 1);
    EXPECT_EQ(s.layers_quantized, 1);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0].rfind("resuming", 0), 0u);
    for (int i = 0; i < 2; ++i) {
      const std::string f = "/layer." + std::to_string(i) + ".safetensors";
      EXPECT_EQ(bytes_of(t.path + "/full" + f), bytes_of(t.path + "/part" + f)) << m << f;
    }
    // A finished state is not redone.
    EXPECT_EQ(quantize_model(*r.model, &r.calib, o, t / "part").layers_quantized, 0);
  }
}

TEST(QuantPipeline, ExistingStateMustMatch) {
  test::TempDir t("match");
  Fixture r = setup("llama2");
  QuantizeOptions o = options("rtn");
  quantize_model(*r.model, &r.calib, o, t / "s");
  QuantizeOptions other = o;
  test::config<RtnConfig>(other).scheme.bits = 3;
  EXPECT_THROW(quantize_model(*r.model, &r.calib, other, t / "s"), ConfigError);
  QuantizeOptions gptq = options("gptq");
  EXPECT_THROW(quantize_model(*r.model, &r.calib, gptq, t / "s"), ConfigError);
  QuantizeOptions nores = o;
  nores.resume = false;
  fs::remove(t / "s/layer.1.safetensors");
  // (state.json still lists layer 1: the state is now corrupt)
  EXPECT_THROW(quantize_model(*r.model, &r.calib, nores, t / "s"), FormatError);
  // Other calibration tokens for a calibrated method.
  quantize_model(*r.model, &r.calib, gptq, t / "g");
  Fixture r2 = setup("llama2", 6, 20);
  EXPECT_THROW(quantize_model(*r.model, &r2.calib, gptq, t / "g"), ConfigError);
}

TEST(QuantPipeline, CorruptStateIsAClearError) {
  test::TempDir t("corrupt");
  Fixture r = setup("llama2");
  const QuantizeOptions o = options("rtn");
  quantize_model(*r.model, &r.calib, o, t / "s");
  const std::string good = read_file(t / "s/state.json");
  auto expect_format_error = [&](const std::string& what, const std::string& needle) {
    try {
      quantize_model(*r.model, &r.calib, o, t / "s");
      ADD_FAILURE() << what << ": no error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << what << ": " << e.what();
    }
  };
  write_file_atomic(t / "s/state.json", "{\"format\": \"calq-qstate\", \"version\": 1, ");
  expect_format_error("truncated json", "state.json");
  write_file_atomic(t / "s/state.json", "{\"format\": \"other\"}");
  expect_format_error("wrong format", "calq-qstate");
  Json j = parse_json(good, "state");
  j["layers_done"] = {0, 7};
  write_file_atomic(t / "s/state.json", j.dump());
  expect_format_error("layer out of range", "layers_done");
  write_file_atomic(t / "s/state.json", good);
  const std::string layer = read_file(t / "s/layer.0.safetensors");
  write_file_atomic(t / "s/layer.0.safetensors", layer.substr(0, layer.size() / 2));
  expect_format_error("truncated layer file", "layer.0.safetensors");
  // A layer file whose codes are out of range for its bits.
  write_file_atomic(t / "s/layer.0.safetensors", layer);
  const QuantState qs = QuantState::open(t / "s");
  LayerResult bad = qs.layer(0);
  bad.weights.begin()->second.q[0] = 200;  // 4-bit codes stop at 15
  EXPECT_THROW(QuantState::open(t / "s").write_layer(bad), ArgError);
}

TEST(QuantPipeline, BadRequestsWriteNothing) {
  test::TempDir t("bad");
  Fixture r = setup("llama2");
  auto expect_nothing = [&](QuantizeOptions o, const CalibSet* c, const std::string& what) {
    const std::string dir = t / what;
    EXPECT_THROW(quantize_model(*r.model, c, o, dir), Error) << what;
    EXPECT_FALSE(fs::exists(dir)) << what;
  };
  QuantizeOptions o = options("gptq");
  test::config<GptqConfig>(o).bits = 9;
  expect_nothing(o, &r.calib, "bits9");
  o = options("awq");
  test::config<AwqConfig>(o).bits = 1;
  expect_nothing(o, &r.calib, "bits1");
  o = options("gptq");
  test::config<GptqConfig>(o).group_size = 0;
  expect_nothing(o, &r.calib, "group0");
  expect_nothing(options("gptq"), nullptr, "nocalib");
  CalibSet big = test::make_calib(random_ids(2, 24, 1000, 1), 2, 24);  // ids beyond the vocabulary
  expect_nothing(options("gptq"), &big, "vocab");
  CalibSet longer = test::make_calib(random_ids(1, 300, 128, 1), 1, 300);  // > max_position_embeddings 256
  expect_nothing(options("gptq"), &longer, "context");
  Fixture cohere = setup("cohere");
  EXPECT_THROW(quantize_model(*cohere.model, &cohere.calib, options("awq"), t / "awq-cohere"), UnsupportedError);
  EXPECT_FALSE(fs::exists(t / "awq-cohere"));
}

TEST(QuantPipeline, PaddingIsLeftOutOfTheStatistics) {
  test::TempDir t("pad");
  Fixture r = setup("llama2", 4, 16);
  r.calib.mask = Tensor::empty(DType::U8, {4, 16});
  int64_t real = 0;
  for (int64_t s = 0; s < 4; ++s)
    for (int64_t p = 0; p < 16; ++p) {
      const bool v = p < 16 - 3 * s;  // sample s has 3s padding positions at the end
      r.calib.mask.data_mut<uint8_t>()[s * 16 + p] = v;
      real += v;
    }
  const QuantizeSummary s = quantize_model(*r.model, &r.calib, options("gptq"), t / "g");
  EXPECT_EQ(s.layers_quantized, 2);
  const QuantState qs = QuantState::open(t / "g");
  EXPECT_EQ(qs.info()["reports"]["0"]["linears"]["model.layers.0.self_attn.q_proj"]["nsamples"].get<int64_t>(), real);
  EXPECT_TRUE(qs.info()["calib"]["padded"].get<bool>());
  EXPECT_EQ(quantize_model(*r.model, &r.calib, options("awq"), t / "a").layers_quantized, 2);
  EXPECT_EQ(quantize_model(*r.model, &r.calib, options("smoothquant"), t / "s").layers_quantized, 2);
}

TEST(QuantPipeline, CommandLine) {
  test::TempDir t("cli");
  Fixture r = setup("llama2");
  save_calib_set(r.calib, t / "calib.safetensors");
  const std::string base = test::cli() + " quantize " + test::tiny("llama2") + " --calib " + (t / "calib.safetensors");
  std::string out;
  // Group 32 divides 64 but not the MLP width 96? (96 = 3 x 32: it does); 40 divides neither.
  ASSERT_EQ(test::run_command(base + " --method gptq --group-size 40 -o " + (t / "g"), &out), 0) << out;
  EXPECT_NE(out.find("does not divide input width"), std::string::npos) << out;
  EXPECT_NE(out.find("\"quantized\": 2"), std::string::npos) << out;
  const Json cfg = load_json_file(t / "g/config.json");
  EXPECT_EQ(cfg["calq_quant"]["method"], "gptq");
  EXPECT_EQ(cfg["calq_quant"]["settings"]["group_size"], 40);
  EXPECT_TRUE(fs::exists(t / "g/model.safetensors"));
  EXPECT_TRUE(QuantState::open(t / "g/qstate").complete());
  // Same command again: everything is resumed, nothing redone.
  ASSERT_EQ(test::run_command(base + " --method gptq --group-size 40 -o " + (t / "g"), &out), 0) << out;
  EXPECT_NE(out.find("\"resumed\": 2"), std::string::npos) << out;
  // Bad requests: one clear line, non-zero exit, nothing written.
  for (const std::string& bad : {std::string(" --method gptq --bits 9"), std::string(" --method awq --group-size 0"),
                                 std::string(" --method foo"), std::string(" --method gptq --format safetensors")}) {
    const std::string dir = t / "bad";
    EXPECT_NE(test::run_command(base + bad + " -o " + dir, &out), 0) << bad;
    EXPECT_NE(out.find("calq: error:"), std::string::npos) << bad << ": " << out;
    EXPECT_FALSE(fs::exists(dir)) << bad;
  }
  EXPECT_NE(test::run_command(test::cli() + " quantize " + test::tiny("cohere") + " --method awq --calib " +
                                  (t / "calib.safetensors") + " -o " + (t / "c"),
                              &out),
            0);
  EXPECT_NE(out.find("awq: no scale groups"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(t / "c"));
  // --format writes an export of the state next to the fake-quant checkpoint.
  ASSERT_EQ(test::run_command(base + " --method gptq --group-size 32 --format gptq -o " + (t / "e"), &out), 0) << out;
  EXPECT_EQ(load_json_file(t / "e/gptq/config.json")["quantization_config"]["quant_method"], "gptq");
  EXPECT_EQ(detect_model_format(t / "e/gptq"), "gptq");
  // RTN needs no calibration set.
  ASSERT_EQ(test::run_command(test::cli() + " quantize " + test::tiny("llama2") + " --method rtn --bits 3 -o " +
                                  (t / "r"),
                              &out),
            0)
      << out;
}

}  // namespace
}  // namespace calq
