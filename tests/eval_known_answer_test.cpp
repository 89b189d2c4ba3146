// Known answers for the evaluation library on a hand-computable bigram model (eval_test_util.h):
// perplexity under both protocols, KL divergence (top-k and exact), acc / acc_norm / LAMBADA
// metrics and their standard errors, the harness's pair encoding, and the numeric helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "eval/kld.h"
#include "eval/logprob.h"
#include "eval/loglik.h"
#include "eval/ppl.h"
#include "eval/stats.h"
#include "eval/task_eval.h"
#include "eval/text_data.h"
#include "eval_test_util.h"
#include "util/error.h"

namespace calq::eval {
namespace {

// P(next | c): 0.5 at c+1, 0.25 at c+2, 0.15 at c+3, 0.10 at c (mod 4).
std::vector<std::vector<double>> table_p() {
  std::vector<std::vector<double>> t(4, std::vector<double>(4));
  for (int c = 0; c < 4; ++c) {
    t[c][(c + 1) % 4] = 0.5, t[c][(c + 2) % 4] = 0.25, t[c][(c + 3) % 4] = 0.15, t[c][c] = 0.10;
  }
  return t;
}
// Q(next | c): 0.4 at c+1, 0.3 at c+2, 0.2 at c+3, 0.1 at c.
std::vector<std::vector<double>> table_q() {
  std::vector<std::vector<double>> t(4, std::vector<double>(4));
  for (int c = 0; c < 4; ++c) {
    t[c][(c + 1) % 4] = 0.4, t[c][(c + 2) % 4] = 0.3, t[c][(c + 3) % 4] = 0.2, t[c][c] = 0.1;
  }
  return t;
}

const std::vector<int32_t> kStream = {0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 3};

TEST(EvalPerplexity, GptqProtocolHandComputed) {
  test::BigramModel m(table_p());
  const auto w = make_windows(kStream, 4, Protocol::Gptq, 0);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[1].ids, (std::vector<int32_t>{0, 1, 2, 0}));
  EXPECT_EQ(w[2].first_scored, 0);
  const PplResult r = perplexity(m, w);
  // 9 predictions: seven c->c+1 (p .5), 2->0 (c+2, p .25), 3->3 (c, p .10).
  std::vector<double> nll(7, std::log(2.0));
  nll.push_back(std::log(4.0));
  nll.push_back(std::log(10.0));
  double mean = 0, m2 = 0;
  for (double x : nll) mean += x / 9, m2 += x * x / 9;
  EXPECT_EQ(r.predictions, 9);
  EXPECT_NEAR(r.nll_mean, mean, 1e-6);
  EXPECT_NEAR(r.ppl, std::exp(mean), 1e-5);
  EXPECT_NEAR(r.ppl_stderr, std::exp(mean) * std::sqrt((m2 - mean * mean) / 8), 1e-5);
  ASSERT_EQ(r.window_nll_sum.size(), 3u);
  EXPECT_NEAR(r.window_nll_sum[1], 2 * std::log(2.0) + std::log(4.0), 1e-6);
  // Batching windows changes nothing; --chunks keeps the first windows.
  PplOptions o;
  o.batch = 2;
  EXPECT_DOUBLE_EQ(perplexity(m, w, o).nll_sum, r.nll_sum);
  EXPECT_EQ(perplexity(m, make_windows(kStream, 4, Protocol::Gptq, 0, 2)).predictions, 6);
}

TEST(EvalPerplexity, LlamaCppProtocolScoresSecondHalfWithBos) {
  test::BigramModel m(table_p());
  const auto w = make_windows(kStream, 4, Protocol::LlamaCpp, /*bos=*/3);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[1].ids, (std::vector<int32_t>{3, 1, 2, 0}));  // first token replaced by BOS
  EXPECT_EQ(w[2].ids, (std::vector<int32_t>{3, 2, 3, 3}));
  EXPECT_EQ(w[0].first_scored, 2);
  EXPECT_EQ(w[0].predictions(), 1);  // ctx - 1 - ctx/2
  // Scored: position 2 -> 3 in each window: 2->3 (.5), 2->0 (.25), 3->3 (.10).
  const PplResult r = perplexity(m, w);
  EXPECT_EQ(r.predictions, 3);
  EXPECT_NEAR(r.nll_mean, (std::log(2.0) + std::log(4.0) + std::log(10.0)) / 3, 1e-6);
  // Odd context: first scored = ctx/2 (floor), predictions = ctx - 1 - ctx/2.
  const auto w5 = make_windows(kStream, 5, Protocol::LlamaCpp, 3);
  EXPECT_EQ(w5.size(), 2u);
  EXPECT_EQ(w5[0].first_scored, 2);
  EXPECT_EQ(w5[0].predictions(), 2);
}

