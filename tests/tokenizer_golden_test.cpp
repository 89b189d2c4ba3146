// Exact agreement with Hugging Face `tokenizers` 0.23.2 on every entry of
// ../shared/tokenizers/<name>/golden.json (276 texts per tokenizer): ids with and without the
// post-processor, ids with special tokens not matched, decode with and without skipping special
// tokens, and decode(encode(x)) == x wherever the golden says the tokenizer is lossless.
#include <gtest/gtest.h>

#include <sstream>

#include "tokenizer_test_util.h"

namespace calq::test {
namespace {

std::string show(const std::vector<int32_t>& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? ", " : "") << ids[i];
  os << "]";
  return os.str();
}

class TokenizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGolden, EveryFieldOfEveryEntry) {
  const std::string name = GetParam();
  const Tokenizer& tok = shared_tokenizer(name);
  const auto golden = load_golden(name);
  ASSERT_EQ(golden.size(), 276u);
  size_t ok_with = 0, ok_no = 0, ok_split = 0, n_split = 0, ok_dec = 0, ok_dec_skip = 0, n_lossless = 0, ok_round = 0;
  int reported = 0;
  auto report = [&](const GoldenEntry& g, const std::string& field, const std::string& want, const std::string& got) {
    if (reported++ < 12)
      ADD_FAILURE() << name << " " << g.source << " " << field << "\n  text: " << ::testing::PrintToString(g.text)
                    << "\n  want: " << want << "\n  got:  " << got;
  };
  for (const auto& g : golden) {
    EncodeOptions with, without;
    without.add_special_tokens = false;
    const auto ids_with = tok.encode(g.text, with);
    const auto ids_no = tok.encode(g.text, without);
    if (ids_with == g.ids_with_special) ++ok_with;
    else report(g, "ids_with_special", show(g.ids_with_special), show(ids_with));
    if (ids_no == g.ids_no_special) ++ok_no;
    else report(g, "ids_no_special", show(g.ids_no_special), show(ids_no));
    if (g.ids_split_special) {
      ++n_split;
      EncodeOptions split = without;
      split.split_special_tokens = true;
      const auto ids_split = tok.encode(g.text, split);
      if (ids_split == *g.ids_split_special) ++ok_split;
      else report(g, "ids_split_special", show(*g.ids_split_special), show(ids_split));
    }
    const std::string dec = tok.decode(g.ids_with_special, false);
    const std::string dec_skip = tok.decode(g.ids_with_special, true);
    if (dec == g.decoded) ++ok_dec;
    else report(g, "decoded", ::testing::PrintToString(g.decoded), ::testing::PrintToString(dec));
    if (dec_skip == g.decoded_skip_special) ++ok_dec_skip;
    else report(g, "decoded_skip_special", ::testing::PrintToString(g.decoded_skip_special), ::testing::PrintToString(dec_skip));
    if (g.decoded_skip_special == g.text) {  // the golden says this text round-trips
      ++n_lossless;
      if (tok.decode(ids_with, true) == g.text) ++ok_round;
      else report(g, "round trip", ::testing::PrintToString(g.text), ::testing::PrintToString(tok.decode(ids_with, true)));
    }
  }
  const size_t n = golden.size();
  std::printf("[ golden   ] %-8s ids_with_special %zu/%zu, ids_no_special %zu/%zu, ids_split_special %zu/%zu, "
              "decoded %zu/%zu, decoded_skip_special %zu/%zu, round trip %zu/%zu\n",
              name.c_str(), ok_with, n, ok_no, n, ok_split, n_split, ok_dec, n, ok_dec_skip, n, ok_round, n_lossless);
  EXPECT_EQ(ok_with, n);
  EXPECT_EQ(ok_no, n);
  EXPECT_EQ(ok_split, n_split);
  EXPECT_GT(n_split, 0u);
  EXPECT_EQ(ok_dec, n);
  EXPECT_EQ(ok_dec_skip, n);
  EXPECT_EQ(ok_round, n_lossless);
  EXPECT_GT(n_lossless, 250u);
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, TokenizerGolden, ::testing::ValuesIn(golden_tokenizer_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace calq::test
