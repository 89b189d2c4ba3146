// Known answers for the tokenizer's building blocks, mostly the examples of Hugging Face
// `tokenizers`' own unit tests: split behaviours, pre-tokenizers, normalizers, decoders, the BPE
// merge order and options, and added-token matching rules.
#include <gtest/gtest.h>

#include <thread>

#include "io/mapped_file.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"
#include "util/sha256.h"

namespace calq::test {
namespace {

using tok::JPath;
using Strings = std::vector<std::string>;

const JPath kAt{"test.json", ""};

Strings pre_tokenize(const std::string& json, const std::string& text, bool at_origin = true) {
  auto p = tok::make_pre_tokenizer(Json::parse(json), kAt);
  std::vector<tok::PreToken> pieces{{text, at_origin}};
  p->pre_tokenize(pieces, tok::byte_budget(text.size()));
  Strings out;
  for (auto& x : pieces) out.push_back(x.text);
  return out;
}

std::string normalize(const std::string& json, std::string text) {
  tok::make_normalizer(Json::parse(json), kAt)->normalize(text, tok::byte_budget(text.size()));
  return text;
}

Strings decode_chain(const std::string& json, Strings tokens) {
  tok::make_decoder(Json::parse(json), kAt)->decode_chain(tokens, 1 << 20);
  return tokens;
}

TEST(TokenizerSplit, FiveBehaviours) {
  auto split = [](const char* behavior) {
    return pre_tokenize(std::string(R"({"type":"Split","pattern":{"String":"-"},"behavior":")") + behavior + "\"}",
                        "The-final--countdown");
  };
  EXPECT_EQ(split("Removed"), (Strings{"The", "final", "countdown"}));
  EXPECT_EQ(split("Isolated"), (Strings{"The", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious"), (Strings{"The-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithNext"), (Strings{"The", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("Contiguous"), (Strings{"The", "-", "final", "--", "countdown"}));
  // invert: the pattern marks what to keep
  EXPECT_EQ(pre_tokenize(R"({"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Removed","invert":true})",
                         "Hello, world!"),
            (Strings{"Hello", "world"}));
  // a String pattern is literal, not a regex
  EXPECT_EQ(pre_tokenize(R"({"type":"Split","pattern":{"String":"."},"behavior":"Removed"})", "a.b.c"),
            (Strings{"a", "b", "c"}));
}

TEST(TokenizerPreTokenizers, ByteLevelMetaspaceDigitsWhitespace) {
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":false})", "Hello my friend, how is your day going?"),
            (Strings{"Hello", "\xC4\xA0my", "\xC4\xA0" "friend", ",", "\xC4\xA0how", "\xC4\xA0is", "\xC4\xA0your",
                     "\xC4\xA0" "day", "\xC4\xA0going", "?"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":true})", "Hello"), (Strings{"\xC4\xA0Hello"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})", "a b\n"),
            (Strings{"a\xC4\xA0" "b\xC4\x8A"}));
  // GPT-2's \s is Unicode White_Space: U+0085 yes, U+FEFF no.
  EXPECT_EQ(pre_tokenize(R"({"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Removed"})", "a\xC2\x85" "b\xEF\xBB\xBF" "c"),
            (Strings{"a", "b\xEF\xBB\xBF" "c"}));

  const std::string meta = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})";
  EXPECT_EQ(pre_tokenize(meta, "Hey friend!"), (Strings{"▁Hey", "▁friend!"}));
  EXPECT_EQ(pre_tokenize(meta, "Hey   friend!"), (Strings{"▁Hey", "▁", "▁", "▁friend!"}));
  const std::string first = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false})";
  EXPECT_EQ(pre_tokenize(first, "Hey friend", true), (Strings{"▁Hey▁friend"}));
  EXPECT_EQ(pre_tokenize(first, "Hey friend", false), (Strings{"Hey▁friend"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Metaspace","add_prefix_space":false})", "a b"), (Strings{"a", "▁b"}));

  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":false})", "Hey 123 friend!"),
            (Strings{"Hey ", "123", " friend!"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":true})", "Hey 123 friend!"),
            (Strings{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Whitespace"})", "How are you doing?"),
            (Strings{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Whitespace"})", "\n"), Strings{});
  EXPECT_EQ(pre_tokenize(R"({"type":"WhitespaceSplit"})", "Hey, man, Good?"), (Strings{"Hey,", "man,", "Good?"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Punctuation"})", "Hey friend!     How are you?!?"),
            (Strings{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]})",
                         "a1 22"),
            (Strings{"a", "1", "2", "2"}));
}

TEST(TokenizerNormalizers, KnownAnswers) {
  EXPECT_EQ(normalize(R"({"type":"NFKC"})", "\xEF\xBD\x88\xEF\xBD\x89 \xE2\x91\xA0"), "hi 1");  // fullwidth, circled 1
  EXPECT_EQ(normalize(R"({"type":"NFD"})", "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(normalize(R"({"type":"NFKD"})", "\xEF\xAC\x81"), "fi");  // U+FB01 ligature
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "HeLLo \xC3\x89 \xC4\xB0"), "hello \xC3\xA9 i\xCC\x87");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":true})", " \t hi there \xE3\x80\x80"), "hi there");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":false,"strip_right":true})", "  hi  "), "  hi");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "})", "a \t\n b  c"), "a b c");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":"a.b"},"content":"X"})", "a.b axb a.b"), "X axb X");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"▁"})", ""), "");
  EXPECT_EQ(normalize(R"({"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]})",
                      "a b"),
            "▁a▁b");
  EXPECT_EQ(normalize(R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"}]})", "caf\xC3\xA9"), "cafe");
}

