// Synthetic models: preset shapes, deterministic seeded weights with the stated std, and a written
// HF folder that loads back to the same model as the in-memory source.
#include "model/synthetic.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "kernels/gemm.h"
#include "model/decoder.h"
#include "test_util.h"

namespace calq {
namespace {

int64_t spec_params(const ModelConfig& c) {
  int64_t n = 0;
  for (const auto& s : synth_tensor_specs(c)) n += shape_numel(s.shape);
  return n;
}

std::string temp_dir(const std::string& tag) {
  const auto p = std::filesystem::temp_directory_path() / ("calq_synth_" + tag + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

TEST(SynthPreset, ShapesOfRealModels) {
  const ModelConfig a = synth_config("llama-1b");
  EXPECT_EQ(a.hidden_size, 2048);
  EXPECT_EQ(a.num_layers, 16);
  EXPECT_EQ(a.num_heads, 32);
  EXPECT_EQ(a.num_kv_heads, 8);
  EXPECT_EQ(a.head_dim, 64);
  EXPECT_EQ(a.intermediate_size, 8192);
  EXPECT_EQ(a.vocab_size, 32000);
  EXPECT_FALSE(a.tie_embeddings);
  // 16 x (2048*(2048+512+512+2048) + 3*2048*8192 + 2*2048) + 2*32000*2048 + 2048
  EXPECT_EQ(spec_params(a), 16 * (2048LL * 5120 + 3LL * 2048 * 8192 + 2 * 2048) + 2LL * 32000 * 2048 + 2048);
  // Llama-2-7B: 6,738,415,616 parameters.
  EXPECT_EQ(spec_params(synth_config("llama-7b")), 6738415616LL);
  EXPECT_EQ(spec_params(synth_config("llama2-7b")), 6738415616LL);  // the paper's name for it
  // Meta-Llama-3-8B: 8,030,261,248 parameters (vocab 128256, GQA 32/8, ffn 14336).
  EXPECT_EQ(spec_params(synth_config("llama3-8b")), 8030261248LL);
  // Mistral-7B-v0.1: 7,241,732,096 parameters, window 4096 on every layer.
  const ModelConfig m = synth_config("mistral-7b");
  EXPECT_EQ(spec_params(m), 7241732096LL);
  EXPECT_EQ(m.sliding_window.at(31), 4096);
  EXPECT_EQ(synth_config("llama-1b", 3).num_layers, 3);
  EXPECT_THROW(synth_config("gpt-5"), ArgError);
}

TEST(SynthWeights, SeededDeterministicWithStatedStd) {
  const SynthTensorSpec w{"model.layers.0.mlp.down_proj.weight", {256, 1024}};
  SynthOptions o;
  o.seed = 7;
  const Tensor a = synth_tensor(w, o), b = synth_tensor(w, o);
  ASSERT_EQ(a.shape(), w.shape);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
  o.seed = 8;
  const Tensor c = synth_tensor(w, o);
  EXPECT_NE(std::memcmp(a.raw(), c.raw(), a.nbytes()), 0);
  double s = 0, s2 = 0, s4 = 0;
  const float* d = a.f32();
  for (int64_t i = 0; i < a.numel(); ++i) s += d[i], s2 += double(d[i]) * d[i], s4 += std::pow(double(d[i]), 4);
  const double n = double(a.numel()), var = s2 / n;
  EXPECT_NEAR(s / n, 0.0, 0.01 / 32);  // 5 standard errors
  EXPECT_NEAR(std::sqrt(var), 1.0 / 32.0, 0.01 / 32.0);  // std 1/sqrt(fan_in = 1024)
  EXPECT_NEAR(s4 / n / (var * var), 3.0, 0.1);           // Gaussian kurtosis
  // Norm weights are ones; bf16 storage is the rounded f32 draw.
  SynthOptions ob;
  ob.seed = 7;
  ob.dtype = DType::BF16;
  const Tensor ab = synth_tensor(w, ob);
  EXPECT_EQ(ab.dtype(), DType::BF16);
  EXPECT_EQ(ab.data<uint16_t>()[123], f32_to_bf16(d[123]));
  const Tensor nw = synth_tensor({"model.norm.weight", {64}}, o);
  EXPECT_EQ(nw.f32()[5], 1.0f);
}

TEST(SynthWeights, VectorAndScalarDrawsAreBitwiseEqual) {
  // Length 32: pairs 0..15 drawn by the 16-wide path; length 31: the same pairs drawn one by one
  // (cosines at 0..14, sines at 16..30 in both layouts).
  SynthOptions o;
  o.seed = 11;
  const Tensor v = synth_tensor({"w", {32, 1}}, o), s = synth_tensor({"w", {31, 1}}, o);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(v.f32()[i], s.f32()[i]) << i;
  for (int i = 16; i < 31; ++i) EXPECT_EQ(v.f32()[i], s.f32()[i]) << i;
}

TEST(SynthModel, WrittenFolderLoadsToTheSameModel) {
  const std::string dir = temp_dir("rt");
  SynthOptions o;
  o.seed = 3;
  o.dtype = DType::BF16;
  const Json cfg = synth_config_json("llama-tiny", 2);
  write_synth_model(cfg, o, dir);
  auto loaded = Decoder::load(dir);
  auto mem = synth_decoder(ModelConfig::from_json(cfg, "cfg"), o);
  EXPECT_EQ(loaded->parameter_count(), mem->parameter_count());
  EXPECT_EQ(loaded->checkpoint()->get("model.layers.1.mlp.up_proj.weight").dtype(), DType::BF16);
  std::vector<int32_t> ids = {1, 5, 900, 2047, 17, 3};
  ForwardOptions fo;
  const auto a = loaded->forward(ids.data(), 2, 3, fo), b = mem->forward(ids.data(), 2, 3, fo);
  ASSERT_EQ(a.logits.shape(), (Shape{2, 3, 2048}));
  EXPECT_EQ(std::memcmp(a.logits.raw(), b.logits.raw(), a.logits.nbytes()), 0);
  // Random weights with std 1/sqrt(fan_in) keep activations O(1): logits are finite and spread.
  double mx = 0;
  for (int64_t i = 0; i < a.logits.numel(); ++i) {
    ASSERT_TRUE(std::isfinite(a.logits.f32()[i]));
    mx = std::max(mx, double(std::fabs(a.logits.f32()[i])));
  }
  EXPECT_GT(mx, 0.5);
  std::filesystem::remove_all(dir);
}

// An f16 checkpoint at f32 compute holds its weights at 2 bytes a parameter where oneDNN has no bf16
// matmul (gemm.h HalfStorage: f16 rows), as a bf16 checkpoint does; with AVX-512 both pack an f32
// copy. (Its products: kernels_gemm_bf16rows_test.cpp; an f16 checkpoint's logits against the
// reference's: the tiny Cohere checkpoint, stored f16, in forward_parity_test.cpp.)
TEST(SynthModel, F16CheckpointStaysTwoBytesAParameter) {
  const Json cfg = synth_config_json("llama-tiny", 2);
  size_t bytes[2];
  std::vector<float> logits[2];
  int i = 0;
  for (DType t : {DType::F16, DType::BF16}) {
    const std::string dir = temp_dir(std::string("half_") + dtype_name(t));
    SynthOptions o;
    o.seed = 5;
    o.dtype = t;
    write_synth_model(cfg, o, dir);
    auto m = Decoder::load(dir, ComputeType::F32);
    bytes[i] = m->pack_weights();
    std::vector<int32_t> ids = {1, 5, 900, 2047};
    const auto r = m->forward(ids.data(), 1, 4, ForwardOptions{});
    logits[i++].assign(r.logits.f32(), r.logits.f32() + r.logits.numel());
    std::filesystem::remove_all(dir);
  }
  if (gemm_bf16_native()) EXPECT_GT(bytes[0], bytes[1]);
  else EXPECT_EQ(bytes[0], bytes[1]);
  // The same seeded draws rounded to f16 and to bf16: logits agree to bf16's precision.
  double mx = 0, diff = 0;
  for (size_t j = 0; j < logits[0].size(); ++j) {
    mx = std::max(mx, double(std::fabs(logits[1][j])));
    diff = std::max(diff, double(std::fabs(logits[0][j] - logits[1][j])));
  }
  EXPECT_GT(mx, 0.5);
  EXPECT_LT(diff, 0.05 * mx);
}

TEST(SynthCli, WritesFolderAndRejectsUnknownPreset) {
  const std::string dir = temp_dir("cli");
  std::string out;
  EXPECT_EQ(test::run_command(test::cli() + " synth --preset llama-tiny --layers 1 --dtype bf16 -o " + dir, &out), 0)
      << out;
  auto m = Decoder::load(dir);
  EXPECT_EQ(m->num_layers(), 1);
  EXPECT_EQ(m->config().hidden_size, 256);
  EXPECT_NE(test::run_command(test::cli() + " synth --preset nope -o " + dir + "_x", &out), 0);
  EXPECT_NE(out.find("unknown synthetic preset 'nope'"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace calq
