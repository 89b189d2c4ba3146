// The evaluation library on the real stories260K model (token-level parts; tokenizer-level goldens
// are in eval_golden_test.cpp): streamed logits equal the golden logits, the GPTQ-protocol
// perplexity equals a mean NLL computed directly from `calq logits` output over the same windows,
// right-padded batches are exact, and results do not depend on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "eval/kld.h"
#include "eval/logit_source.h"
#include "eval/logprob.h"
#include "eval/loglik.h"
#include "eval/ppl.h"
#include "eval/session.h"
#include "kernels/threads.h"
#include "io/safetensors.h"
#include "formats/loader.h"
#include "test_util.h"
#include "util/json.h"

namespace calq::eval {
namespace {

struct Stories {
  std::unique_ptr<Decoder> model;
  std::vector<std::vector<int32_t>> texts;  // golden input_ids (with BOS)
};

const Stories& stories() {
  static const Stories s = [] {
    Stories x;
    const std::string dir = test::data("models/stories260K");
    x.model = load_model(dir);
    const Json j = load_json_file(dir + "/golden/input_ids.json");
    for (const auto& row : j.at("input_ids")) x.texts.push_back(row.get<std::vector<int32_t>>());
    return x;
  }();
  return s;
}

TEST(EvalModel, StreamedLogitsMatchGolden) {
  const Stories& s = stories();
  DecoderLogits src(*s.model, /*chunk_rows=*/50);
  const auto& ids = s.texts[2];
  const int64_t T = int64_t(ids.size()), V = src.vocab_size();
  std::vector<int64_t> rows;
  for (int64_t t = 3; t < T; t += 2) rows.push_back(t);  // a sparse selection across chunks
  const auto golden = SafetensorsFile::open(test::data("models/stories260K/golden/logits.safetensors"));
  const Tensor g = golden->get("logits.2");
  double worst = 0;
  size_t seen = 0;
  src.logits(ids.data(), 1, T, rows, [&](const float* lg, int64_t n, const int64_t* r) {
    for (int64_t i = 0; i < n; ++i, ++seen) {
      EXPECT_EQ(r[i], rows[seen]);
      for (int64_t v = 0; v < V; ++v) worst = std::max(worst, std::abs(double(lg[i * V + v]) - g.f32()[r[i] * V + v]));
    }
  });
  EXPECT_EQ(seen, rows.size());
  EXPECT_LT(worst, 1e-4);
}

// Reads logits [B, T, V] written by `calq logits`.
Tensor cli_logits(const std::vector<std::vector<int32_t>>& windows, const std::string& tag) {
  const std::string tmp = ::testing::TempDir() + "calq_eval_" + tag;
  Json j;
  j["input_ids"] = windows;
  std::ofstream(tmp + ".json") << j.dump();
  std::string out;
  const int rc = test::run_command(test::cli() + " logits " + test::data("models/stories260K") + " --ids " + tmp +
                                       ".json -o " + tmp + ".safetensors",
                                   &out);
  EXPECT_EQ(rc, 0) << out;
  return SafetensorsFile::open(tmp + ".safetensors")->get("logits").clone();
}

TEST(EvalModel, GptqPerplexityEqualsMeanNllFromCalqLogits) {
  const Stories& s = stories();
  std::vector<int32_t> stream;  // the three golden texts back to back: 345 tokens
  for (const auto& t : s.texts) stream.insert(stream.end(), t.begin(), t.end());
  const int64_t ctx = 64;
  const auto windows = make_windows(stream, ctx, Protocol::Gptq, 1);
  ASSERT_EQ(windows.size(), 5u);
  DecoderLogits src(*s.model);
  const PplResult r = perplexity(src, windows);

  std::vector<std::vector<int32_t>> ids;
  for (const auto& w : windows) ids.push_back(w.ids);
  const Tensor lg = cli_logits(ids, "gptq");
  const int64_t V = 512;
  double sum = 0;
  int64_t n = 0;
  for (size_t b = 0; b < ids.size(); ++b)
    for (int64_t t = 0; t + 1 < ctx; ++t) {  // plain double log-softmax, every shifted position
      const float* row = lg.f32() + (int64_t(b) * ctx + t) * V;
      double m = row[0], z = 0;
      for (int64_t v = 1; v < V; ++v) m = std::max(m, double(row[v]));
      for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - m);
      sum += m + std::log(z) - row[ids[b][size_t(t + 1)]];
      ++n;
    }
  EXPECT_EQ(r.predictions, n);
  EXPECT_NEAR(r.nll_mean, sum / double(n), 1e-6 * sum / double(n));
  EXPECT_NEAR(r.ppl, std::exp(sum / double(n)), 1e-5 * r.ppl);