TEST(TokenizerDecoders, KnownAnswers) {
  EXPECT_EQ(decode_chain(R"({"type":"ByteFallback"})", {"<0x61>", "<0xE7>", "<0x8C>", "<0xAB>", "b"}),
            (Strings{"a\xE7\x8C\xAB", "b"}));
  EXPECT_EQ(decode_chain(R"({"type":"ByteFallback"})", {"<0xE7>", "<0x8C>", "x", "<0x6>"}),
            (Strings{"\xEF\xBF\xBD", "\xEF\xBF\xBD", "x", "<0x6>"}));
  EXPECT_EQ(decode_chain(R"({"type":"Strip","content":" ","start":1,"stop":0})", {"  a ", " b"}), (Strings{" a ", "b"}));
  EXPECT_EQ(decode_chain(R"({"type":"Strip","content":"x","start":0,"stop":2})", {"axxx", "x"}), (Strings{"ax", ""}));
  EXPECT_EQ(decode_chain(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always"})", {"▁Hey", "▁friend!"}),
            (Strings{"Hey", " friend!"}));
  EXPECT_EQ(decode_chain(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never"})", {"▁Hey", "▁friend!"}),
            (Strings{" Hey", " friend!"}));
  EXPECT_EQ(decode_chain(R"({"type":"Fuse"})", {"a", "b", "c"}), (Strings{"abc"}));
  // byte-level: Ġ is a space; a token with characters outside the byte alphabet is kept as is;
  // an incomplete UTF-8 sequence becomes U+FFFD
  EXPECT_EQ(decode_chain(R"({"type":"ByteLevel"})", {"Hello", "\xC4\xA0world", " x", "\xC3\xA6"}),
            (Strings{"Hello world x\xEF\xBF\xBD"}));
  EXPECT_EQ(decode_chain(R"({"type":"BPEDecoder","suffix":"</w>"})", {"hel", "lo</w>", "there</w>"}),
            (Strings{"hel", "lo ", "there"}));
}

