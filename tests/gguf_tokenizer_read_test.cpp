// The tokenizer a GGUF file carries, read back (formats/gguf_tokenizer.h): the metadata calq writes
// for a tokenizer folder, read into a Tokenizer, encodes every golden text to exactly the ids of the
// tokenizer.json path — SentencePiece-style BPE (stories260K, Llama-2: tokenizer.ggml.model llama)
// and byte-level BPE (Llama-3, Qwen: gpt2 with pre llama-bpe / qwen2), on the 276 golden texts.
#include <gtest/gtest.h>

#include "export_fixtures.h"
#include "formats/gguf_tokenizer.h"
#include "io/gguf.h"
#include "model/config.h"
#include "tokenizer_test_util.h"

namespace calq::test {
namespace {

struct Case {
  std::string tokenizer, config;  // tokenizers/<name>, a config.json of the family
};

class GgufTokenizerRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(GgufTokenizerRoundTrip, GoldenTextsGiveTheTokenizerJsonIds) {
  const Case c = GetParam();
  const Tokenizer& want = shared_tokenizer(c.tokenizer);
  ModelConfig cfg = ModelConfig::from_json(load_json_file(data(c.config)), c.config);
  cfg.vocab_size = want.vocab_size();
  gguf::Writer w;
  const std::string dir_of = c.tokenizer == "stories260K" ? data("models/stories260K") : data("tokenizers/" + c.tokenizer);
  for (const auto& warning : add_tokenizer_metadata(w, dir_of, cfg))  // only the note on tokenizer.ggml.pre
    EXPECT_NE(warning.find("tokenizer.ggml.pre"), std::string::npos) << warning;
  ScratchDir dir("gguf_tok_" + c.tokenizer);
  w.write(dir / "t.gguf");
  const auto f = gguf::File::open(dir / "t.gguf");
  const auto got = load_gguf_tokenizer(*f);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->vocab_size(), want.vocab_size());
  EXPECT_EQ(got->bos_id(), want.bos_id());
  EXPECT_EQ(got->eos_id(), want.eos_id());
  EXPECT_EQ(gguf_tokenizer_source_sha256(*f), want.sha256());
  int mismatches = 0;
  const auto golden = load_golden("llama2");  // its 276 texts (the ids come from tokenizer.json)
  ASSERT_GT(golden.size(), 100u);
  for (const auto& g : golden) {
    EncodeOptions with, without;
    without.add_special_tokens = false;
    const auto a = got->encode(g.text, with), b = got->encode(g.text, without);
    if (a != want.encode(g.text, with) || b != want.encode(g.text, without)) {
      if (mismatches++ < 5) ADD_FAILURE() << c.tokenizer << " " << g.source << ": " << ::testing::PrintToString(g.text);
      continue;
    }
    EXPECT_EQ(got->decode(a), want.decode(a)) << g.source;
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, GgufTokenizerRoundTrip,
                         ::testing::Values(Case{"stories260K", "models/stories260K/config.json"},
                                           Case{"llama2", "models/tiny/llama2/config.json"},
                                           Case{"llama3", "models/tiny/llama3/config.json"},
                                           Case{"qwen3", "models/tiny/qwen2/config.json"}),
                         [](const auto& info) { return info.param.tokenizer; });

TEST(GgufTokenizerRead, AFileWithoutTokenizerGivesNone) {
  gguf::Writer w;
  ScratchDir dir("gguf_tok_none");
  w.write(dir / "t.gguf");
  const auto f = gguf::File::open(dir / "t.gguf");
  EXPECT_FALSE(load_gguf_tokenizer(*f));
  EXPECT_EQ(gguf_tokenizer_source_sha256(*f), "");
}

}  // namespace
}  // namespace calq::test
