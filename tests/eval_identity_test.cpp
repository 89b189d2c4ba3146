// The model identity of results files (eval/identity.h): stable for the same files, different when
// any tensor's data changes, independent of the folder's location.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "eval/identity.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "test_util.h"
#include "util/error.h"
#include "util/json.h"

namespace calq::eval {
namespace {

namespace fs = std::filesystem;

TEST(EvalIdentity, ModelHashFollowsContentNotLocation) {
  const std::string src = test::data("models/stories260K");
  const std::string a = ::testing::TempDir() + "calq_id_a", b = ::testing::TempDir() + "calq_id_b";
  for (const std::string& d : {a, b}) {
    fs::remove_all(d);
    fs::create_directories(d);
    fs::copy_file(src + "/config.json", d + "/config.json");
    fs::copy_file(src + "/model.safetensors", d + "/model.safetensors");
  }
  const std::string h = model_hash(src);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(model_hash(a), h);  // same files elsewhere: same identity

  // Change one weight of the last tensor in file order (a small norm vector far from the samples).
  const auto f = SafetensorsFile::open(b + "/model.safetensors");
  TensorInfo last = f->tensors().back();
  uint64_t data_start = 0;
  {
    std::ifstream in(b + "/model.safetensors", std::ios::binary);
    in.read(reinterpret_cast<char*>(&data_start), 8);
    data_start += 8;
  }
  {
    std::fstream io(b + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(std::streamoff(data_start + last.begin + 4));
    const float v = 0.123f;
    io.write(reinterpret_cast<const char*>(&v), 4);
  }
  EXPECT_NE(model_hash(b), h);
  // config.json is part of the identity too.
  std::ofstream(a + "/config.json", std::ios::app) << " ";
  EXPECT_NE(model_hash(a), h);
  EXPECT_THROW(model_hash(a + "/missing"), IoError);
}

TEST(EvalIdentity, ArchSignature) {
  const ModelConfig c = ModelConfig::from_json(load_json_file(test::data("models/stories260K/config.json")), "cfg");
  EXPECT_EQ(arch_signature(c), "llama|vocab=512|hidden=64|layers=5|heads=8/4|head_dim=8|ffn=172");
}

}  // namespace
}  // namespace calq::eval