TEST(EvalPerplexity, RejectsShortTextAndBadIds) {
  test::BigramModel m(table_p());
  EXPECT_THROW(make_windows({0, 1, 2}, 4, Protocol::Gptq, 0), ArgError);
  EXPECT_THROW(make_windows(kStream, 1, Protocol::Gptq, 0), ArgError);
  EXPECT_THROW(perplexity(m, make_windows({0, 1, 7, 2}, 4, Protocol::Gptq, 0)), ArgError);  // id >= vocab
}

double kl_row(const std::vector<double>& p, const std::vector<double>& q) {
  double s = 0;
  for (size_t i = 0; i < p.size(); ++i) s += p[i] * std::log(p[i] / q[i]);
  return s;
}

TEST(EvalKld, TopKAndExactHandComputed) {
  test::BigramModel P(table_p()), Q(table_q());
  const auto w = make_windows(kStream, 4, Protocol::Gptq, 0);
  // Every scored row has the same divergence by symmetry of the tables.
  const double exact = kl_row({0.5, 0.25, 0.15, 0.10}, {0.4, 0.3, 0.2, 0.1});
  // k = 2: ids {c+1, c+2}, tails 0.25 (P) and 0.3 (Q).
  const double top2 = 0.5 * std::log(0.5 / 0.4) + 0.25 * std::log(0.25 / 0.3) + 0.25 * std::log(0.25 / 0.3);
  EXPECT_LT(top2, exact);  // the coarse-grained KL is a lower bound

  const KldReference full = build_kld_reference(P, w, 4);
  EXPECT_NEAR(full.tail_mass[0], 0.0, 1e-7);
  const KldStats s4 = score_kld(Q, full);
  EXPECT_EQ(s4.tokens, 9);
  EXPECT_NEAR(s4.kld_mean, exact, 1e-6);
  EXPECT_NEAR(s4.kld_mean_stderr, 0.0, 1e-6);
  EXPECT_NEAR(s4.kld_p99, exact, 1e-6);
  EXPECT_DOUBLE_EQ(s4.same_top_pct, 100.0);

  const KldReference r2 = build_kld_reference(P, w, 2);
  EXPECT_NEAR(r2.tail_mass[0], 0.25, 1e-6);
  EXPECT_NEAR(r2.topk_logprobs[0], std::log(0.5), 1e-6);
  EXPECT_NEAR(r2.topk_logprobs[1], std::log(0.25), 1e-6);
  EXPECT_EQ(r2.topk_ids[0], 1);  // after token 0: id 1 (p .5), id 2 (p .25)
  EXPECT_EQ(r2.topk_ids[1], 2);
  const KldStats s2 = score_kld(Q, r2);
  EXPECT_NEAR(s2.kld_mean, top2, 1e-6);

  // Δp and the perplexity ratio over the same 9 targets: seven c->c+1, one c+2, one c.
  const double dp = (7 * (0.4 - 0.5) + (0.3 - 0.25) + (0.1 - 0.1)) / 9 * 100;
  EXPECT_NEAR(s2.dp_mean_pct, dp, 1e-4);
  const double lnr = (7 * std::log(0.5 / 0.4) + std::log(0.25 / 0.3) + std::log(0.1 / 0.1)) / 9;
  EXPECT_NEAR(s2.ln_ppl_ratio, lnr, 1e-6);
  EXPECT_NEAR(s2.ppl_ratio, std::exp(lnr), 1e-6);
  EXPECT_NEAR(s2.ppl / s2.ppl_ref, std::exp(lnr), 1e-6);

  const KldStats ex = score_kld_exact(P, Q, w);
  EXPECT_NEAR(ex.kld_mean, exact, 1e-6);
  EXPECT_NEAR(ex.ln_ppl_ratio, lnr, 1e-6);
  EXPECT_DOUBLE_EQ(ex.same_top_pct, 100.0);

  const KldApproxStudy st = kld_approximation_study(P, Q, w, {1, 2, 4});
  EXPECT_NEAR(st.kld_exact_mean, exact, 1e-7);  // float logits
  EXPECT_NEAR(st.rows[1].kld_topk_mean, top2, 1e-6);
  EXPECT_NEAR(st.rows[2].kld_topk_mean, exact, 1e-6);
  EXPECT_LE(st.rows[0].kld_topk_mean, st.rows[1].kld_topk_mean + 1e-9);  // more ids, tighter bound
}

