// Bad input to model loading: every case must give a typed error whose one-line message names
// the file and the problem (never a crash), and the CLI must exit non-zero with one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/decoder.h"
#include "test_util.h"
#include "util/error.h"

namespace calq {
namespace {

namespace fs = std::filesystem;

// A scratch copy of tiny/llama2 that a test may break.
class BrokenModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("calq_broken_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string src = test::data("models/tiny/llama2");
    fs::copy_file(src + "/config.json", dir_ / "config.json");
    fs::copy_file(src + "/model.safetensors", dir_ / "model.safetensors");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& f) const { return (dir_ / f).string(); }
  void write(const std::string& f, const std::string& bytes) const {
    std::ofstream(path(f), std::ios::binary | std::ios::trunc) << bytes;
  }
  // Expects loading to throw E with all `needles` in the message, which must be one line.
  template <class E>
  void expect_load_error(std::initializer_list<std::string> needles) const {
    try {
      Decoder::load(dir_.string());
      FAIL() << "loading succeeded";
    } catch (const E& e) {
      const std::string m = e.what();
      for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
  fs::path dir_;
};

TEST_F(BrokenModel, TruncatedSafetensors) {
  const std::string bytes = read_file(path("model.safetensors"));
  write("model.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_load_error<FormatError>({"model.safetensors", "beyond the data section"});
  write("model.safetensors", bytes.substr(0, 6));
  expect_load_error<FormatError>({"model.safetensors", "truncated"});
}

TEST_F(BrokenModel, HeaderLiesAboutDtypeAndShape) {
  // Rewrite the file with one tensor relabelled F16 and twice as many elements: internally
  // consistent byte counts, but not what config.json implies.
  auto f = SafetensorsFile::open(path("model.safetensors"));
  SafetensorsWriter w;
  for (const auto& ti : f->tensors()) {
    Tensor t = f->get(ti.name).clone();
    if (ti.name == "model.layers.0.self_attn.q_proj.weight") {
      Tensor lie = Tensor::view_of(t.raw(), DType::F16, {t.dim(0), t.dim(1) * 2}, nullptr, true).clone();
      w.add(ti.name, lie);
    } else {
      w.add(ti.name, t);
    }
  }
  w.write(path("model.safetensors.new"));
  fs::rename(path("model.safetensors.new"), path("model.safetensors"));
  expect_load_error<FormatError>({"model.layers.0.self_attn.q_proj.weight", "config.json implies"});
}

TEST_F(BrokenModel, MissingTensor) {
  auto f = SafetensorsFile::open(path("model.safetensors"));
  SafetensorsWriter w;
  for (const auto& ti : f->tensors())
    if (ti.name != "model.layers.1.mlp.down_proj.weight") w.add(ti.name, f->get(ti.name).clone());
  w.write(path("m2"));
  fs::rename(path("m2"), path("model.safetensors"));
  expect_load_error<FormatError>({"missing tensor 'model.layers.1.mlp.down_proj.weight'"});
}

TEST_F(BrokenModel, UnknownModelType) {
  std::string cfg = read_file(path("config.json"));
  cfg.replace(cfg.find("\"llama\""), 7, "\"gpt_neox\"");
  write("config.json", cfg);
  expect_load_error<UnsupportedError>({"config.json", "unknown model_type 'gpt_neox'"});
}

TEST_F(BrokenModel, MalformedConfigJson) {
  write("config.json", "{\"model_type\": \"llama\", \"hidden_size\": ");
  expect_load_error<FormatError>({"config.json", "invalid JSON"});
  write("config.json", "{\"model_type\": \"llama\", \"vocab_size\": 128, \"hidden_size\": \"64\"}");
  expect_load_error<ConfigError>({"config.json", "hidden_size", "wrong type"});
  write("config.json", "{\"model_type\": \"llama\", \"vocab_size\": 128}");
  expect_load_error<ConfigError>({"config.json", "missing field 'hidden_size'"});
}

TEST_F(BrokenModel, RefusesPickle) {
  fs::remove(path("model.safetensors"));
  write("pytorch_model.bin", "PK\x03\x04 not really a pickle");
  expect_load_error<UnsupportedError>({"pickle", "never loads pickle"});
}

TEST_F(BrokenModel, CliPrintsOneLineAndFails) {
  const std::string bytes = read_file(path("model.safetensors"));
  write("model.safetensors", bytes.substr(0, bytes.size() - 100));
  std::string out;
  const int rc = test::run_command(test::cli() + " logits " + dir_.string() + " --ids " +
                                       test::data("models/tiny/llama2/golden/input_ids.json") + " -o " +
                                       path("out.safetensors"),
                                   &out);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out.rfind("calq: error: ", 0), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("model.safetensors"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(path("out.safetensors")));
}

TEST(ModelInputs, TokenIdOutOfRangeIsAnError) {
  auto m = Decoder::load(test::data("models/tiny/opt"));
  const int32_t ids[3] = {1, 2, 1000};
  EXPECT_THROW(m->forward(ids, 1, 3), ArgError);
  std::vector<int32_t> many(70, 1);  // OPT learned positions stop at max_position_embeddings 64
  EXPECT_THROW(m->forward(many.data(), 1, 70), ArgError);
}

}  // namespace
}  // namespace calq
