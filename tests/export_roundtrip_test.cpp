// Round trips of the GPTQ and AWQ writers: QuantState -> GPTQ / AWQ folder -> calq load -> the
// dequantized weights equal the fake-quant model's bitwise, and so do the logits. Plus the folder's
// contents (quantization_config, copied files) and refusals of what the formats cannot hold.
#include <gtest/gtest.h>

#include <filesystem>

#include "export_fixtures.h"
#include "formats/fakequant.h"
#include "formats/gguf_model.h"
#include "formats/hf_quant_export.h"
#include "formats/load_quantized.h"
#include "formats/loader.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "util/error.h"

namespace calq::test {
namespace {


// Every weight of `got` equals `want`'s bitwise, and so do the logits on the fixture's ids.
void expect_same_model(Decoder& want, Decoder& got, const std::string& model_dir) {
  auto wl = want.all_linears(true), gl = got.all_linears(true);
  ASSERT_EQ(wl.size(), gl.size());
  for (size_t i = 0; i < wl.size(); ++i) {
    ASSERT_EQ(wl[i]->name, gl[i]->name);
    EXPECT_TRUE(bitwise_equal(wl[i]->weight_f32(), gl[i]->weight_f32())) << wl[i]->name;
    if (wl[i]->bias.defined()) {
      EXPECT_TRUE(bitwise_equal(wl[i]->bias, gl[i]->bias)) << wl[i]->name << ".bias";
    }
  }
  for (int l = 0; l < want.num_layers(); ++l)
    EXPECT_TRUE(bitwise_equal(want.layer(l).attn_norm.weight, got.layer(l).attn_norm.weight)) << "layer " << l;
  const Tensor a = fixture_logits(want, model_dir), b = fixture_logits(got, model_dir);
  EXPECT_TRUE(bitwise_equal(a, b)) << "max |dlogit| " << max_abs_diff(a, b);
}

struct Case {
  const char* model;
  RtnSpec spec;
  GptqZeroFormat zeros;
};

TEST(ExportRoundTrip, GptqEqualsFakeQuantBitwise) {
  const Case cases[] = {
      {"models/tiny/llama2", {4, 32, false, false}, GptqZeroFormat::V1},
      {"models/tiny/llama2", {4, 32, false, true}, GptqZeroFormat::V1},   // act-order g_idx
      {"models/tiny/llama2", {3, 32, false, false}, GptqZeroFormat::V1},  // 3-bit cross-word packing
      {"models/tiny/llama2", {3, -1, false, true}, GptqZeroFormat::V1},
      {"models/tiny/llama2", {4, -1, true, false}, GptqZeroFormat::V1},   // sym, per-channel
      {"models/tiny/llama2", {2, 32, false, false}, GptqZeroFormat::V2},
      {"models/tiny/llama2", {8, 32, true, true}, GptqZeroFormat::V1},
      {"models/tiny/qwen2", {4, 32, false, true}, GptqZeroFormat::V1},    // q/k/v biases
      {"models/tiny/opt", {4, 32, false, false}, GptqZeroFormat::V1},     // OPT names, biases everywhere
      {"models/tiny/mistral", {3, 32, false, false}, GptqZeroFormat::V1},
      {"models/tiny/llama2", {4, 32, false, false, /*include_lm_head=*/true}, GptqZeroFormat::V1},
  };
  int k = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.model) + " bits " + std::to_string(c.spec.bits) + " g" + std::to_string(c.spec.group_size) +
                 (c.spec.act_order ? " act-order" : "") + (c.spec.sym ? " sym" : ""));
    const std::string model = data(c.model);
    const MemoryRun q = rtn_quantize_model(model, c.spec);
    ScratchDir dir("gptq" + std::to_string(k++));
    const std::string out = dir / "out";
    HfExportOptions o;
    o.zeros = c.zeros;
    const ExportReport rep = export_gptq(dir.state(q), out, o);
    EXPECT_EQ(rep.stats.scales_rounded, 0);
    EXPECT_EQ(rep.quantized, int64_t(q.weights.size()));
    EXPECT_FALSE(std::filesystem::exists(out + ".calq-tmp"));
    EXPECT_EQ(detect_model_format(out), "gptq");
    EXPECT_EQ(Checkpoint::open(out).config().at("quantization_config").at("lm_head"), c.spec.include_lm_head);
    auto fq = fake_quant_decoder(q);
    auto loaded = load_dequantized(out);
    expect_same_model(*fq, *loaded, model);
  }
}