TEST(EvalKld, ModelAgainstItselfIsZero) {
  test::BigramModel P(table_p());
  const auto w = make_windows(kStream, 4, Protocol::LlamaCpp, 0);
  for (int k : {1, 2, 4}) {
    const KldStats s = score_kld(P, build_kld_reference(P, w, k));
    EXPECT_NEAR(s.kld_mean, 0.0, 1e-7) << k;
    EXPECT_NEAR(s.kld_max, 0.0, 1e-7) << k;
    EXPECT_DOUBLE_EQ(s.same_top_pct, 100.0);
    EXPECT_NEAR(s.ppl_ratio, 1.0, 1e-7);
    EXPECT_NEAR(s.dp_mean_pct, 0.0, 1e-5);
  }
}

TEST(EvalTasks, AccAndAccNormHandComputed) {
  test::BigramModel m(table_p());
  TaskData td;
  td.name = "toy";
  td.kind = TaskKind::MultipleChoice;
  std::vector<std::vector<TokenPair>> enc;
  auto doc = [&](std::vector<std::vector<int32_t>> conts, std::vector<double> lens, int gold) {
    TaskDoc d;
    std::vector<TokenPair> e;
    for (size_t i = 0; i < conts.size(); ++i) {
      d.choices.push_back({"", "", lens[i]});
      e.push_back({{0}, conts[i]});
    }
    d.gold = gold;
    td.docs.push_back(d);
    enc.push_back(e);
  };
  // Doc 1: A = [1,2,3] (3 ln .5 = -2.079, 3 chars), B = [2] (ln .25 = -1.386, 1 char):
  // acc picks B, acc_norm picks A (-0.693 > -1.386); gold A.
  doc({{1, 2, 3}, {2}}, {3, 1}, 0);
  doc({{1}, {3}}, {1, 1}, 0);  // ln .5 vs ln .15: both pick 0
  doc({{1}, {3}}, {1, 1}, 1);  // both wrong
  doc({{1}, {3}}, {1, 1}, 0);
  TaskOptions o;
  o.batch_size = 1;
  const TaskResult r = evaluate_encoded(m, td, enc, o);
  EXPECT_NEAR(r.per_doc[0][0].logprob, 3 * std::log(0.5), 1e-6);
  EXPECT_NEAR(r.per_doc[0][1].logprob, std::log(0.25), 1e-6);
  EXPECT_DOUBLE_EQ(r.acc, 0.5);
  EXPECT_DOUBLE_EQ(r.acc_norm, 0.75);
  EXPECT_NEAR(r.acc_stderr, std::sqrt(1.0 / 3) / 2, 1e-12);  // sample sd / sqrt(n)
  EXPECT_NEAR(r.acc_norm_stderr, 0.25, 1e-12);
  // Packing several documents into one forward pass gives the same numbers in fewer calls.
  test::BigramModel m2(table_p());
  o.batch_size = 16;
  const TaskResult r2 = evaluate_encoded(m2, td, enc, o);
  EXPECT_EQ(m2.calls, 1);
  EXPECT_EQ(m.calls, 4);
  for (size_t d = 0; d < 4; ++d)
    for (size_t c = 0; c < r.per_doc[d].size(); ++c)
      EXPECT_DOUBLE_EQ(r.per_doc[d][c].logprob, r2.per_doc[d][c].logprob);
}

TEST(EvalTasks, LambadaGreedyAndPerplexity) {
  test::BigramModel m(table_p());
  TaskData td;
  td.name = "lambada";
  td.kind = TaskKind::LastWord;
  td.docs.resize(2);
  td.docs[0].choices = {{"", "", 1}};
  td.docs[1].choices = {{"", "", 1}};
  // [1,2] after 0 is the greedy path (argmax after 0 is 1, after 1 is 2); [2] after 0 is not.
  const TaskResult r = evaluate_encoded(m, td, {{{{0}, {1, 2}}}, {{{0}, {2}}}}, {});
  EXPECT_TRUE(r.per_doc[0][0].greedy);
  EXPECT_FALSE(r.per_doc[1][0].greedy);
  EXPECT_DOUBLE_EQ(r.acc, 0.5);
  // exp(-mean Σ log p) = exp((2 ln 2 + ln 4) / 2) = 4
  EXPECT_NEAR(r.ppl, 4.0, 1e-5);
  EXPECT_NEAR(r.ppl_stderr, 4.0 * 0.0, 1e-5);  // both documents have NLL 2 ln 2
}

