// "calq loads (b), (c) and (d) back and evaluates them": the exported GPTQ folder and GGUF file of
// TinyStories-656K go through the evaluation session (model + tokenizer) and perplexity unchanged.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/ppl.h"
#include "eval/session.h"
#include "formats/gguf_model.h"
#include "formats/hf_quant_export.h"
#include "export_fixtures.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace calq::test {
namespace {

double ppl_of(const std::string& model_path, const std::string& tokenizer_path, const std::string& text) {
  eval::EvalSession s = eval::open_session(model_path, tokenizer_path, true, ComputeType::F32);
  const std::vector<int32_t> stream = eval::token_stream(*s.tokenizer, text);
  const auto windows = eval::make_windows(stream, 64, eval::Protocol::Gptq, s.tokenizer->bos_id());
  return eval::perplexity(eval::DecoderLogits(*s.model), windows).ppl;
}

TEST(ExportEval, ExportedModelsEvaluateLikeTheirSources) {
  const std::string model = data("models/TinyStories-656K");
  const Json j = load_json_file(path_join(model, "golden/input_ids.json"));
  std::string text;
  for (const auto& t : j.at("texts")) text += t.get<std::string>() + "\n";
  const double base = ppl_of(model, "", text);
  ScratchDir dir("eval");
  // GPTQ 8-bit (TinyStories-656K: widths 128 and 384, which GPTQ loaders take): its folder carries
  // the tokenizer.
  const MemoryRun q = rtn_quantize_model(model, {8, 64, true, false});
  export_gptq(dir.state(q), dir / "gptq");
  const double gptq = ppl_of(dir / "gptq", "", text);
  // GGUF Q8_0: with the tokenizer from the source folder (--tokenizer), and the one the file
  // carries — the same ids, so the same perplexity.
  export_gguf(model, dir / "m.gguf");
  const double gguf = ppl_of(dir / "m.gguf", model, text);
  EXPECT_EQ(ppl_of(dir / "m.gguf", "", text), gguf);
  std::printf("TinyStories-656K ppl: float %.4f, gptq-8bit %.4f, gguf-q8_0 %.4f\n", base, gptq, gguf);
  EXPECT_GT(base, 1.0);
  EXPECT_NEAR(gptq / base, 1.0, 0.02);
  EXPECT_NEAR(gguf / base, 1.0, 0.01);
}

}  // namespace
}  // namespace calq::test