  // llama.cpp protocol on the same stream: windows start with BOS, second half scored.
  const auto lw = make_windows(stream, ctx, Protocol::LlamaCpp, 1);
  std::vector<std::vector<int32_t>> lids;
  for (const auto& w : lw) lids.push_back(w.ids);
  const Tensor ll = cli_logits(lids, "llamacpp");
  sum = 0, n = 0;
  for (size_t b = 0; b < lids.size(); ++b) {
    EXPECT_EQ(lids[b][0], 1);
    for (int64_t t = ctx / 2; t + 1 < ctx; ++t) {
      const float* row = ll.f32() + (int64_t(b) * ctx + t) * V;
      sum += row_logsumexp_ref(row, V) - row[lids[b][size_t(t + 1)]];
      ++n;
    }
  }
  const PplResult rl = perplexity(src, lw);
  EXPECT_EQ(rl.predictions, n);
  EXPECT_EQ(n, 5 * (ctx - 1 - ctx / 2));
  EXPECT_NEAR(rl.nll_mean, sum / double(n), 1e-6 * sum / double(n));
}

TEST(EvalModel, RightPaddedBatchEqualsSingleSequences) {
  const Stories& s = stories();
  DecoderLogits src(*s.model);
  const auto& a = s.texts[2];
  std::vector<TokenPair> reqs = {
      {{a.begin(), a.begin() + 40}, {a.begin() + 40, a.begin() + 45}},
      {{a.begin(), a.begin() + 10}, {a.begin() + 10, a.begin() + 13}},
      {{a.begin(), a.begin() + 100}, {a.begin() + 100, a.begin() + 101}},
  };
  const auto batched = loglikelihood_batch(src, reqs, 512);
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto one = loglikelihood_batch(src, {reqs[i]}, 512);
    EXPECT_NEAR(batched[i].logprob, one[0].logprob, 1e-5) << i;
    EXPECT_EQ(batched[i].greedy, one[0].greedy);
    EXPECT_EQ(batched[i].tokens, int64_t(reqs[i].continuation.size()));
  }
}

TEST(EvalModel, ResultsDoNotDependOnThreadCount) {
  const Stories& s = stories();
  DecoderLogits src(*s.model);
  const auto& a = s.texts[2];
  std::vector<TokenPair> reqs;
  for (int c = 20; c < 200; c += 30) reqs.push_back({{a.begin(), a.begin() + c}, {a.begin() + c, a.begin() + c + 4}});
  const auto windows = make_windows(a, 100, Protocol::Gptq, 1);
  std::vector<std::vector<LoglikResult>> ll;
  std::vector<double> nll;
  for (int threads : {1, 2}) {
    {
      const ThreadScope scope(threads);  // a call without options: the caller scopes it
      ll.push_back(loglikelihood_batch(src, reqs, 512));
    }
    PplOptions po;  // a call with options: the thread count travels in them
    po.threads = threads;
    nll.push_back(perplexity(src, windows, po).nll_sum);
  }
  for (size_t t = 1; t < ll.size(); ++t) {
    test::expect_row_invariant(nll[t], nll[0], 1e-6, "nll");  // bit-identical on AVX-512
    for (size_t i = 0; i < reqs.size(); ++i)
      test::expect_row_invariant(ll[t][i].logprob, ll[0][i].logprob, 1e-5, std::to_string(t) + " " + std::to_string(i));
  }
}

// A bf16 checkpoint evaluated in f32 (the default) says so and how to get bf16 compute (#10 item 5);
// an f32 checkpoint, or bf16 compute, says nothing.
TEST(EvalModel, ComputeTypeNoteForBf16Checkpoints) {
  const EvalSession bf16 = open_session(test::data("models/tiny/llama3"), "", false);
  EXPECT_EQ(bf16.model->checkpoint()->config().at("torch_dtype"), "bfloat16");
  const std::string note = compute_type_note(bf16, ComputeType::F32);
  EXPECT_NE(note.find("compute: f32 (the checkpoint stores bf16 weights"), std::string::npos) << note;
  EXPECT_NE(note.find("--bf16"), std::string::npos) << note;
  EXPECT_EQ(compute_type_note(bf16, ComputeType::BF16), "");
  const EvalSession f32 = open_session(test::data("models/stories260K"), "", false);
  EXPECT_EQ(compute_type_note(f32, ComputeType::F32), "");
}

}  // namespace
}  // namespace calq::eval
