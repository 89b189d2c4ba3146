// stories260K's tokenizer.json (SentencePiece-style BPE, 512 tokens) against the model's goldens:
// the ids of golden/input_ids.json, and the whole-file encodings behind golden/perplexity.json
// (token count and SHA-256 of the first 2048 ids as little-endian int32) for the three
// perplexity texts built as golden/README.md prescribes. The evaluation code relies on these.
#include <gtest/gtest.h>

#include "io/mapped_file.h"
#include "tokenizer_test_util.h"
#include "util/sha256.h"

namespace calq::test {
namespace {

TEST(TokenizerStories, InputIdsGolden) {
  const Tokenizer& tok = shared_tokenizer("stories260K");
  const Json j = load_json_file(data("models/stories260K/golden/input_ids.json"));
  ASSERT_TRUE(j.at("add_bos").get<bool>());
  const auto& texts = j.at("texts");
  ASSERT_EQ(texts.size(), 3u);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const auto want = j.at("input_ids")[i].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text), want) << "text " << i;
    EXPECT_EQ(tok.decode(want, true), j.at("decoded")[i].get<std::string>()) << "text " << i;
    EXPECT_EQ(tok.decode(want, true), text) << "text " << i;
  }
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.vocab_size(), 512);
}

// TinyStories-656K's tokenizer.json (BPE, 2048 pieces, no pre-tokenizer, out-of-alphabet characters
// fused into one <unk>): golden/input_ids.json; its `decoded` drops the special ids 0, 1, 2 first
// (golden/README.md: tokenizers 0.23 decodes added tokens in their normalized form).
TEST(TokenizerStories, TinyStories656KInputIdsGolden) {
  const Tokenizer& tok = shared_tokenizer("TinyStories-656K");
  const Json j = load_json_file(data("models/TinyStories-656K/golden/input_ids.json"));
  ASSERT_TRUE(j.at("add_bos").get<bool>());
  ASSERT_EQ(j.at("texts").size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto want = j.at("input_ids")[i].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(j.at("texts")[i].get<std::string>()), want) << "text " << i;
    std::vector<int32_t> plain;
    for (int32_t id : want)
      if (id > 2) plain.push_back(id);
    EXPECT_EQ(tok.decode(plain, true), j.at("decoded")[i].get<std::string>()) << "text " << i;
  }
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.vocab_size(), 2048);
}

// "\n\n".join(rows): rows are the lines with their "\n", whitespace-only lines made empty
// (Hugging Face wikitext-2-raw-v1 test["text"]).
std::string gptq_wikitext(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  bool first = true;
  while (pos < raw.size()) {
    size_t nl = raw.find('\n', pos);
    const size_t end = nl == std::string::npos ? raw.size() : nl + 1;
    std::string row = raw.substr(pos, end - pos);
    pos = end;
    if (row.find_first_not_of(" \t\r\n\f\v") == std::string::npos) row.clear();
    if (!first) out += "\n\n";
    out += row;
    first = false;
  }
  return out;
}

std::string ids_sha256(const std::vector<int32_t>& ids, size_t n) {
  std::string bytes;
  for (size_t i = 0; i < n && i < ids.size(); ++i)
    for (int b = 0; b < 4; ++b) bytes += char((uint32_t(ids[i]) >> (8 * b)) & 0xFF);
  return sha256_hex(bytes);
}

TEST(TokenizerStories, WholeFilePerplexityEncodings) {
  const Tokenizer& tok = shared_tokenizer("stories260K");
  const Json golden = load_json_file(data("models/stories260K/golden/perplexity.json")).at("results");
  const std::string wiki = read_file(data("data/wikitext-2-raw/wiki.test.raw"));
  const std::pair<std::string, std::string> texts[] = {
      {"tinystories_val", read_file(data("data/tinystories/tinystories_val.txt"))},
      {"wikitext2_test_raw", wiki},
      {"wikitext2_test_gptq", gptq_wikitext(wiki)},
  };
  for (const auto& [name, text] : texts) {
    const Json& g = golden.at(name);
    EncodeOptions opt;
    opt.add_special_tokens = false;
    std::vector<int32_t> ids{tok.bos_id()};
    const auto body = tok.encode(text, opt);
    ids.insert(ids.end(), body.begin(), body.end());
    EXPECT_EQ(int64_t(ids.size()), g.at("total_tokens_with_bos").get<int64_t>()) << name;
    EXPECT_EQ(ids_sha256(ids, 2048), g.at("first_2048_ids_sha256").get<std::string>()) << name;
    const auto first16 = g.at("first_16_ids").get<std::vector<int32_t>>();
    EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 16), first16) << name;
    // The post-processor path gives the same ids (its template is "<s> $A").
    EXPECT_EQ(tok.encode(text), ids) << name;
  }
}

}  // namespace
}  // namespace calq::test