TEST(ExportRoundTrip, GptqFolderLayoutAndConfig) {
  const std::string model = data("models/tiny/llama2");
  MemoryRun q = rtn_quantize_model(model, {4, 32, false, true});
  // A method that also changed a float tensor (e.g. a smoothed norm): exported as F32.
  const std::string norm = "model.layers.1.post_attention_layernorm.weight";
  Tensor changed = Checkpoint::open(model).get(norm).to(DType::F32).clone();
  for (int64_t i = 0; i < changed.numel(); ++i) changed.f32_mut()[i] *= 1.25f;
  q.tensors[norm] = changed;
  ScratchDir dir("gptq_layout");
  const ExportReport rep = export_gptq(dir.state(q), dir / "out");
  EXPECT_EQ(rep.replaced, 1);
  const Checkpoint ck = Checkpoint::open(dir / "out");
  const std::string m = "model.layers.0.mlp.down_proj";  // [64, 96]
  EXPECT_EQ(ck.info(m + ".qweight").shape, (Shape{96 * 4 / 32, 64}));
  EXPECT_EQ(ck.info(m + ".qweight").dtype, DType::I32);
  EXPECT_EQ(ck.info(m + ".qzeros").shape, (Shape{3, 64 * 4 / 32}));
  EXPECT_EQ(ck.info(m + ".scales").shape, (Shape{3, 64}));
  EXPECT_EQ(ck.info(m + ".scales").dtype, DType::F16);
  EXPECT_EQ(ck.info(m + ".g_idx").shape, (Shape{96}));
  EXPECT_FALSE(ck.has(m + ".weight"));
  EXPECT_EQ(ck.info("model.embed_tokens.weight").dtype, DType::F32);  // copied as stored
  EXPECT_TRUE(bitwise_equal(ck.get(norm), changed));
  const Json& qc = ck.config().at("quantization_config");
  EXPECT_EQ(qc.at("quant_method"), "gptq");
  EXPECT_EQ(qc.at("bits"), 4);
  EXPECT_EQ(qc.at("group_size"), 32);
  EXPECT_EQ(qc.at("desc_act"), true);
  EXPECT_EQ(qc.at("sym"), false);
  EXPECT_EQ(qc.at("checkpoint_format"), "gptq");
  EXPECT_EQ(qc.at("static_groups"), false);
  EXPECT_EQ(qc.at("true_sequential"), true);
  EXPECT_TRUE(file_exists(dir / "out/quantize_config.json"));
  EXPECT_EQ(SafetensorsFile::open(dir / "out/model.safetensors")->metadata().at("format"), "pt");
  // The packed weights decode to exactly the run's codes.
  PackedCheckpointSource src(std::make_shared<const Checkpoint>(Checkpoint::open(dir / "out")),
                             PackedFormat::from_config(qc, "config.json"));
  const QuantizedWeight back = src.quantized(m), orig = q.weights.at(m);
  EXPECT_EQ(back.q, orig.q);
  EXPECT_EQ(back.zero, orig.zero);
  EXPECT_EQ(back.scale, orig.scale);
  EXPECT_EQ(back.g_idx, orig.g_idx);
  // TinyStories-656K (widths 128 and 384): the tokenizer and generation files travel with the
  // weights ...
  const std::string stories = data("models/TinyStories-656K");
  ScratchDir dir2("gptq_tok");
  const MemoryRun q8 = rtn_quantize_model(stories, {8, 64, true, false});
  export_gptq(dir2.state(q8), dir2 / "out8");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
    EXPECT_EQ(read_file(dir2 / (std::string("out8/") + f)), read_file(path_join(stories, f))) << f;
  auto fq8 = fake_quant_decoder(q8);
  auto got8 = load_dequantized(dir2 / "out8");
  expect_same_model(*fq8, *got8, stories);
  // ... but stories260K's 172-wide FFN is no GPTQ checkpoint at any bit width (AutoGPTQ's qweight is
  // [in // 32 * bits, out]; exllama asserts in % 32 == 0): refused, nothing left behind.
  const std::string s260 = data("models/stories260K");
  EXPECT_THROW(export_gptq(dir2.state(rtn_quantize_model(s260, {8, 64, true, false})), dir2 / "out4"), UnsupportedError);
  EXPECT_FALSE(std::filesystem::exists(dir2 / "out4"));
  EXPECT_FALSE(std::filesystem::exists(dir2 / "out4.calq-tmp"));
}

TEST(ExportRoundTrip, AwqEqualsFakeQuantBitwise) {
  const Case cases[] = {
      {"models/tiny/llama2", {4, 32, false, false}, GptqZeroFormat::V1},
      {"models/tiny/qwen2", {4, 32, false, false}, GptqZeroFormat::V1},
      {"models/tiny/opt", {4, 64, false, false}, GptqZeroFormat::V1},
      {"models/tiny/llama3", {4, 32, true, false}, GptqZeroFormat::V1},  // bf16 source tensors copied as bf16
  };
  int k = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    const std::string model = data(c.model);
    const MemoryRun q = rtn_quantize_model(model, c.spec);
    ScratchDir dir("awq" + std::to_string(k++));
    const ExportReport rep = export_awq(dir.state(q), dir / "out");
    EXPECT_EQ(rep.stats.scales_rounded, 0);
    EXPECT_EQ(detect_model_format(dir / "out"), "awq");
    const Checkpoint ck = Checkpoint::open(dir / "out");
    const Json& qc = ck.config().at("quantization_config");
    EXPECT_EQ(qc.at("quant_method"), "awq");
    EXPECT_EQ(qc.at("version"), "gemm");
    EXPECT_EQ(qc.at("zero_point"), true);
    EXPECT_EQ(qc.at("group_size"), c.spec.group_size);
    auto fq = fake_quant_decoder(q);
    auto loaded = load_dequantized(dir / "out");
    expect_same_model(*fq, *loaded, model);
  }
  // AWQ has no g_idx and is 4-bit only.
  ScratchDir dir("awq_bad");
  EXPECT_THROW(export_awq(dir.state(rtn_quantize_model(data("models/tiny/llama2"), {4, 32, false, true})), dir / "a"), UnsupportedError);
  EXPECT_THROW(export_awq(dir.state(rtn_quantize_model(data("models/tiny/llama2"), {3, 32, false, false})), dir / "b"), UnsupportedError);
  EXPECT_THROW(export_awq(dir.state(rtn_quantize_model(data("models/tiny/llama2"), {4, -1, false, false})), dir / "c"), UnsupportedError);
}

