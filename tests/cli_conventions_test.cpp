// The command line's conventions (tools/calq/command.h, README "Exit status"): one `calq: error:`
// line, exit 2 for usage errors with a "did you mean" for near misses, exit 1 when the work fails;
// checks that fail early (before any work) with the reason and what would work; the data pack found
// from any working directory. And formats/export_rules.h, the loaders' rules, by known answers.
#include <gtest/gtest.h>

#include <filesystem>

#include "export_fixtures.h"
#include "formats/export_rules.h"
#include "test_util.h"
#include "util/error.h"

namespace calq::test {
namespace {

// The output is exactly one line starting with "calq: error: ".
void expect_one_error_line(const std::string& out) {
  EXPECT_EQ(out.rfind("calq: error: ", 0), 0u) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
}

TEST(CliConventions, UsageErrorsAreOneLineExit2WithSuggestions) {
  const std::string m = data("models/stories260K");
  std::string out;
  EXPECT_EQ(run_command(cli() + " quantise " + m, &out), 2);
  expect_one_error_line(out);
  EXPECT_NE(out.find("unknown command 'quantise' (did you mean 'quantize'?)"), std::string::npos) << out;
  EXPECT_EQ(run_command(cli() + " quantize " + m + " --group_size 32 -o /nonexistent/x", &out), 2);
  expect_one_error_line(out);
  EXPECT_NE(out.find("'--group_size' (did you mean '--group-size'?)"), std::string::npos) << out;
  EXPECT_EQ(run_command(cli() + " quantize " + m + " --method gtpq -o /nonexistent/x", &out), 2);
  expect_one_error_line(out);
  EXPECT_NE(out.find("did you mean 'gptq'?"), std::string::npos) << out;
  EXPECT_EQ(run_command(cli() + " calib", &out), 2);
  expect_one_error_line(out);
  EXPECT_NE(out.find("a command is required: build or show"), std::string::npos) << out;
  EXPECT_EQ(run_command(cli() + " eval ppl", &out), 2);
  expect_one_error_line(out);
  // The work failing is exit 1.
  EXPECT_EQ(run_command(cli() + " inspect /nonexistent/model", &out), 1);
  expect_one_error_line(out);
}

TEST(CliConventions, HelpListsSubcommandsAndTheBuildersOwnOptions) {
  std::string out;
  ASSERT_EQ(run_command(cli() + " calib --help", &out), 0) << out;
  EXPECT_NE(out.find("Build a calibration set"), std::string::npos) << out;
  ASSERT_EQ(run_command(cli() + " calib build text --help", &out), 0) << out;
  EXPECT_NE(out.find("--source"), std::string::npos) << out;
  EXPECT_EQ(out.find("--lang"), std::string::npos) << out;  // lang's option is not text's
  ASSERT_EQ(run_command(cli() + " --help", &out), 0) << out;
  EXPECT_NE(out.find("Exit status"), std::string::npos) << out;
}

TEST(CliConventions, ChecksFailBeforeTheWork) {
  const std::string m = data("models/stories260K");
  const std::string text = data("data/tinystories/tinystories_val.txt");
  ScratchDir dir("cli_conv");
  std::string out;
  // A window longer than the model's 512 positions: refused at build time; the default fits.
  EXPECT_EQ(run_command(cli() + " calib build text --tokenizer " + m + " --source " + text + " -n 2 -T 1024 -o " +
                            dir / "long.safetensors", &out), 1);
  expect_one_error_line(out);
  EXPECT_NE(out.find("512 positions"), std::string::npos) << out;
  ASSERT_EQ(run_command(cli() + " calib build text --tokenizer " + m + " --source " + text + " --mode concat -n 2 -o " +
                            dir / "ok.safetensors", &out), 0) << out;
  ASSERT_EQ(run_command(cli() + " calib show " + dir / "ok.safetensors", &out), 0) << out;
  EXPECT_NE(out.find("[2, 512]"), std::string::npos) << out;
  // --ctx beyond max_position_embeddings: refused unless --allow-long-ctx.
  EXPECT_EQ(run_command(cli() + " eval ppl " + m + " --data " + text + " --ctx 1024 --chunks 1", &out), 1);
  expect_one_error_line(out);
  EXPECT_NE(out.find("--allow-long-ctx"), std::string::npos) << out;
  // GPTQ export of a model whose MLP is 172 wide: refused before quantizing, nothing written.
  EXPECT_EQ(run_command(cli() + " quantize " + m + " --method gptq --calib " + dir / "ok.safetensors" +
                            " --group-size 32 --format gptq -o " + dir / "g", &out), 1);
  expect_one_error_line(out);
  EXPECT_NE(out.find("mlp.gate_proj [out 172, in 64]"), std::string::npos) << out;
  EXPECT_NE(out.find("multiple of 32"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "g"));
  // A fake-quant run folder is recognised; GGUF q4_0 of it is refused unless --requantize.
  ASSERT_EQ(run_command(cli() + " quantize " + m + " --method rtn --bits 3 --group-size 32 -o " + dir / "r", &out), 0) << out;
  ASSERT_EQ(run_command(cli() + " inspect " + dir / "r", &out), 0) << out;
  EXPECT_NE(out.find("fake-quant"), std::string::npos) << out;
  EXPECT_EQ(run_command(cli() + " export " + dir / "r" + " --format gguf --type q4_0 -o " + dir / "r.gguf", &out), 1);
  EXPECT_NE(out.find("--requantize"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "r.gguf"));
}

TEST(CliConventions, DataPackFoundFromAnyDirectory) {
  const std::string m = data("models/stories260K");
  ScratchDir dir("cli_data");
  std::string out;
  // A CALQ_DATA that is not a folder is named.
  EXPECT_EQ(run_command("cd " + dir.path() + " && CALQ_DATA=/nonexistent/pack " + cli() +
                            " calib build task --task arc_challenge --tokenizer " + m + " -n 2 -T 64 -o t.safetensors", &out), 1);
  expect_one_error_line(out);
  EXPECT_NE(out.find("CALQ_DATA"), std::string::npos) << out;
  // Without CALQ_DATA, from a folder that has no ../shared: the pack beside the repository.
  if (!std::filesystem::is_directory(std::string(CALQ_SOURCE_DIR) + "/../shared"))
    GTEST_SKIP() << "the data pack is not beside the repository";
  ASSERT_EQ(run_command("cd " + dir.path() + " && env -u CALQ_DATA " + cli() +
                            " calib build task --task arc_challenge --tokenizer " + m + " -n 2 -T 64 -o t.safetensors", &out), 0) << out;
  EXPECT_TRUE(std::filesystem::exists(dir / "t.safetensors"));
}

TEST(ExportRules, LoadersRulesByKnownAnswers) {
  EXPECT_EQ(gptq_export_problem({"m", 4096, 4096}, 4, 128), "");
  EXPECT_EQ(gptq_export_problem({"m", 4096, 11008}, 4, -1), "");
  // in = 688: AutoGPTQ's qweight is [in // 32 * bits, out] and exllama asserts in % 32 == 0.
  EXPECT_NE(gptq_export_problem({"mlp.down_proj", 256, 688}, 4, 16).find("mlp.down_proj [out 256, in 688]"), std::string::npos);
  EXPECT_NE(gptq_export_problem({"m", 100, 128}, 4, 128).find("out_features"), std::string::npos);
  EXPECT_NE(gptq_export_problem({"m", 128, 192}, 4, 128).find("group size 128 does not divide"), std::string::npos);
  EXPECT_NE(gptq_export_problem({"m", 128, 128}, 5, 128), "");
  EXPECT_EQ(awq_export_problem({"m", 128, 192}, 4, 64, false), "");
  EXPECT_NE(awq_export_problem({"m", 128, 192}, 3, 64, false).find("4-bit only"), std::string::npos);
  EXPECT_NE(awq_export_problem({"m", 128, 192}, 4, 64, true).find("act-order"), std::string::npos);
  EXPECT_NE(awq_export_problem({"m", 12, 192}, 4, 64, false).find("multiple of 8"), std::string::npos);
  // The message names the group sizes that fit every linear.
  try {
    check_exportable("gptq", {{"a", 64, 192}, {"b", 192, 64}}, 4, 128, false);
    FAIL() << "g128 accepted for in = 192";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("group sizes that fit every linear of this model: 32, 64, -1"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(check_exportable("gptq", {{"a", 64, 192}, {"b", 192, 64}}, 4, 64, false));
}

}  // namespace
}  // namespace calq::test