TEST(TokenizerUnicode, LossyUtf8AsRust) {
  EXPECT_EQ(tok::utf8_lossy("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(tok::utf8_lossy("\xE2\x82"), "\xEF\xBF\xBD");             // truncated: one replacement
  EXPECT_EQ(tok::utf8_lossy("\xE2\x82x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(tok::utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(tok::utf8_lossy("\xF0\x9F\x99\x82"), "\xF0\x9F\x99\x82");
  EXPECT_TRUE(tok::is_whitespace(0x85));
  EXPECT_FALSE(tok::is_whitespace(0xFEFF));
  EXPECT_TRUE(tok::is_numeric(0x0663));  // Arabic-Indic three
  EXPECT_EQ(tok::char_to_byte(0x120), ' ');
  EXPECT_EQ(tok::byte_to_char_utf8('\n'), "\xC4\x8A");
}

// A tokenizer.json with a small BPE model, for merge-order and option tests.
std::unique_ptr<Tokenizer> small_bpe(const std::string& vocab, const std::string& merges, const std::string& extra_model = "",
                                     const std::string& rest = "") {
  const std::string json = R"({"model":{"type":"BPE","vocab":)" + vocab + R"(,"merges":)" + merges + extra_model + "}" +
                           rest + "}";
  return Tokenizer::from_json_text(json, "small.json");
}

std::vector<int32_t> ids_of(const Tokenizer& t, const std::string& text) {
  EncodeOptions o;
  o.add_special_tokens = false;
  return t.encode(text, o);
}

TEST(TokenizerBpe, MergeOrderAndOptions) {
  const std::string vocab = R"({"a":0,"b":1,"c":2,"ab":3,"bc":4,"abc":5,"aa":6})";
  // lowest rank first: "b c" (rank 0) then "a bc"
  auto t1 = small_bpe(vocab, R"(["b c","a b","a bc"])");
  EXPECT_EQ(ids_of(*t1, "abc"), (std::vector<int32_t>{5}));
  auto t2 = small_bpe(vocab, R"(["a b","b c"])");
  EXPECT_EQ(ids_of(*t2, "abc"), (std::vector<int32_t>{3, 2}));
  // equal ranks: leftmost first
  auto t3 = small_bpe(vocab, R"([["a","a"]])");
  EXPECT_EQ(ids_of(*t3, "aaa"), (std::vector<int32_t>{6, 0}));
  EXPECT_EQ(ids_of(*t3, "aaaa"), (std::vector<int32_t>{6, 6}));
  // ignore_merges: a pre-token that is itself in the vocabulary is emitted whole
  auto t4 = small_bpe(vocab, R"(["a b"])", R"(,"ignore_merges":true)");
  EXPECT_EQ(ids_of(*t4, "abc"), (std::vector<int32_t>{5}));
  auto t5 = small_bpe(vocab, R"(["a b"])");
  EXPECT_EQ(ids_of(*t5, "abc"), (std::vector<int32_t>{3, 2}));
  // unknown characters: fused into one <unk>, or one each
  const std::string v2 = R"({"<unk>":0,"a":1})";
  EXPECT_EQ(ids_of(*small_bpe(v2, "[]", R"(,"unk_token":"<unk>","fuse_unk":true)"), "axyza"),
            (std::vector<int32_t>{1, 0, 1}));
  EXPECT_EQ(ids_of(*small_bpe(v2, "[]", R"(,"unk_token":"<unk>","fuse_unk":false)"), "axya"),
            (std::vector<int32_t>{1, 0, 0, 1}));
  EXPECT_EQ(ids_of(*small_bpe(v2, "[]"), "axa"), (std::vector<int32_t>{1, 1}));  // no unk: dropped
  // byte fallback
  std::string v3 = R"({"<unk>":0,"a":1)";
  for (int b = 0; b < 256; ++b) {
    char name[16];
    std::snprintf(name, sizeof name, ",\"<0x%02X>\":%d", b, b + 2);
    v3 += name;
  }
  v3 += "}";
  EXPECT_EQ(ids_of(*small_bpe(v3, "[]", R"(,"unk_token":"<unk>","byte_fallback":true)"), "a\xC3\xA9"),
            (std::vector<int32_t>{1, 0xC3 + 2, 0xA9 + 2}));
  // continuing_subword_prefix and end_of_word_suffix
  auto t6 = small_bpe(R"({"a":0,"##b":1,"##c":2,"##bc":3,"a##bc":4})", R"(["##b ##c"])",
                      R"(,"continuing_subword_prefix":"##")");
  EXPECT_EQ(ids_of(*t6, "abc"), (std::vector<int32_t>{0, 3}));
  auto t7 = small_bpe(R"({"a":0,"b":1,"b</w>":2,"ab</w>":3})", R"(["a b</w>"])", R"(,"end_of_word_suffix":"</w>")");
  EXPECT_EQ(ids_of(*t7, "ab"), (std::vector<int32_t>{3}));
}

TEST(TokenizerBpe, LongWordSegmentationNeverChangesIds) {
  // Llama-2 has no pre-tokenizer: a whole file is one word. Merging it in independent parts cut
  // at hard boundaries must give exactly the ids of one merge over the whole word.
  const Json j = load_json_file(data("tokenizers/llama2/tokenizer.json"));
  tok::BpeModel model(j.at("model"), {"llama2", "model"});
  std::string text = read_file(data("data/wikitext-2-raw/wiki.valid.raw")).substr(0, 300000);
  std::string normalized = "\xE2\x96\x81";
  for (char c : text) normalized += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
  std::vector<int32_t> segmented, whole;
  model.tokenize(normalized, segmented);
  model.set_segmentation(false);
  model.tokenize(normalized, whole);
  EXPECT_GT(segmented.size(), 50000u);
  EXPECT_EQ(segmented, whole);
}

// Added tokens: lstrip/rstrip/single_word/normalized, special vs not.
TEST(TokenizerAddedTokens, MatchingRules) {
  const std::string vocab = R"({"a":0,"b":1," ":2,"<m>":3,"x":4,"A":5,"<":6,"m":7,">":8})";
  auto make = [&](const std::string& flags, const std::string& normalizer = "null") {
    return small_bpe(vocab, "[]", "",
                     R"(,"normalizer":)" + normalizer + R"(,"added_tokens":[{"id":3,"content":"<m>","special":true,)" + flags + "}]");
  };
  auto plain = make(R"("normalized":false)");
  EXPECT_EQ(ids_of(*plain, "a <m> b"), (std::vector<int32_t>{0, 2, 3, 2, 1}));
  auto lstrip = make(R"("normalized":false,"lstrip":true)");
  EXPECT_EQ(ids_of(*lstrip, "a  <m> b"), (std::vector<int32_t>{0, 3, 2, 1}));
  auto rstrip = make(R"("normalized":false,"rstrip":true)");
  EXPECT_EQ(ids_of(*rstrip, "a <m>  b"), (std::vector<int32_t>{0, 2, 3, 1}));
  // split_special_tokens: the special token's text goes through the model
  EncodeOptions split;
  split.add_special_tokens = false;
  split.split_special_tokens = true;
  EXPECT_EQ(plain->encode("a<m>", split), (std::vector<int32_t>{0, 6, 7, 8}));
  auto sw = small_bpe(R"({"a":0,"b":1," ":2,"ab":3})", "[]", "",
                      R"(,"added_tokens":[{"id":3,"content":"ab","special":false,"normalized":false,"single_word":true}])");
  EXPECT_EQ(ids_of(*sw, "ab aab"), (std::vector<int32_t>{3, 2, 0, 0, 1}));
  // a normalized token matches in the normalized text
  auto norm = small_bpe(R"({"a":0,"x":1,"<m>":2})", "[]", "",
                        R"(,"normalizer":{"type":"Lowercase"},"added_tokens":[{"id":2,"content":"<m>","special":false,"normalized":true}])");
  EXPECT_EQ(ids_of(*norm, "A<M>x"), (std::vector<int32_t>{0, 2, 1}));
  // decode skips special tokens by content
  EXPECT_EQ(plain->decode({0, 3, 1}, true), "a b");
  EXPECT_TRUE(plain->is_special(3));
  EXPECT_FALSE(plain->is_special(0));
}

TEST(TokenizerAddedTokens, IdsAssignedAsHuggingFace) {
  // Contents not in the model vocabulary get ids after it, in file order, whatever the file says.
  auto t = small_bpe(R"({"a":0,"b":1})", "[]", "",
                     R"(,"added_tokens":[{"id":7,"content":"<x>","special":true,"normalized":false},)"
                     R"({"id":9,"content":"<y>","special":false,"normalized":false},)"
                     R"({"id":0,"content":"a","special":true,"normalized":false},)"
                     R"({"id":7,"content":"<x>","special":true,"normalized":false}])");  // duplicate: ignored
  EXPECT_EQ(t->token_to_id("<x>"), 2);
  EXPECT_EQ(t->token_to_id("<y>"), 3);
  EXPECT_EQ(t->token_to_id("a"), 0);
  EXPECT_TRUE(t->is_special(0));
  EXPECT_EQ(t->vocab_size(), 4);
  EXPECT_EQ(t->id_to_token(3), "<y>");
  EXPECT_EQ(t->id_to_token(4), "");
  EXPECT_EQ(t->decode({0, 2, 3, 1, 99, -1}, false), "a <x> <y> b");  // no decoder: joined by spaces
  EXPECT_EQ(t->decode({0, 2, 3, 1}, true), "<y> b");
}

TEST(TokenizerEncode, InvalidUtf8IsRepairedAndEmptyIsEmpty) {
  const Tokenizer& gpt2 = shared_tokenizer("gpt2");
  EXPECT_EQ(gpt2.encode("a\xFF" "b"), gpt2.encode("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(gpt2.encode(""), std::vector<int32_t>{});
  const Tokenizer& llama2 = shared_tokenizer("llama2");
  EXPECT_EQ(llama2.encode(""), std::vector<int32_t>{1});
  EXPECT_EQ(llama2.encode(" ", {false, false}), std::vector<int32_t>{259});
  EXPECT_EQ(llama2.decode({1}), "<s>");
  EXPECT_EQ(llama2.decode({}), "");
}

TEST(TokenizerEncode, ConcurrentCallsAgree) {
  // encode() is const and shares the piece cache between threads.
  const Tokenizer& t = shared_tokenizer("gpt2");
  const std::string text = read_file(data("data/wikitext-2-raw/wiki.valid.raw")).substr(0, 60000);
  const auto want = t.encode(text);
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < got.size(); ++k) threads.emplace_back([&, k] { got[k] = t.encode(text); });
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

TEST(TokenizerInfo, BosEosVocabAndHash) {
  struct Want {
    const char* name;
    int32_t bos, eos, vocab;
  };
  const Want want[] = {{"llama2", 1, 2, 32000},          {"mistral", 1, 2, 32000},
                       {"llama3", 128000, 128001, 128256}, {"qwen3", -1, 151645, 151669},
                       {"gpt2", -1, 50256, 50257}};
  for (const auto& w : want) {
    const Tokenizer& t = shared_tokenizer(w.name);
    EXPECT_EQ(t.bos_id(), w.bos) << w.name;
    EXPECT_EQ(t.eos_id(), w.eos) << w.name;
    EXPECT_EQ(t.vocab_size(), w.vocab) << w.name;
    EXPECT_EQ(t.sha256(), sha256_file(data(std::string("tokenizers/") + w.name + "/tokenizer.json"))) << w.name;
    EXPECT_NE(t.summary().find("BPE"), std::string::npos);
  }
  EXPECT_EQ(shared_tokenizer("qwen3").token_to_id("<think>"), 151667);
  EXPECT_FALSE(shared_tokenizer("qwen3").is_special(151667));
  EXPECT_TRUE(shared_tokenizer("qwen3").is_special(151643));
  EXPECT_EQ(shared_tokenizer("llama3").id_to_token(128000), "<|begin_of_text|>");
}

}  // namespace
}  // namespace calq::test
