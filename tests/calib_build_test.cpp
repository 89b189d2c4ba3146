// Calibration-set builders with a byte-level stand-in tokenizer (id = byte + 3, BOS 1, EOS 2), so
// every sample can be checked against the source text exactly: reproducibility (same seed, same
// sha256), GPTQ windows, packing, padding, punctuation, random tokens, tasks, FLORES, mixtures and
// the errors for empty/too small sources and missing languages.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "calib/builders.h"
#include "calib/sources.h"
#include "test_util.h"
#include "util/error.h"

namespace calq {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& o) const override {
    std::vector<int32_t> r;
    if (o.add_special_tokens) r.push_back(1);
    for (unsigned char c : text) r.push_back(int32_t(c) + 3);
    return r;
  }
  std::string decode(const std::vector<int32_t>& ids, bool skip) const override {
    std::string s;
    for (int32_t id : ids)
      if (id >= 3) s += char(id - 3);
    return s;
  }
  int32_t vocab_size() const override { return 259; }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string id_to_token(int32_t id) const override { return decode({id}, false); }
  bool is_special(int32_t id) const override { return id < 3; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  const std::string& sha256() const override { return sha_; }
  std::string summary() const override { return "bytes"; }

 private:
  std::string sha_ = "byte-tokenizer";
};

std::string text_of(const CalibSet& s, int64_t i, int64_t from = 0) {
  static ByteTokenizer t;
  return t.decode(std::vector<int32_t>(s.sample(i) + from, s.sample(i) + s.valid_length(i)), false);
}

CalibSpec spec(const std::string& builder, int64_t n, int64_t T) {
  CalibSpec s;
  s.builder = builder;
  s.nsamples = n;
  s.seqlen = T;
  s.data_root = test::data();
  return s;
}

std::string tmp_file(const std::string& name, const std::string& content) {
  const std::string p = test::temp_path("calib", name);
  std::ofstream(p) << content;
  return p;
}

const std::string kStories = "tinystories/tinystories_val.txt";

TEST(CalibBuild, GptqWindowsAreReproducibleAndExact) {
  ByteTokenizer tok;
  CalibSpec s = spec("text", 8, 256);
  s.source = test::data("data/" + kStories);
  const CalibSet a = build_calib_set(s, &tok), b = build_calib_set(s, &tok);
  EXPECT_EQ(a.manifest["token_sha256"], b.manifest["token_sha256"]);
  EXPECT_EQ(token_sha256(a.ids), a.manifest["token_sha256"]);
  s.seed = 1;
  EXPECT_NE(build_calib_set(s, &tok).manifest["token_sha256"], a.manifest["token_sha256"]);
  // Each sample is the window [offset, offset+T) of the BOS-prefixed encoding of its document.
  const TextSource src = read_text_source(s.source);
  EXPECT_EQ(a.manifest["source"]["sha256"], src.sha256);
  ASSERT_EQ(a.manifest["picks"].size(), 8u);
  for (int64_t i = 0; i < 8; ++i) {
    const size_t d = a.manifest["picks"][i][0];
    const int64_t off = a.manifest["picks"][i][1];
    const auto ids = tok.encode(src.docs[d], {});
    ASSERT_GT(int64_t(ids.size()), 256);
    ASSERT_LT(off, int64_t(ids.size()) - 256);
    EXPECT_TRUE(std::equal(ids.begin() + off, ids.begin() + off + 256, a.sample(i)));
  }
  EXPECT_EQ(a.manifest["tokenizer_sha256"], "byte-tokenizer");
  EXPECT_FALSE(a.padded());
}

TEST(CalibBuild, ConcatPacksDocumentsInSeededOrder) {
  ByteTokenizer tok;
  CalibSpec s = spec("text", 4, 100);
  s.source = test::data("data/" + kStories);
  s.mode = "concat";
  const CalibSet a = build_calib_set(s, &tok);
  const TextSource src = read_text_source(s.source);
  std::string joined;
  for (const auto& i : a.manifest["order"]) joined += (joined.empty() ? "" : "\n\n") + src.docs[i.get<size_t>()];
  std::string all;
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(a.sample(i)[0], 1);  // BOS, then 99 stream tokens
    all += text_of(a, i, 1);
  }
  EXPECT_EQ(joined.substr(0, all.size()), all);
}

