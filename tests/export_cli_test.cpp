// `calq export` end to end: a QuantState directory -> GPTQ / AWQ / GGUF, loadable and equal to the
// fake-quant model; bad input -> one line naming the file and the problem, exit 1, nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "formats/gguf_model.h"
#include "export_fixtures.h"
#include "formats/loader.h"
#include "test_util.h"

namespace calq::test {
namespace {

TEST(ExportCli, QuantStateToEveryFormat) {
  const std::string model = data("models/tiny/llama2");
  const MemoryRun q = rtn_quantize_model(model, {4, 32, false, false});
  ScratchDir dir("cli");
  const QuantState qs = write_quant_state(q, dir / "qs");
  auto fq = fake_quant_decoder(q);
  const Tensor want = fixture_logits(*fq, model);
  for (const std::string fmt : {"gptq", "awq"}) {
    std::string out;
    ASSERT_EQ(run_command(cli() + " export " + dir / "qs" + " --format " + fmt + " -o " + dir / fmt, &out), 0) << out;
    EXPECT_NE(out.find("wrote"), std::string::npos) << out;
    EXPECT_TRUE(bitwise_equal(fixture_logits(*load_dequantized(dir / fmt), model), want)) << fmt;
  }
  std::string out;
  // GGUF q4_0 cannot hold the codes: refused (exit 1, nothing written) unless --requantize.
  ASSERT_EQ(run_command(cli() + " export " + dir / "qs" + " --format gguf --type q4_0 -o " + dir / "m.gguf", &out), 1) << out;
  EXPECT_NE(out.find("--requantize"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "m.gguf"));
  ASSERT_EQ(run_command(cli() + " export " + dir / "qs" + " --format gguf --type q4_0 --requantize -o " + dir / "m.gguf", &out), 0) << out;
  EXPECT_NE(out.find("re-quantized"), std::string::npos) << out;
  EXPECT_EQ(detect_model_format(dir / "m.gguf"), "gguf");
  // Byte for byte what the library writes for the same run (its numerics: export_gguf_test.cpp).
  GgufExportOptions o;
  o.type = ggml::Type::Q4_0;
  o.requantize = true;
  export_gguf(qs, dir / "lib.gguf", o);
  EXPECT_EQ(read_file(dir / "m.gguf"), read_file(dir / "lib.gguf"));
}

TEST(ExportCli, BadInputIsOneLineAndWritesNothing) {
  ScratchDir dir("cli_bad");
  std::string out;
  // A QuantState whose layer file is truncated.
  const MemoryRun q = rtn_quantize_model(data("models/tiny/llama2"), {4, 32, false, false});
  write_quant_state(q, dir / "qs");
  const std::string layer = dir / "qs/layer.1.safetensors";
  const std::string bytes = read_file(layer);
  write_file_atomic(layer, bytes.substr(0, bytes.size() - 100));
  EXPECT_EQ(run_command(cli() + " export " + dir / "qs" + " --format gptq -o " + dir / "out", &out), 1);
  EXPECT_NE(out.find("layer.1.safetensors"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out.calq-tmp"));
  // A float model cannot become GPTQ; a bad --type is named.
  EXPECT_EQ(run_command(cli() + " export " + data("models/tiny/llama2") + " --format awq -o " + dir / "out", &out), 1);
  EXPECT_NE(out.find("quantization run"), std::string::npos) << out;
  // A bad --type is a usage error (exit 2).
  EXPECT_EQ(run_command(cli() + " export " + data("models/tiny/llama2") + " --format gguf --type q6_k -o " + dir / "x.gguf", &out), 2);
  EXPECT_NE(out.find("q6_k"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf"));
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf.tmp"));
}

}  // namespace
}  // namespace calq::test
