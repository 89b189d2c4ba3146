// End to end on stories260K with its real tokenizer: the perplexities of golden/perplexity.json
// (GPTQ protocol, --ctx 512 --chunks 4) for the three texts, the llama.cpp protocol's windows
// hand-checked on TinyStories, task scores reproducible across runs and thread counts, the jobs
// behind `calq eval` (src/eval/jobs.h) and their results files, and what the command prints.
// EvalGoldenSlow runs several thread counts (release pass only).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "eval/jobs.h"
#include "eval/logprob.h"
#include "eval/ppl.h"
#include "eval/task_eval.h"
#include "eval/text_data.h"
#include "formats/loader.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"
#include "util/sha256.h"

namespace calq::eval {
namespace {

struct Stories {
  std::unique_ptr<Decoder> model;
  std::unique_ptr<Tokenizer> tok;
};

const Stories& stories() {
  static const Stories s = [] {
    Stories x;
    x.model = load_model(test::data("models/stories260K"));
    x.tok = Tokenizer::from_path(test::data("models/stories260K"));
    return x;
  }();
  return s;
}

std::string ids_sha(const std::vector<int32_t>& ids, size_t n) {
  return sha256_hex(ids.data(), std::min(n, ids.size()) * sizeof(int32_t));
}

struct GoldenCase {
  const char* key;
  const char* file;
  TextMode mode;
};

// golden/perplexity.json of a real model of the data pack: the whole-file token streams (count,
// SHA-256 of the first 2048 ids) and the perplexity of 4 windows of 512 (GPTQ protocol).
void check_golden_perplexities(const std::string& name, const Decoder& model, const Tokenizer& tok) {
  const Json golden = load_json_file(test::data("models/" + name + "/golden/perplexity.json")).at("results");
  DecoderLogits src(model);
  for (const GoldenCase& c : {GoldenCase{"tinystories_val", "data/tinystories/tinystories_val.txt", TextMode::Raw},
                              GoldenCase{"wikitext2_test_raw", "data/wikitext-2-raw/wiki.test.raw", TextMode::Raw},
                              GoldenCase{"wikitext2_test_gptq", "data/wikitext-2-raw/wiki.test.raw", TextMode::HfRows}}) {
    const Json& g = golden.at(c.key);
    const EvalText text = load_eval_text(test::data(c.file), c.mode);
    EXPECT_EQ(text.file_sha256, g.at("file_sha256").get<std::string>());
    const std::vector<int32_t> stream = token_stream(tok, text.text);
    EXPECT_EQ(int64_t(stream.size()), g.at("total_tokens_with_bos").get<int64_t>()) << name << " " << c.key;
    EXPECT_EQ(ids_sha(stream, 2048), g.at("first_2048_ids_sha256").get<std::string>()) << name << " " << c.key;
    const PplResult r = perplexity(src, make_windows(stream, 512, Protocol::Gptq, tok.bos_id(), 4));
    EXPECT_EQ(r.predictions, g.at("predicted_tokens").get<int64_t>());
    const double nll = g.at("mean_nll").get<double>(), ppl = g.at("perplexity").get<double>();
    EXPECT_NEAR(r.nll_mean, nll, 1e-6 * nll) << name << " " << c.key;
    EXPECT_NEAR(r.ppl, ppl, 1e-5 * ppl) << name << " " << c.key;  // 4+ significant digits
    for (size_t w = 0; w < 4; ++w) {
      const double want = g.at("windows")[w].at("nll_sum").get<double>();
      EXPECT_NEAR(r.window_nll_sum[w], want, 1e-6 * want) << name << " " << c.key << " window " << w;
    }
  }
}

TEST(EvalGolden, PerplexityMatchesGoldenFiles) {
  const Stories& s = stories();
  check_golden_perplexities("stories260K", *s.model, *s.tok);
}

// TinyStories-656K (tied embedding stored only as lm_head.weight, BPE tokenizer of 2048 pieces).
TEST(EvalGolden, TinyStories656KPerplexityMatchesGoldenFiles) {
  const std::string dir = test::data("models/TinyStories-656K");
  const auto model = load_model(dir);
  const auto tok = Tokenizer::from_path(dir);
  check_golden_perplexities("TinyStories-656K", *model, *tok);
}

TEST(EvalGolden, LlamaCppWindowsOnTinyStoriesHandChecked) {
  const Stories& s = stories();
  const EvalText text = load_eval_text(test::data("data/tinystories/tinystories_val.txt"), TextMode::Raw);
  const std::vector<int32_t> stream = token_stream(*s.tok, text.text);
  const int64_t ctx = 16;
  const auto w = make_windows(stream, ctx, Protocol::LlamaCpp, s.tok->bos_id(), 3);
  ASSERT_EQ(w.size(), 3u);
  double sum = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < 3; ++i) {
    // Window i = stream[16i, 16i+16) with its first token replaced by BOS.
    std::vector<int32_t> ids(stream.begin() + i * ctx, stream.begin() + (i + 1) * ctx);
    ids[0] = 1;
    EXPECT_EQ(w[size_t(i)].ids, ids);
    // Only positions 8..14 (the second half) are scored, predicting tokens 9..15.
    const ForwardOutput out = s.model->forward(ids.data(), 1, ctx);
    for (int64_t t = 8; t <= 14; ++t, ++n) {
      const float* row = out.logits.f32() + t * 512;
      sum += row_logsumexp_ref(row, 512) - row[ids[size_t(t + 1)]];
    }
  }
  DecoderLogits src(*s.model);
  const PplResult r = perplexity(src, w);
  EXPECT_EQ(r.predictions, 21);
  EXPECT_EQ(n, 21);
  EXPECT_NEAR(r.nll_mean, sum / 21, 1e-6 * sum / 21);
}

TEST(EvalGoldenSlow, TaskScoresReproducibleAcrossRunsAndThreads) {
  const Stories& s = stories();
  DecoderLogits src(*s.model);
  for (const std::string& name : known_tasks()) {
    const TaskData td = load_task(name, test::data("data/tasks"), 4);
    std::vector<TaskResult> runs;
    for (int threads : {1, 2, 1}) {
      TaskOptions o;
      o.threads = threads;
      runs.push_back(evaluate_task(src, *s.tok, td, o));
    }
    for (size_t k = 1; k < runs.size(); ++k) {
      EXPECT_EQ(runs[k].acc, runs[0].acc) << name;
      EXPECT_EQ(runs[k].acc_norm, runs[0].acc_norm) << name;
      test::expect_row_invariant(runs[k].ppl, runs[0].ppl, 1e-6, name);
      for (size_t d = 0; d < td.docs.size(); ++d)
        for (size_t c = 0; c < td.docs[d].choices.size(); ++c)
          test::expect_row_invariant(runs[k].per_doc[d][c].logprob, runs[0].per_doc[d][c].logprob, 1e-5,
                                     name + " " + std::to_string(d) + " " + std::to_string(c));
    }
    // Cross-check one choice directly: one unbatched forward over encode(context + continuation).
    const TaskChoice& ch = td.docs[0].choices[0];
    const TokenPair p = encode_pair(*s.tok, ch.context, ch.continuation, false);
    std::vector<int32_t> all = p.context;
    all.insert(all.end(), p.continuation.begin(), p.continuation.end());
    const ForwardOutput out = s.model->forward(all.data(), 1, int64_t(all.size()));
    double ll = 0;
    for (size_t j = 0; j < p.continuation.size(); ++j) {
      const float* row = out.logits.f32() + int64_t(p.context.size() + j - 1) * 512;
      ll += row[p.continuation[j]] - row_logsumexp_ref(row, 512);
    }
    EXPECT_NEAR(runs[0].per_doc[0][0].logprob, ll, 1e-4) << name;
  }
}

TEST(EvalGolden, TaskContextsFollowTheHarness) {
  const std::string dir = test::data("data/tasks");
  const TaskData arc = load_task("arc_easy", dir, 1);
  EXPECT_EQ(arc.docs[0].choices[0].context,
            "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:");
  EXPECT_EQ(arc.docs[0].choices[0].continuation, " Sunlight is the source of energy for nearly all ecosystems.");
  EXPECT_EQ(arc.docs[0].gold, 0);
  const TaskData piqa = load_task("piqa", dir, 1);
  EXPECT_EQ(piqa.docs[0].choices[1].context, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
  const TaskData hs = load_task("hellaswag", dir, 1);
  EXPECT_EQ(hs.docs[0].choices[0].context,
            "Pole vault: Pole vault is a sport where you run with a pole and stop and swing your body. A few women");
  EXPECT_EQ(hs.docs[0].choices[3].continuation, " are in the gym practicing to do this pole vault, trying to do their best.");
  EXPECT_EQ(hs.docs[0].gold, 3);
  const TaskData wg = load_task("winogrande", dir, 1);
  EXPECT_EQ(wg.docs[0].choices[1].context, "Sarah was a much better surgeon than Maria so Maria");
  EXPECT_EQ(wg.docs[0].choices[1].continuation, " always got the easier cases.");
  const TaskData lb = load_task("lambada", dir, 1);
  EXPECT_EQ(lb.docs[0].choices[0].continuation, " signs");
  EXPECT_EQ(hellaswag_preprocess("  A [title] How to  x [header] y  "), "A. How to x y");
  EXPECT_EQ(py_capitalize("the WOMAN éCOLE"), "The woman école");
  EXPECT_EQ(utf8_length("école"), 5);
}

// ---- the jobs behind `calq eval` (src/eval/jobs.h) ----

// Windows batched into one forward pass score exactly as one window per pass (f32 and bf16
// compute; 3 windows of 256, GPTQ protocol): every row of a pass is computed as in a pass of its
// own, and the NLLs are summed per window in position order.
TEST(EvalGolden, PerplexityDoesNotDependOnBatch) {
  const std::string dir = test::data("models/stories260K");
  auto model = load_model(dir);
  const auto tok = Tokenizer::from_path(dir);
  const EvalText text = load_eval_text(test::data("data/tinystories/tinystories_val.txt"), TextMode::Raw);
  const auto w = make_windows(token_stream(*tok, text.text), 256, Protocol::Gptq, tok->bos_id(), 3);
  EXPECT_EQ(windows_per_pass(0, 512), 4);
  EXPECT_EQ(windows_per_pass(0, 4096), 1);
  EXPECT_EQ(windows_per_pass(3, 512), 3);
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
    model->set_compute(c);
    DecoderLogits src(*model);
    PplOptions one;
    const PplResult r1 = perplexity(src, w, one);
    for (int64_t b : {2, 3}) {  // an uneven last pass, and all in one
      PplOptions o;
      o.batch = b;
      const PplResult rb = perplexity(src, w, o);
      const std::string what = "batch " + std::to_string(b) + (c == ComputeType::BF16 ? " bf16" : " f32");
      test::expect_row_invariant(rb.window_nll_sum, r1.window_nll_sum, 1e-6, what);
      test::expect_row_invariant(rb.ppl, r1.ppl, 1e-6, what);
    }
  }
}

// The scoring pass runs the last layer's MLP, the final norm and lm_head on the scored rows only
// (ForwardOptions::rows); the window NLLs are bitwise those of the logits of a full pass (every
// row, lm_head on all of them). llama.cpp protocol (second halves scored) and GPTQ (all rows but
// the last), f32 and bf16, two windows per pass.
TEST(EvalGolden, ScoredRowsOnlyEqualsFullPass) {
  const std::string dir = test::data("models/stories260K");
  auto model = load_model(dir);
  const auto tok = Tokenizer::from_path(dir);
  const EvalText text = load_eval_text(test::data("data/tinystories/tinystories_val.txt"), TextMode::Raw);
  const std::vector<int32_t> stream = token_stream(*tok, text.text);
  for (Protocol p : {Protocol::LlamaCpp, Protocol::Gptq}) {
    const auto w = make_windows(stream, 256, p, tok->bos_id(), 2);
    std::vector<int32_t> ids;
    for (const Window& x : w) ids.insert(ids.end(), x.ids.begin(), x.ids.end());
    for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
      model->set_compute(c);
      const Tensor full = model->forward(ids.data(), 2, 256).logits;  // [2, 256, V]
      const int64_t V = full.dim(2);
      std::vector<double> want;
      for (size_t b = 0; b < w.size(); ++b) {
        double s = 0;
        for (int64_t t = w[b].first_scored; t + 1 < 256; ++t) {
          const float* row = full.f32() + (int64_t(b) * 256 + t) * V;
          s += row_logsumexp(row, V) - double(row[w[b].ids[size_t(t + 1)]]);
        }
        want.push_back(s);
      }
      DecoderLogits src(*model);
      PplOptions o;
      o.batch = 2;
      test::expect_row_invariant(perplexity(src, w, o).window_nll_sum, want, 1e-6,
                                 std::string(protocol_name(p)) + (c == ComputeType::BF16 ? " bf16" : " f32"));
    }
  }
}

