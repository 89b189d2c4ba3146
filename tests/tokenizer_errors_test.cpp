// Malformed tokenizer.json files give a FormatError (or UnsupportedError for well-formed files
// that ask for something calq does not implement) naming the file and the field; never a crash.
// Also the CLI: `calq tokenize --batch` reproduces golden.json fields, and bad input exits non-zero
// with a one-line error.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"
#include "util/error.h"

namespace calq::test {
namespace {

const char* kGood = R"({"added_tokens":[{"id":0,"content":"<s>","special":true,"normalized":false}],
  "normalizer":{"type":"NFC"},
  "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},
  "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
                    "special_tokens":{"<s>":{"id":"<s>","ids":[0],"tokens":["<s>"]}}},
  "decoder":{"type":"ByteLevel"},
  "model":{"type":"BPE","vocab":{"<s>":0,"a":1,"b":2,"ab":3},"merges":["a b"]}})";

// Replaces the first occurrence of `from` in the good file by `to`.
std::string variant(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

template <class E>
void expect_error(const std::string& json, const std::string& needle) {
  try {
    Tokenizer::from_json_text(json, "bad.json");
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.json", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(TokenizerErrors, GoodBaseLoads) {
  auto t = Tokenizer::from_json_text(kGood, "good.json");
  EXPECT_EQ(t->encode("ab"), (std::vector<int32_t>{0, 3}));
  EXPECT_EQ(t->decode({0, 3}), "<s>ab");
  EXPECT_EQ(t->bos_id(), 0);
}

TEST(TokenizerErrors, MalformedFilesNameFileAndField) {
  expect_error<FormatError>("{\"model\": ", "invalid JSON");
  expect_error<FormatError>("[1, 2]", "expected an object");
  expect_error<FormatError>("{}", "model: missing");
  expect_error<FormatError>(variant(R"("type":"BPE","vocab":{"<s>":0,"a":1,"b":2,"ab":3},"merges":["a b"])", R"("vocab":{})"),
                            "model.type: missing");
  EXPECT_NO_THROW(Tokenizer::from_json_text(variant(R"("type":"BPE",)", ""), "untyped.json"));  // merges imply BPE
  expect_error<UnsupportedError>(variant(R"("type":"BPE")", R"("type":"WordPiece")"), "model.type");
  expect_error<UnsupportedError>(variant(R"({"type":"NFC"})", R"({"type":"BertNormalizer"})"), "normalizer.type");
  expect_error<UnsupportedError>(variant(R"("type":"ByteLevel","add_prefix_space")", R"("type":"Foo","add_prefix_space")"),
                                 "pre_tokenizer.type");
  expect_error<UnsupportedError>(variant(R"({"type":"ByteLevel"})", R"({"type":"CTC"})"), "decoder.type");
  expect_error<FormatError>(variant(R"(["a b"])", R"(["a c"])"), "model.merges[0]: token 'c' is not in the vocabulary");
  expect_error<FormatError>(variant(R"(["a b"])", R"(["b a"])"), "merged token 'ba'");
  expect_error<FormatError>(variant(R"(["a b"])", R"(["a  b"])"), "model.merges[0]");
  expect_error<FormatError>(variant(R"(["a b"])", R"([["a"]])"), "model.merges[0]");
  expect_error<FormatError>(variant(R"("ab":3)", R"("ab":-3)"), "model.vocab");
  expect_error<FormatError>(variant(R"("ab":3)", R"("ab":4000000000)"), "out of range");
  expect_error<FormatError>(variant(R"("ab":3)", R"("ab":"3")"), "expected an integer");
  expect_error<FormatError>(variant(R"("ids":[0])", R"("ids":[99])"), "post_processor.special_tokens.<s>.ids[0]");
  expect_error<FormatError>(variant(R"({"id":"<s>","type_id":0}},{)", R"({"id":"<x>","type_id":0}},{)"),
                            "special token '<x>'");
  expect_error<FormatError>(variant(R"({"type":"NFC"})", R"({"type":"Replace","pattern":{"Regex":"(a"},"content":""})"),
                            "invalid regex");
  expect_error<FormatError>(variant(R"({"type":"NFC"})", R"({"type":"Replace","pattern":{},"content":""})"),
                            "normalizer.pattern");
  expect_error<FormatError>(variant(R"("content":"<s>")", R"("content":5)"), "added_tokens[0].content");
  expect_error<FormatError>(variant(R"("model":{"type":"BPE",)", R"("model":{"type":"BPE","unk_token":"<zz>",)"),
                            "model.unk_token");
  expect_error<UnsupportedError>(variant(R"("model":{"type":"BPE",)", R"("model":{"type":"BPE","dropout":0.1,)"),
                                 "dropout");
  expect_error<FormatError>(variant(R"("decoder":{"type":"ByteLevel"})", R"("decoder":{"type":"Strip","content":"ab"})"),
                            "decoder.content");
  expect_error<FormatError>(variant(R"("normalizer":{"type":"NFC"})", R"("normalizer":{"type":"Sequence","normalizers":3})"),
                            "normalizer.normalizers");
}

TEST(TokenizerErrors, UnboundedGrowthIsAnErrorNotAnOutOfMemory) {
  // 40 chained Replace("a" -> "aa") would turn "a" into 2^40 bytes.
  std::string doubling = R"({"type":"Sequence","normalizers":[)";
  for (int i = 0; i < 40; ++i) doubling += std::string(i ? "," : "") + R"({"type":"Replace","pattern":{"String":"a"},"content":"aa"})";
  doubling += "]}";
  auto t = Tokenizer::from_json_text(variant(R"({"type":"NFC"})", doubling), "grow.json");
  EXPECT_EQ(t->encode("b", {false, false}), std::vector<int32_t>{2});
  EXPECT_THROW(t->encode("a"), FormatError);
  // the same through nested pre-tokenizer Sequences of ByteLevel (x2 each) and in the decoder
  std::string nested = R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})";
  for (int i = 0; i < 40; ++i) nested = R"({"type":"Sequence","pretokenizers":[)" + nested + "," + nested.substr(0, 0) +
                                         R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})";
  auto t2 = Tokenizer::from_json_text(variant(R"({"type":"ByteLevel","add_prefix_space":false})", nested), "grow2.json");
  EXPECT_THROW(t2->encode("\xC3\xA9 abc"), FormatError);
  std::string dec = R"({"type":"Sequence","decoders":[)";
  for (int i = 0; i < 40; ++i) dec += std::string(i ? "," : "") + R"({"type":"Replace","pattern":{"String":"a"},"content":"aa"})";
  dec += "]}";
  auto t3 = Tokenizer::from_json_text(variant(R"({"type":"ByteLevel"})", dec), "grow3.json");
  EXPECT_THROW(t3->decode({1}), FormatError);
  EXPECT_EQ(t3->decode({2}), "b");
}