TEST(CalibBuild, DocumentModePadsOnTheRight) {
  ByteTokenizer tok;
  CalibSpec s = spec("text", 6, 400);
  s.source = test::data("data/" + kStories);
  s.mode = "document";
  const CalibSet a = build_calib_set(s, &tok);
  ASSERT_TRUE(a.padded());  // paragraphs are shorter than 400 bytes now and then
  const TextSource src = read_text_source(s.source);
  for (int64_t i = 0; i < 6; ++i) {
    const std::string& doc = src.docs[a.manifest["documents"][i].get<size_t>()];
    EXPECT_EQ(text_of(a, i, 1), doc.substr(0, 399));
    EXPECT_EQ(a.valid_length(i), std::min<int64_t>(400, int64_t(doc.size()) + 1));
  }
  validate_calib_set(a, "");
}

TEST(CalibBuild, PunctAndRandomTokens) {
  ByteTokenizer tok;
  const CalibSet p = build_calib_set(spec("punct", 3, 50), &tok);
  const std::string& P = ascii_punctuation();
  EXPECT_EQ(P.size(), 32u);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(p.sample(i)[0], 1);
    for (char c : text_of(p, i, 1)) EXPECT_NE(P.find(c), std::string::npos) << c;
  }
  const CalibSet r = build_calib_set(spec("random-tokens", 4, 300), &tok);
  std::set<int32_t> seen;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t t = 1; t < 300; ++t) {
      EXPECT_GE(r.sample(i)[t], 3);  // specials 0..2 excluded
      EXPECT_LT(r.sample(i)[t], 259);
      seen.insert(r.sample(i)[t]);
    }
  EXPECT_GT(seen.size(), 200u);
  EXPECT_EQ(r.manifest["excluded_special"], 3);
  CalibSpec nv = spec("random-tokens", 2, 10);
  nv.vocab = 128;  // no tokenizer: ids in [0, 128), no BOS
  const CalibSet v = build_calib_set(nv, nullptr);
  for (int64_t t = 0; t < 20; ++t) EXPECT_LT(v.ids.data<int32_t>()[t], 128);
  EXPECT_THROW(build_calib_set(spec("random-tokens", 2, 10), nullptr), ArgError);
}

TEST(CalibBuild, TaskAndFlores) {
  ByteTokenizer tok;
  CalibSpec t = spec("task", 4, 200);
  t.task = "arc_challenge";
  const CalibSet a = build_calib_set(t, &tok);
  const TextSource arc = read_task_source("arc_challenge", test::data());
  EXPECT_EQ(arc.docs.size(), 1172u);
  // First item: "Question: An astronomer ... rotation?\nAnswer: Planetary days will become shorter."
  EXPECT_EQ(arc.docs[0].substr(0, 23), "Question: An astronomer");
  EXPECT_NE(arc.docs[0].find("?\nAnswer: Planetary days will become shorter."), std::string::npos);
  EXPECT_EQ(text_of(a, 0, 1).substr(0, 10), arc.docs[a.manifest["order"][0].get<size_t>()].substr(0, 10));
  for (const char* task : {"piqa", "hellaswag_val_1000", "winogrande", "lambada_openai"})
    EXPECT_GT(read_task_source(task, test::data()).docs.size(), 100u) << task;

  CalibSpec l = spec("lang", 3, 128);
  l.lang = "fra_Latn";
  const CalibSet fr = build_calib_set(l, &tok);
  l.lang = "deu_Latn";
  const CalibSet de = build_calib_set(l, &tok);
  EXPECT_EQ(fr.manifest["order"][0], de.manifest["order"][0]);  // parallel sentence order
  EXPECT_NE(fr.manifest["token_sha256"], de.manifest["token_sha256"]);
  l.lang = "xyz_Latn";
  try {
    build_calib_set(l, &tok);
    FAIL() << "no error for a missing language";
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("xyz_Latn"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("fra_Latn"), std::string::npos);  // lists what exists
  }
  t.task = "no_such_task";
  EXPECT_THROW(build_calib_set(t, &tok), ArgError);
}