TEST(EvalGolden, JobsWriteResults) {
  const std::string m = test::data("models/stories260K");
  const std::string ts = test::data("data/tinystories/tinystories_val.txt");
  const std::string tmp = ::testing::TempDir() + "calq_eval_jobs_";
  std::vector<std::string> log;
  const JobHooks hooks{[&](const std::string& l) { log.push_back(l); }, {}, 1};
  auto logged = [&](const std::string& part) {
    for (const auto& l : log)
      if (l.find(part) != std::string::npos) return true;
    return false;
  };
  PplJob ppl;
  ppl.model = m;
  ppl.w.data = ts;
  ppl.w.ctx = 512;
  ppl.w.chunks = 4;
  ppl.hooks = hooks;
  std::vector<int64_t> windows_seen;
  ppl.on_window = [&](const PplProgress& p) { windows_seen.push_back(p.window); };
  const Json p = run_ppl(ppl).results;
  EXPECT_EQ(windows_seen, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(p.at("evaluation"), "ppl");
  EXPECT_NEAR(p.at("metrics").at("ppl").get<double>(), 3.859676805565501, 1e-4);
  EXPECT_EQ(p.at("metrics").at("tokens").get<int64_t>(), 2044);
  EXPECT_GT(p.at("metrics").at("ppl_stderr").get<double>(), 0);
  EXPECT_EQ(p.at("data").at("sha256"), "5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6");
  EXPECT_EQ(p.at("model").at("hash").get<std::string>().size(), 64u);
  EXPECT_EQ(p.at("settings").at("ctx"), 512);
  EXPECT_EQ(p.at("settings").at("batch"), 4);  // windows_per_pass: 2048 positions of 512

  // Interrupted after 2 windows, resumed to 4: the same numbers, only windows 3-4 recomputed.
  std::filesystem::remove(tmp + "ppl.resume");
  PplJob part = ppl;
  part.w.chunks = 2;
  part.resume = tmp + "ppl.resume";
  run_ppl(part);
  PplJob rest = part;
  rest.w.chunks = 4;
  test::expect_row_invariant(run_ppl(rest).results.at("metrics").at("ppl").get<double>(),
                             p.at("metrics").at("ppl").get<double>(), 1e-6, "resumed");
  EXPECT_TRUE(logged("resuming: 2 windows")) << log.size();
  PplJob other = rest;
  other.w.ctx = 256;
  try {
    run_ppl(other);
    ADD_FAILURE() << "a resume log of another run was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to another run"), std::string::npos) << e.what();
  }

  // A compact reference of the model, then the model scored against itself.
  KldRefJob ref;
  ref.model = m;
  ref.w.data = ts;
  ref.w.ctx = 256;
  ref.w.chunks = 3;
  ref.w.protocol = "llama.cpp";
  ref.k = 8;
  ref.out = tmp + "ref.safetensors";
  ref.hooks = hooks;
  const KldRefRun rr = run_kld_reference(ref);
  EXPECT_EQ(rr.predictions, 3 * 127);
  EXPECT_GT(rr.llamacpp_bytes, rr.bytes);
  KldJob kld;
  kld.model = m;
  kld.ref = ref.out;
  kld.w.data = ts;
  kld.hooks = hooks;
  int64_t last_window = 0;
  kld.on_window = [&](int64_t done, int64_t, double) { last_window = done; };
  const Json k = run_kld(kld).results;
  EXPECT_EQ(last_window, 3);
  EXPECT_EQ(k.at("evaluation"), "kld");
  EXPECT_NEAR(k.at("metrics").at("kld_mean").get<double>(), 0.0, 1e-6);
  EXPECT_DOUBLE_EQ(k.at("metrics").at("same_top_pct").get<double>(), 100.0);
  EXPECT_NEAR(k.at("metrics").at("ppl_ratio").get<double>(), 1.0, 1e-6);
  EXPECT_EQ(k.at("metrics").at("tokens").get<int64_t>(), 3 * 127);
  EXPECT_EQ(k.at("metrics").size(), 27u);
  EXPECT_EQ(k.at("settings").at("k"), 8);
  EXPECT_EQ(k.at("data").at("reference_sha256"), sha256_file(ref.out));
  // Exact mode: the two models side by side, no reference file.
  KldJob exact;
  exact.model = exact.ref_model = m;
  exact.w.data = ts;
  exact.w.ctx = 128;
  exact.w.chunks = 2;
  exact.hooks = hooks;
  const Json kx = run_kld(exact).results;
  EXPECT_NEAR(kx.at("metrics").at("kld_mean").get<double>(), 0.0, 1e-9);
  EXPECT_EQ(kx.at("metrics").at("tokens").get<int64_t>(), 2 * 127);
  EXPECT_EQ(kx.at("settings").at("k"), "full");
  // The reference refuses other data, and a job needs exactly one reference.
  KldJob wrong = kld;
  wrong.w.data = test::data("data/wikitext-2-raw/wiki.test.raw");
  try {
    run_kld(wrong);
    ADD_FAILURE() << "other data accepted";
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("differs from the data the reference"), std::string::npos) << e.what();
  }
  KldJob both = kld;
  both.ref_model = m;
  EXPECT_THROW(run_kld(both), ArgError);

  TasksJob tasks;
  tasks.model = m;
  tasks.tasks = {"arc_easy", "winogrande", "lambada_openai"};
  tasks.task_dir = test::data("data/tasks");
  tasks.limit = 8;
  tasks.hooks = hooks;
  std::vector<std::string> done;
  tasks.on_task = [&](const TaskData& td, const TaskResult&) { done.push_back(td.name); };
  const TasksRun tr = run_tasks(tasks);
  EXPECT_EQ(done, (std::vector<std::string>{"arc_easy", "winogrande", "lambada"}));
  const Json t = tr.results_file;
  for (const char* key : {"arc_easy.acc", "arc_easy.acc_stderr", "arc_easy.acc_norm", "winogrande.acc", "lambada.acc",
                          "lambada.ppl"})
    EXPECT_TRUE(t.at("metrics").contains(key)) << key;
  EXPECT_EQ(t.at("metrics").at("arc_easy.samples").get<int64_t>(), 8);
  tasks.tasks = {"mmlu"};
  EXPECT_THROW(run_tasks(tasks), ArgError);
}