// Ids are JSON integers in range: never a fraction, a float-typed whole number or a value that
// would wrap (util/json.h json_int_problem, shared with every other JSON reader).
TEST(TokenizerErrors, IdsAreJsonIntegersInRange) {
  for (const char* lit : {"4294967297", "18446744073709551616", "-1", "1.0", "1.5", "1e0"}) {
    SCOPED_TRACE(lit);
    expect_error<FormatError>(variant(R"("a":1)", std::string("\"a\":") + lit), "model.vocab.'a': value ");
    expect_error<FormatError>(variant(R"("id":0,"content")", std::string("\"id\":") + lit + ",\"content\""),
                              "added_tokens[0].id: value ");
    expect_error<FormatError>(variant(R"("ids":[0])", std::string("\"ids\":[") + lit + "]"), "ids[0]: value ");
  }
  expect_error<FormatError>(variant(R"("a":1)", R"("a":4294967297)"), "value = 4294967297 is out of range [0, ");
  expect_error<FormatError>(variant(R"("a":1)", R"("a":1.0)"), "value must be an integer (no fraction or exponent), got 1.0");
}

TEST(TokenizerErrors, MissingFilesAndFolders) {
  EXPECT_THROW(Tokenizer::from_path("/nonexistent/tokenizer.json"), IoError);
  try {
    Tokenizer::from_path(data("models"));  // a folder without tokenizer.json
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json"), std::string::npos);
  }
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "calq_tok_" + std::to_string(::getpid()) + "_" + name;
}

TEST(TokenizerCli, BatchReproducesGoldenFields) {
  // A few golden texts of each family through the CLI, every field compared.
  for (const std::string name : {"llama2", "gpt2"}) {
    const auto golden = load_golden(name);
    const size_t picks[] = {0, 7, 60, 61, 75, 150, 275};
    Json in = Json::array();
    for (size_t i : picks) in.push_back(golden[i].text);
    const std::string in_path = temp_path(name + "_in.json"), out_path = temp_path(name + "_out.json");
    write_file_atomic(in_path, in.dump());
    std::string output;
    const int rc = run_command(cli() + " tokenize " + data("tokenizers/" + name) + " --batch " + in_path + " --out " + out_path,
                               &output);
    ASSERT_EQ(rc, 0) << output;
    const Json out = load_json_file(out_path);
    ASSERT_EQ(out.size(), std::size(picks));
    for (size_t k = 0; k < std::size(picks); ++k) {
      const auto& g = golden[picks[k]];
      const Json& e = out[k];
      EXPECT_EQ(e.size(), 5u);
      EXPECT_EQ(e.at("text").get<std::string>(), g.text);
      EXPECT_EQ(e.at("ids_with_special").get<std::vector<int32_t>>(), g.ids_with_special) << name << " " << g.source;
      EXPECT_EQ(e.at("ids_no_special").get<std::vector<int32_t>>(), g.ids_no_special) << name << " " << g.source;
      EXPECT_EQ(e.at("decoded").get<std::string>(), g.decoded) << name << " " << g.source;
      EXPECT_EQ(e.at("decoded_skip_special").get<std::string>(), g.decoded_skip_special) << name << " " << g.source;
    }
    std::remove(in_path.c_str());
    std::remove(out_path.c_str());
  }
}

TEST(TokenizerCli, TextModeAndErrors) {
  std::string out;
  ASSERT_EQ(run_command(cli() + " tokenize " + data("tokenizers/llama2") + " --text 'Hello world'", &out), 0) << out;
  EXPECT_NE(out.find("[1, 15043, 3186]"), std::string::npos) << out;
  EXPECT_NE(out.find("\"▁Hello\""), std::string::npos) << out;
  ASSERT_EQ(run_command(cli() + " tokenize " + data("tokenizers/llama2") + " --no-special --split-special --text '<s>'", &out), 0);
  EXPECT_NE(out.find("[529, 29879, 29958]"), std::string::npos) << out;

  const std::string bad = temp_path("bad_tokenizer.json");
  write_file_atomic(bad, R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["a q"]}})");
  EXPECT_NE(run_command(cli() + " tokenize " + bad + " --text x", &out), 0);
  EXPECT_NE(out.find("calq: error: " + bad + ": model.merges[0]"), std::string::npos) << out;
  std::remove(bad.c_str());
}

}  // namespace
}  // namespace calq::test