TEST(CalibBuild, MixAllocatesAndShuffles) {
  ByteTokenizer tok;
  CalibSpec m = spec("mix", 10, 64);
  m.parts.push_back(parse_mix_part("2:punct", m));
  m.parts.push_back(parse_mix_part("1:lang:lang=spa_Latn", m));
  m.parts.push_back(parse_mix_part("1:random-tokens", m));
  const CalibSet a = build_calib_set(m, &tok);
  EXPECT_EQ(a.nsamples(), 10);
  const Json& parts = a.manifest["parts"];
  EXPECT_EQ(parts[0]["nsamples"].get<int>() + parts[1]["nsamples"].get<int>() + parts[2]["nsamples"].get<int>(), 10);
  EXPECT_EQ(parts[0]["nsamples"], 5);
  EXPECT_EQ(parts[1]["manifest"]["seed"], 1);  // part i uses seed + i
  EXPECT_EQ(build_calib_set(m, &tok).manifest["token_sha256"], a.manifest["token_sha256"]);
  EXPECT_THROW(parse_mix_part("x:punct", m), ArgError);
  EXPECT_THROW(parse_mix_part("1:text:sauce=a", m), ArgError);
  EXPECT_EQ(parse_mix_part("0.5:text:source=a.txt,mode=concat", m).spec.mode, "concat");
}

TEST(CalibBuild, RefusesEmptyAndTooSmallSources) {
  ByteTokenizer tok;
  CalibSpec s = spec("text", 4, 64);
  s.source = tmp_file("empty.txt", "\n\n  \n");
  try {
    build_calib_set(s, &tok);
    FAIL();
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
  std::remove(s.source.c_str());
  s.source = tmp_file("small.txt", "one short paragraph\n\nand another\n");
  s.mode = "concat";
  try {
    build_calib_set(s, &tok);
    FAIL();
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("source too small"), std::string::npos) << e.what();
  }
  s.mode = "gptq";
  try {
    build_calib_set(s, &tok);
    FAIL();
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("no document is longer than seqlen"), std::string::npos) << e.what();
  }
  s.mode = "document";
  EXPECT_THROW(build_calib_set(s, &tok), ArgError);  // 2 documents for 4 samples
  std::remove(s.source.c_str());
  s.source = "/nonexistent/corpus.txt";
  EXPECT_THROW(build_calib_set(s, &tok), IoError);
  s.source = tmp_file("bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": 1}\n");
  EXPECT_THROW(build_calib_set(s, &tok), FormatError);
  std::remove(s.source.c_str());
  EXPECT_THROW(build_calib_set(spec("nonsense", 1, 1), &tok), ArgError);
  EXPECT_THROW(build_calib_set(spec("punct", 0, 8), &tok), ArgError);
}

}  // namespace
}  // namespace calq

namespace calq {
namespace {

// The window length of `calq calib build`: GPTQ's 2048, capped at the model's context; a longer
// -T than the model takes is refused at build time.
TEST(CalibSeqlen, DefaultsToWhatTheModelTakes) {
  EXPECT_EQ(calib_seqlen(0, 512, "m"), 512);
  EXPECT_EQ(calib_seqlen(0, 8192, "m"), 2048);
  EXPECT_EQ(calib_seqlen(0, 0, "m"), 2048);
  EXPECT_EQ(calib_seqlen(256, 512, "m"), 256);
  EXPECT_EQ(calib_seqlen(4096, 0, "m"), 4096);  // no model given: as asked
  EXPECT_THROW(calib_seqlen(600, 512, "m"), ArgError);
  EXPECT_THROW(calib_seqlen(-1, 512, "m"), ArgError);
}

}  // namespace
}  // namespace calq