TEST(EvalGolden, DefaultWindowLength) {
  EXPECT_EQ(window_length(0, 512), 512);    // the model's context when shorter than GPTQ's 2048
  EXPECT_EQ(window_length(0, 4096), 2048);  // GPTQ's seqlen
  EXPECT_EQ(window_length(0, 0), 2048);     // unknown context
  EXPECT_EQ(window_length(128, 512), 128);  // --ctx
  EXPECT_THROW(window_length(1024, 512), ArgError);         // beyond max_position_embeddings
  EXPECT_EQ(window_length(1024, 512, /*allow_long=*/true), 1024);
  EXPECT_EQ(window_length(4096, 0), 4096);                  // unknown context: as asked
}

// ---- the command line: what it prints, and one-line errors ----

Json run_cli(const std::string& args, int expect_rc = 0, std::string* out_text = nullptr) {
  std::string out;
  const int rc = test::run_command("CALQ_DATA=" + test::data() + " CALQ_PROGRESS=0 " + test::cli() + " -t 1 " + args, &out);
  EXPECT_EQ(rc, expect_rc) << out;
  if (out_text) *out_text = out;
  return Json();
}

TEST(EvalGolden, CliPrintsWindowLines) {
  const std::string m = test::data("models/stories260K");
  const std::string ts = test::data("data/tinystories/tinystories_val.txt");
  std::string out;
  run_cli("eval ppl " + m + " --data " + ts + " --ctx 512 --chunks 4", 0, &out);
  EXPECT_NE(out.find("[4/4] ppl 3.8597"), std::string::npos) << out;
  EXPECT_NE(out.find("ppl 3.8597 ± "), std::string::npos) << out;
}

TEST(EvalGolden, CliBadInputIsOneLineError) {
  const std::string m = test::data("models/stories260K");
  const std::string empty = ::testing::TempDir() + "calq_eval_empty.txt";
  std::ofstream(empty).close();
  std::string out;
  run_cli("eval ppl " + m + " --data " + empty, 1, &out);
  EXPECT_NE(out.find("calq: error: " + empty + ": empty data file"), std::string::npos) << out;
  // A window beyond the model's 512 positions is refused; asked for, a short text is still named.
  run_cli("eval ppl " + m + " --data " + test::data("models/stories260K/golden/README.md") + " --ctx 4096", 1, &out);
  EXPECT_NE(out.find("--allow-long-ctx"), std::string::npos) << out;
  run_cli("eval ppl " + m + " --data " + test::data("models/stories260K/golden/README.md") + " --ctx 4096 --allow-long-ctx",
          1, &out);
  EXPECT_NE(out.find("text too short"), std::string::npos) << out;
  run_cli("eval tasks " + m + " --tasks mmlu", 2, &out);  // a bad argument: usage error
  EXPECT_NE(out.find("unknown task 'mmlu'"), std::string::npos) << out;
}

}  // namespace
}  // namespace calq::eval