TEST(ExportRoundTrip, QuantStateDirectoryIsReadLikeTheInMemoryRun) {
  const std::string model = data("models/tiny/llama2");
  MemoryRun q = rtn_quantize_model(model, {4, 32, false, true});
  q.tensors["model.layers.0.input_layernorm.weight"] = Tensor::from_f32(std::vector<float>(64, 0.5f), {64});
  ScratchDir dir("qstate");
  const QuantState opened = write_quant_state(q, dir / "state");
  EXPECT_EQ(opened.quantized_modules(), q.quantized_modules());
  EXPECT_EQ(opened.replaced_tensors(), q.replaced_tensors());
  EXPECT_EQ(opened.source_model(), model);
  const QuantizedWeight a = *opened.weight("model.layers.1.self_attn.k_proj"), b = q.weights.at("model.layers.1.self_attn.k_proj");
  EXPECT_EQ(a.q, b.q);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.g_idx, b.g_idx);
  EXPECT_EQ(a.bits, 4);
  EXPECT_EQ(a.group_size, 32);
  export_gptq(opened, dir / "out");
  auto fq = fake_quant_decoder(q);
  auto loaded = load_dequantized(dir / "out");
  expect_same_model(*fq, *loaded, model);
  // An incomplete run is refused by every writer before anything is written.
  Json st = load_json_file(dir / "state/state.json");
  st["layers_done"] = {0};
  write_file_atomic(dir / "state/state.json", st.dump());
  const QuantState partial = QuantState::open(dir / "state");
  EXPECT_THROW(partial.require_complete(), FormatError);
  EXPECT_THROW(export_gptq(partial, dir / "out2"), FormatError);
  EXPECT_THROW(export_awq(partial, dir / "out2"), FormatError);
  EXPECT_THROW(export_gguf(partial, dir / "out2.gguf"), FormatError);
  EXPECT_THROW(write_fake_quant_checkpoint(partial, dir / "out2"), FormatError);
  EXPECT_FALSE(std::filesystem::exists(dir / "out2"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out2.gguf"));
}

TEST(ExportRoundTrip, BadInputsAreRefusedWithTheirNames) {
  const std::string model = data("models/tiny/llama2");
  const MemoryRun q = rtn_quantize_model(model, {4, 32, false, false});
  ScratchDir dir("bad");
  const QuantState qs = dir.state(q);
  std::filesystem::create_directories(dir / "taken");
  write_file_atomic(dir / "taken/keep.txt", "x");
  EXPECT_THROW(export_gptq(qs, dir / "taken"), ArgError);
  EXPECT_EQ(read_file(dir / "taken/keep.txt"), "x");
  // Mixed bit widths cannot share one quantization_config.
  MemoryRun mixed = q;
  mixed.weights["model.layers.0.mlp.up_proj"] = rtn_quantize(Checkpoint::open(model).get("model.layers.0.mlp.up_proj.weight"), {8, 32});
  EXPECT_THROW(export_gptq(dir.state(mixed), dir / "mixed"), UnsupportedError);
  // A corrupted export: qzeros of the wrong width -> FormatError naming the folder and tensor.
  export_gptq(qs, dir / "ok");
  const Checkpoint ck = Checkpoint::open(dir / "ok");
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  for (const auto& n : ck.names())
    w.add(n, n == "model.layers.0.self_attn.q_proj.qzeros" ? Tensor::zeros(DType::I32, {2, 3}) : ck.get(n));
  w.write(dir / "ok/model.safetensors");
  try {
    load_model(dir / "ok");
    FAIL() << "corrupt qzeros accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("q_proj.qzeros"), std::string::npos) << e.what();
  }
  // Unsupported quantization_config values.
  Json cfg = load_json_file(dir / "ok/config.json");
  cfg["quantization_config"]["checkpoint_format"] = "marlin";
  write_file_atomic(dir / "ok/config.json", cfg.dump());
  EXPECT_THROW(load_model(dir / "ok"), UnsupportedError);
}

}  // namespace
}  // namespace calq::test
