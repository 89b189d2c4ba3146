// Checkpoint loading: a sharded folder (model.safetensors.index.json) gives the same model as the
// single file; optional JSON files are picked up; weights are memory-mapped views.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/checkpoint.h"
#include "model/decoder.h"
#include "test_util.h"

namespace calq {
namespace {

namespace fs = std::filesystem;

TEST(Checkpoint, ShardedIndexLoadsTheSameModel) {
  const std::string src = test::data("models/tiny/qwen2");
  const fs::path dir = fs::temp_directory_path() / ("calq_sharded_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(src + "/config.json", dir / "config.json");
  auto f = SafetensorsFile::open(src + "/model.safetensors");
  SafetensorsWriter a, b;
  Json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", Json::object()}};
  int k = 0;
  for (const auto& ti : f->tensors()) {
    const bool first = (k++ % 2) == 0;
    (first ? a : b).add(ti.name, f->get(ti.name).clone());
    index["weight_map"][ti.name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  a.write((dir / "model-00001-of-00002.safetensors").string());
  b.write((dir / "model-00002-of-00002.safetensors").string());
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(1);

  const Checkpoint c = Checkpoint::open(dir.string());
  EXPECT_EQ(c.shard_paths().size(), 2u);
  EXPECT_EQ(c.names().size(), f->tensors().size());
  EXPECT_TRUE(c.get("model.embed_tokens.weight").readonly());  // a view into the mapping

  int64_t B, T;
  const auto ids = test::read_id_batch(src + "/golden/input_ids.json", &B, &T);
  const ForwardOutput x = Decoder::load(src)->forward(ids.data(), B, T);
  const ForwardOutput y = Decoder::load(dir.string())->forward(ids.data(), B, T);
  ASSERT_EQ(x.logits.shape(), y.logits.shape());
  for (int64_t i = 0; i < x.logits.numel(); ++i) ASSERT_EQ(x.logits.f32()[i], y.logits.f32()[i]);

  // A shard name that escapes the folder is refused.
  index["weight_map"]["model.norm.weight"] = "../evil.safetensors";
  std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc) << index.dump();
  EXPECT_THROW(Checkpoint::open(dir.string()), FormatError);
  fs::remove_all(dir);
}

TEST(Checkpoint, ReadsOptionalConfigs) {
  const Checkpoint c = Checkpoint::open(test::data("models/stories260K"));
  ASSERT_TRUE(c.generation_config().has_value());
  ASSERT_TRUE(c.tokenizer_config().has_value());
  EXPECT_EQ(c.config().at("model_type"), "llama");
  const Checkpoint t = Checkpoint::open(test::data("models/tiny/opt"));
  EXPECT_FALSE(t.generation_config().has_value());
}

TEST(ModelConfig, DefaultsFollowHuggingFaceClasses) {
  // Keys absent from config.json take the HF class defaults (../shared/models/tiny/README.md).
  const ModelConfig opt = ModelConfig::from_json(load_json_file(test::data("models/tiny/opt/config.json")), "opt");
  EXPECT_TRUE(opt.tie_embeddings);
  EXPECT_EQ(opt.position_offset, 2);
  EXPECT_DOUBLE_EQ(opt.norm_eps, 1e-5);
  const ModelConfig coh =
      ModelConfig::from_json(load_json_file(test::data("models/tiny/cohere/config.json")), "cohere");
  EXPECT_TRUE(coh.tie_embeddings);
  EXPECT_TRUE(coh.parallel_block);
  EXPECT_DOUBLE_EQ(coh.logit_scale, 0.0625);
  Json mis = {{"model_type", "mistral"}, {"vocab_size", 10}, {"hidden_size", 64}, {"intermediate_size", 8},
              {"num_hidden_layers", 1}, {"num_attention_heads", 16}};
  EXPECT_EQ(ModelConfig::from_json(mis, "m").num_kv_heads, 8);
  mis["model_type"] = "qwen2";
  mis["num_attention_heads"] = 32;
  EXPECT_EQ(ModelConfig::from_json(mis, "q").num_kv_heads, 32);
  EXPECT_TRUE(ModelConfig::from_json(mis, "q").qkv_bias);
}

}  // namespace
}  // namespace calq
