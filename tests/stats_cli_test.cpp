// The command line end to end on stories260K: calib build (reproducible sha256), stats (split
// runs + merge == one run, resume of a finished file), outliers, compare, imatrix, and the
// one-line errors for bad input (missing language, empty source, seqlen beyond the context,
// unknown module).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "calib/calib_set.h"
#include "io/gguf.h"
#include "observe/act_stats.h"
#include "test_util.h"

namespace calq {
namespace {

namespace fs = std::filesystem;

class StatsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("calq_stats_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  int calq(const std::string& args, std::string* out) const {
    return test::run_command("CALQ_DATA='" + test::data() + "' '" + test::cli() + "' " + args, out);
  }
  static std::string sha_line(const std::string& out) {
    const size_t i = out.find("sha256           ");
    return i == std::string::npos ? "" : out.substr(i + 17, 64);
  }
  fs::path dir_;
  const std::string model_ = test::data("models/stories260K");
};

TEST_F(StatsCli, BuildCollectAnalyse) {
  std::string out, out2;
  const std::string ts = test::data("data/tinystories/tinystories_val.txt");
  const std::string build = "calib build text --tokenizer '" + model_ + "' --source '" + ts + "' --mode concat -n 4 -T 64 ";
  ASSERT_EQ(calq(build + "-o " + p("a.safetensors"), &out), 0) << out;
  ASSERT_EQ(calq(build + "-o " + p("b.safetensors"), &out2), 0) << out2;
  ASSERT_EQ(sha_line(out).size(), 64u) << out;
  EXPECT_EQ(sha_line(out), sha_line(out2));  // same seed, same set
  EXPECT_EQ(sha_line(out), token_sha256(load_calib_set(p("a.safetensors")).ids));
  EXPECT_TRUE(fs::exists(p("a.json")));
  ASSERT_EQ(calq(build + "--seed 1 -o " + p("c.safetensors"), &out2), 0) << out2;
  EXPECT_NE(sha_line(out), sha_line(out2));

  // One run vs two halves merged (same batch size: the forward pass itself rounds differently
  // for other batch shapes).
  ASSERT_EQ(calq("stats '" + model_ + "' --calib " + p("a.safetensors") + " -b 2 -q -o " + p("all.safetensors"), &out), 0)
      << out;
  ASSERT_EQ(calq("stats '" + model_ + "' --calib " + p("a.safetensors") + " --range 0:2 -b 2 -q -o " + p("h1.safetensors"), &out), 0);
  ASSERT_EQ(calq("stats '" + model_ + "' --calib " + p("a.safetensors") + " --range 2: -b 2 -q -o " + p("h2.safetensors"), &out), 0);
  ASSERT_EQ(calq("stats merge " + p("h1.safetensors") + " " + p("h2.safetensors") + " -q -o " + p("m.safetensors"), &out), 0)
      << out;
  const ActStats all = load_stats(p("all.safetensors")), merged = load_stats(p("m.safetensors"));
  ASSERT_EQ(all.tensors.size(), merged.tensors.size());
  EXPECT_EQ(merged.meta["samples"], 4);
  for (size_t t = 0; t < all.tensors.size(); ++t) {
    EXPECT_EQ(all.tensors[t].max, merged.tensors[t].max);
    for (size_t c = 0; c < all.tensors[t].sum2.size(); ++c)
      EXPECT_NEAR(all.tensors[t].sum2[c], merged.tensors[t].sum2[c], 1e-9 * (1 + all.tensors[t].sum2[c]));
  }
  // Resuming a finished file changes nothing.
  ASSERT_EQ(calq("stats '" + model_ + "' --calib " + p("a.safetensors") + " --resume -q -o " + p("all.safetensors"), &out), 0)
      << out;
  EXPECT_EQ(load_stats(p("all.safetensors")).meta["samples"], 4);

  ASSERT_EQ(calq("outliers " + p("all.safetensors") + " --calib " + p("a.safetensors") + " --json " + p("o.json"), &out), 0)
      << out;
  EXPECT_NE(out.find("Per-layer activation outliers"), std::string::npos);
  EXPECT_NE(out.find("attn in (q/k/v)"), std::string::npos);
  EXPECT_TRUE(fs::exists(p("o.json")));
  ASSERT_EQ(calq("stats '" + model_ + "' --calib " + p("c.safetensors") + " -q -o " + p("c.stats.safetensors"), &out), 0);
  ASSERT_EQ(calq("compare " + p("all.safetensors") + " " + p("c.stats.safetensors") + " --labels s0,s1 --json " +
                     p("cmp.json"),
                 &out),
            0)
      << out;
  EXPECT_NE(out.find("cos(rms)"), std::string::npos);
  EXPECT_NE(out.find("Convergence of s0"), std::string::npos);
  ASSERT_EQ(calq("imatrix " + p("all.safetensors") + " -o " + p("imatrix.gguf"), &out), 0) << out;
  auto g = gguf::File::open(p("imatrix.gguf"));
  EXPECT_EQ(g->get_string("general.type"), "imatrix");
  EXPECT_NE(g->find_tensor("blk.4.ffn_down.weight.in_sum2"), nullptr);
}

TEST_F(StatsCli, BadInputGivesOneLineErrors) {
  std::string out;
  auto one_line_error = [](const std::string& o, const std::string& needle) {
    EXPECT_EQ(o.rfind("calq: error: ", 0), 0u) << o;
    EXPECT_EQ(std::count(o.begin(), o.end(), '\n'), 1) << o;
    EXPECT_NE(o.find(needle), std::string::npos) << o;
  };
  EXPECT_NE(calq("calib build lang --lang xx_Latn --tokenizer '" + model_ + "' -o " + p("x.safetensors"), &out), 0);
  one_line_error(out, "FLORES-200 language 'xx_Latn' not found");
  std::ofstream(p("empty.txt")) << "\n\n";
  EXPECT_NE(calq("calib build text --source " + p("empty.txt") + " --tokenizer '" + model_ + "' -o " + p("x.safetensors"),
                 &out),
            0);
  one_line_error(out, "empty");
  // stories260K has a 512-token context: a longer set is refused at build time when the model
  // folder is the tokenizer, and by stats when it was built without the model (--vocab).
  EXPECT_EQ(calq("calib build random-tokens --tokenizer '" + model_ + "' -n 1 -T 600 -o " + p("long.safetensors"), &out), 1);
  one_line_error(out, "512 positions");
  ASSERT_EQ(calq("calib build random-tokens --vocab 512 -n 1 -T 600 -o " + p("long.safetensors"), &out), 0) << out;
  EXPECT_NE(calq("stats '" + model_ + "' --calib " + p("long.safetensors") + " -o " + p("s.safetensors"), &out), 0);
  one_line_error(out, "exceeds the model's context");
  ASSERT_EQ(calq("calib build random-tokens --tokenizer '" + model_ + "' -n 1 -T 8 -o " + p("r.safetensors"), &out), 0);
  EXPECT_NE(calq("stats '" + model_ + "' --calib " + p("r.safetensors") + " --modules model.layers.9.mlp.up_proj -o " +
                     p("s.safetensors"),
                 &out),
            0);
  one_line_error(out, "no observable module matches 'model.layers.9.mlp.up_proj'");
  EXPECT_NE(calq("outliers " + p("r.safetensors"), &out), 0);  // a set is not a stats file
  one_line_error(out, "not a calq statistics file");
}

}  // namespace
}  // namespace calq