TEST(EvalTasks, LeftTruncationToMaxLength) {
  test::BigramModel m(table_p());
  // (context + continuation)[-(max_len + 1):][:-1]: 6 tokens, max 2 -> input [3, 0], continuation [1].
  const auto r = loglikelihood_batch(m, {{{0, 1, 2, 3, 0}, {1}}}, 2);
  EXPECT_NEAR(r[0].logprob, std::log(0.5), 1e-6);
  EXPECT_THROW(loglikelihood_batch(m, {{{0}, {1, 2, 3}}}, 2), ArgError);  // continuation longer than the model
}

TEST(EvalTasks, HarnessPairEncoding) {
  test::ByteTokenizer tok;
  // Trailing space of the context moves to the continuation.
  TokenPair p = encode_pair(tok, "Q: a\nAnswer: ", "b", false);
  EXPECT_EQ(tok.decode(p.context, false), "Q: a\nAnswer:");
  EXPECT_EQ(tok.decode(p.continuation, false), " b");
  p = encode_pair(tok, "ctx", " word", true);
  EXPECT_EQ(p.context.front(), 1);  // BOS only when asked
  EXPECT_EQ(p.continuation.size(), 5u);
  p = encode_pair(tok, "", "x", false);  // empty context: the BOS prefix token
  EXPECT_EQ(p.context, std::vector<int32_t>{1});
  EXPECT_THROW(encode_pair(tok, "ctx", "", false), ArgError);
}

TEST(EvalStats, PercentilesAndStderr) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_NEAR(percentile({1, 2, 3, 4}, 0.9), 3.7, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({5}, 0.99), 5.0);
  MeanAccumulator a;
  for (double x : {1.0, 2.0, 3.0, 4.0}) a.add(x);
  EXPECT_DOUBLE_EQ(a.mean(), 2.5);
  EXPECT_NEAR(a.stderr_of_mean(), std::sqrt(1.25 / 3), 1e-12);  // sd(n-1) / sqrt(n)
}

TEST(EvalLogprob, FastExpAndLogsumexpMatchReference) {
  double worst = 0;
  for (float x = -87.0f; x <= 0.0f; x += 0.0137f)
    worst = std::max(worst, std::abs(double(exp_neg(x)) / std::exp(double(x)) - 1));
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(exp_neg(-200.0f), exp_neg(-87.3f));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  for (int64_t n : {1, 7, 300, 512, 32000, 128256}) {
    std::vector<float> row(static_cast<size_t>(n));
    for (float& v : row) v = nd(rng);
    EXPECT_NEAR(row_logsumexp(row.data(), n), row_logsumexp_ref(row.data(), n), 2e-6) << n;
  }
}

TEST(EvalLogprob, TopKTiesAndTailMass) {
  const std::vector<float> x = {1.0f, 3.0f, 2.0f, 3.0f, 0.5f};
  int32_t ids[3];
  float vals[3];
  row_topk(x.data(), 5, 3, ids, vals);
  EXPECT_EQ(ids[0], 1);  // ties: lower index first
  EXPECT_EQ(ids[1], 3);
  EXPECT_EQ(ids[2], 2);
  EXPECT_EQ(row_argmax(x.data(), 5), 1);
  const double lse = row_logsumexp_ref(x.data(), 5);
  std::vector<uint8_t> scratch(5, 0);
  const double tail = row_tail_mass(x.data(), 5, lse, ids, 3, scratch.data());
  EXPECT_NEAR(tail, (std::exp(1.0) + std::exp(0.5)) / std::exp(lse), 1e-7);
  EXPECT_EQ(scratch, std::vector<uint8_t>(5, 0));
}

TEST(EvalText, WikitextHfRowsAndModes) {
  // Rows keep their "\n"; a whitespace-only line becomes ""; rows joined with "\n\n".
  EXPECT_EQ(wikitext_hf_rows_text(" = A = \n \n Text line \n"), " = A = \n\n\n\n\n Text line \n");
  EXPECT_EQ(resolve_text_mode(TextMode::Auto, "x/c4.jsonl"), TextMode::Jsonl);
  EXPECT_EQ(resolve_text_mode(TextMode::Auto, "x/eng_Latn.devtest"), TextMode::Lines);
  EXPECT_EQ(resolve_text_mode(TextMode::Auto, "wiki.test.raw"), TextMode::Raw);
  EXPECT_EQ(parse_text_mode("hf-rows"), TextMode::HfRows);
  EXPECT_THROW(parse_text_mode("rows"), ArgError);
  EXPECT_EQ(parse_protocol("llama.cpp"), Protocol::LlamaCpp);
  EXPECT_THROW(parse_protocol("hf"), ArgError);
}

}  // namespace
}  // namespace calq::eval
