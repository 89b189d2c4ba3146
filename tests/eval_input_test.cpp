// Bad input gives a clear error naming the file and the problem, never a number: empty or too
// short data, malformed task files, and KLD references from another model, tokenizer or data.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "eval/kld.h"
#include "eval/task_data.h"
#include "eval/text_data.h"
#include "eval_test_util.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq::eval {
namespace {

std::string temp_dir() {
  const std::string d = ::testing::TempDir() + "calq_eval_input";
  std::filesystem::create_directories(d);
  return d;
}

std::string write(const std::string& name, const std::string& content) {
  const std::string p = temp_dir() + "/" + name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

// Runs f, expects an exception of type E whose message contains every piece of `parts`.
template <class E, class F>
void expect_error(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(EvalInput, EmptyOrBlankDataFile) {
  const std::string empty = write("empty.txt", "");
  expect_error<ArgError>([&] { load_eval_text(empty, TextMode::Raw); }, {empty, "empty data file"});
  const std::string blank = write("blank.txt", " \n\n \n");
  expect_error<ArgError>([&] { load_eval_text(blank, TextMode::HfRows); }, {blank, "no text"});
  const std::string jl = write("docs.jsonl", "{\"text\": \"a\"}\n{\"body\": \"b\"}\n");
  expect_error<ConfigError>([&] { load_eval_text(jl, TextMode::Auto); }, {jl + ":2", "'text'"});
  const std::string bad = write("bad.jsonl", "{\"text\": \"a\"\n");
  expect_error<FormatError>([&] { load_eval_text(bad, TextMode::Jsonl); }, {bad + ":1"});
  // A text shorter than one window.
  expect_error<ArgError>([&] { make_windows({1, 2, 3}, 512, Protocol::Gptq, 1); }, {"3 tokens", "512"});
}

TEST(EvalInput, JsonlAndLinesModes) {
  const std::string jl = write("c4.jsonl", "{\"text\": \"one\", \"url\": \"u\"}\n\n{\"text\": \"two\"}\n");
  const EvalText t = load_eval_text(jl, TextMode::Auto);
  EXPECT_EQ(t.text, "one\n\ntwo");
  EXPECT_EQ(t.documents, 2u);
  const std::string fl = write("eng.devtest", "First sentence.\r\nSecond one.\n\n");
  EXPECT_EQ(load_eval_text(fl, TextMode::Auto).text, "First sentence.\nSecond one.");
}

TEST(EvalInput, TaskFileMissingFieldOrBadLabel) {
  const std::string dir = temp_dir() + "/tasks";
  std::filesystem::create_directories(dir);
  auto task_file = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir + "/" + name, std::ios::binary) << content;
    return dir + "/" + name;
  };
  std::string f = task_file("arc_easy.jsonl", "{\"query\": \"Question: q\", \"choices\": [\"a\", \"b\"], \"gold\": 1}\n"
                                              "{\"query\": \"Question: q\", \"choices\": [\"a\", \"b\"]}\n");
  expect_error<FormatError>([&] { load_task("arc_easy", dir); }, {f + ":2", "'gold'"});
  EXPECT_EQ(load_task("arc_easy", dir, 1).docs.size(), 1u);  // --limit stops before the bad line
  f = task_file("piqa.jsonl", "{\"query\": \"Question: q\\n\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n");
  expect_error<FormatError>([&] { load_task("piqa", dir); }, {f + ":1", "out of range", "2 choices"});
  f = task_file("winogrande.jsonl", "{\"context_options\": [\"A x\", \"A y\"], \"gold\": 0}\n");
  expect_error<FormatError>([&] { load_task("winogrande", dir); }, {f + ":1", "'continuation'"});
  f = task_file("hellaswag_val_1000.jsonl",
                "{\"activity_label\": \"A\", \"ctx_a\": \"x\", \"ctx_b\": \"y\", \"endings\": [\"1\", \"2\"], "
                "\"label\": \"-1\"}\n");
  expect_error<FormatError>([&] { load_task("hellaswag", dir); }, {f + ":1", "label"});
  f = task_file("lambada_openai.jsonl", "[1, 2]\n");
  expect_error<FormatError>([&] { load_task("lambada", dir); }, {f + ":1", "object"});
  task_file("arc_challenge.jsonl", "\n");
  expect_error<FormatError>([&] { load_task("arc_challenge", dir); }, {"no documents"});
  expect_error<ArgError>([&] { load_task("mmlu", dir); }, {"unknown task 'mmlu'"});
}

std::vector<std::vector<double>> uniformish(int V) {
  std::vector<std::vector<double>> t(static_cast<size_t>(V), std::vector<double>(static_cast<size_t>(V)));
  for (int c = 0; c < V; ++c)
    for (int j = 0; j < V; ++j) t[size_t(c)][size_t(j)] = (j == (c + 1) % V ? 2.0 : 1.0) / double(V + 1);
  return t;
}

TEST(EvalInput, KldReferenceFromAnotherModelTokenizerOrData) {
  test::BigramModel p(uniformish(4));
  const std::vector<int32_t> stream = {0, 1, 2, 3, 0, 1, 2, 3};
  KldReference ref = build_kld_reference(p, make_windows(stream, 4, Protocol::Gptq, 0), 2);
  ref.meta.model_arch = "llama|vocab=4";
  ref.meta.tokenizer_sha256 = "aaaa";
  const std::string data = write("data.txt", "some text");
  ref.meta.data_sha256 = sha256_file(data);
  const std::string path = temp_dir() + "/ref.safetensors";
  write_kld_reference(ref, path);
  const KldReference back = read_kld_reference(path);
  EXPECT_EQ(back.topk_ids, ref.topk_ids);
  EXPECT_EQ(back.tail_mass, ref.tail_mass);
  check_reference_matches(back, path, "llama|vocab=4", "aaaa", data);  // the matching case passes
  expect_error<ArgError>([&] { check_reference_matches(back, path, "llama|vocab=5", "aaaa"); },
                         {path, "architecture", "not a version of the same model"});
  expect_error<ArgError>([&] { check_reference_matches(back, path, "llama|vocab=4", "bbbb"); }, {path, "tokenizer"});
  const std::string other = write("other.txt", "other text");
  expect_error<ArgError>([&] { check_reference_matches(back, path, "llama|vocab=4", "aaaa", other); },
                         {other, "differs"});
  test::BigramModel q5(uniformish(5));
  expect_error<ArgError>([&] { score_kld(q5, back); }, {"vocabulary of 4", "has 5"});

  // F16 log-probabilities round-trip to half precision.
  write_kld_reference(ref, path, DType::F16);
  const KldReference h = read_kld_reference(path);
  for (size_t i = 0; i < h.topk_logprobs.size(); ++i) EXPECT_NEAR(h.topk_logprobs[i], ref.topk_logprobs[i], 2e-3);
}

TEST(EvalInput, CorruptKldReference) {
  test::BigramModel p(uniformish(4));
  KldReference ref = build_kld_reference(p, make_windows({0, 1, 2, 3, 0, 1, 2, 3}, 4, Protocol::Gptq, 0), 2);
  const std::string path = temp_dir() + "/bad_ref.safetensors";
  auto rewrite = [&](const std::function<void(SafetensorsWriter&)>& edit) {
    SafetensorsWriter w;
    edit(w);
    w.write(path);
  };
  // A safetensors file that is not a reference.
  rewrite([](SafetensorsWriter& w) { w.add("x", Tensor::from_f32({1.0f}, {1})); });
  expect_error<FormatError>([&] { read_kld_reference(path); }, {path, "not a calq KLD reference"});
  // A reference whose ids leave the vocabulary.
  KldReference bad = ref;
  bad.topk_ids[3] = 9;
  write_kld_reference(bad, path);
  expect_error<FormatError>([&] { read_kld_reference(path); }, {path, "topk_ids"});
  // Probabilities that are not probabilities.
  bad = ref;
  bad.tail_mass[0] = 1.5f;
  write_kld_reference(bad, path);
  expect_error<FormatError>([&] { read_kld_reference(path); }, {path, "tail_mass"});
  // Truncated file.
  write_kld_reference(ref, path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 8);
  EXPECT_THROW(read_kld_reference(path), FormatError);
}

}  // namespace
}  // namespace calq::eval
