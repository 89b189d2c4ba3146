// Interrupted evaluations resume from their log (eval/resume.h) with bit-identical results and
// without recomputing finished units; a log from another run is refused; a torn last line (a
// crash mid-write) is redone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "eval/kld.h"
#include "eval/ppl.h"
#include "eval/resume.h"
#include "eval/task_eval.h"
#include "eval_test_util.h"
#include "test_util.h"
#include "util/error.h"

namespace calq::eval {
namespace {

std::vector<std::vector<double>> table() {
  std::vector<std::vector<double>> t(4, std::vector<double>(4));
  for (int c = 0; c < 4; ++c) t[c][(c + 1) % 4] = 0.5, t[c][(c + 2) % 4] = 0.25, t[c][(c + 3) % 4] = 0.15, t[c][c] = 0.1;
  return t;
}

std::string fresh(const std::string& name) {
  const std::string p = ::testing::TempDir() + "calq_resume_" + name;
  std::filesystem::remove(p);
  return p;
}

const std::vector<int32_t> kStream = {0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 3, 2, 1, 0, 0};

TEST(EvalResume, PerplexityContinuesWhereItStopped) {
  test::BigramModel m(table());
  const auto all = make_windows(kStream, 4, Protocol::Gptq, 0);
  const PplResult want = perplexity(m, all);
  const std::string path = fresh("ppl.jsonl");
  {
    ResumeLog log(path, "run-1");
    PplOptions o;
    o.resume = &log;
    perplexity(m, make_windows(kStream, 4, Protocol::Gptq, 0, 2), o);  // "interrupted" after 2 windows
  }
  std::ofstream(path, std::ios::app) << "{\"unit\": \"window/2\", \"val";  // torn line from a crash
  test::BigramModel m2(table());
  ResumeLog log(path, "run-1");
  EXPECT_EQ(log.restored(), 2u);
  PplOptions o;
  o.resume = &log;
  const PplResult got = perplexity(m2, all, o);
  EXPECT_EQ(got.nll_sum, want.nll_sum);  // bit-identical
  EXPECT_EQ(got.ppl_stderr, want.ppl_stderr);
  EXPECT_EQ(m2.calls, 2);  // only windows 2 and 3 were run
  EXPECT_THROW(ResumeLog(path, "run-2"), ArgError);

  // Batched: a pass takes only windows the log lacks, so windows 2-3 run as one pass of 2 and the
  // logged 0-1 are not recomputed (a pass of 3 from window 0 would have redone them).
  const std::string bpath = fresh("ppl_batch.jsonl");
  {
    ResumeLog blog(bpath, "b");
    PplOptions o3;
    o3.resume = &blog;
    perplexity(m, make_windows(kStream, 4, Protocol::Gptq, 0, 2), o3);
  }
  ResumeLog blog(bpath, "b");
  PplOptions o3;
  o3.resume = &blog;
  o3.batch = 3;
  test::BigramModel m3(table());
  EXPECT_EQ(perplexity(m3, all, o3).nll_sum, want.nll_sum);
  EXPECT_EQ(m3.calls, 1);
  EXPECT_EQ(m3.positions_fed, 2 * 4);  // one forward of windows 2 and 3
  // pass_end: done windows alone, then runs of up to `batch` windows not done.
  const std::vector<bool> done = {true, false, false, false, true, false};
  auto is_done = [&](size_t w) { return bool(done[w]); };
  EXPECT_EQ(pass_end(0, 6, 2, is_done), 1u);
  EXPECT_EQ(pass_end(1, 6, 2, is_done), 3u);
  EXPECT_EQ(pass_end(3, 6, 2, is_done), 4u);  // stops at the done window 4
  EXPECT_EQ(pass_end(5, 6, 4, is_done), 6u);
}

TEST(EvalResume, TasksAndKldSkipFinishedUnits) {
  test::BigramModel m(table());
  TaskData td;
  td.name = "toy";
  std::vector<std::vector<TokenPair>> enc;
  for (int d = 0; d < 5; ++d) {
    td.docs.push_back(TaskDoc{{{"", "", 1}, {"", "", 2}}, d % 2, d + 1});
    enc.push_back({{{0}, {1}}, {{0}, {2, 3}}});
  }
  TaskOptions o;
  o.batch_size = 2;
  const TaskResult want = evaluate_encoded(m, td, enc, o);
  const std::string path = fresh("tasks.jsonl");
  {
    ResumeLog log(path, "k");
    o.resume = &log;
    TaskData first = td;
    first.docs.resize(3);
    evaluate_encoded(m, first, {enc.begin(), enc.begin() + 3}, o);
  }
  ResumeLog log(path, "k");
  o.resume = &log;
  test::BigramModel m2(table());
  const TaskResult got = evaluate_encoded(m2, td, enc, o);
  EXPECT_EQ(m2.calls, 2);  // one document (2 sequences) per batch: docs 3 and 4 run, 0-2 restored
  EXPECT_EQ(got.acc, want.acc);
  for (size_t d = 0; d < 5; ++d) EXPECT_EQ(got.per_doc[d][1].logprob, want.per_doc[d][1].logprob);

  test::BigramModel q(table());
  const KldReference ref = build_kld_reference(m, make_windows(kStream, 4, Protocol::Gptq, 0), 2);
  const KldStats kwant = score_kld(q, ref);
  const std::string kpath = fresh("kld.jsonl");
  {
    ResumeLog klog(kpath, "r");
    score_kld(q, ref, 1, {}, &klog);
  }
  ResumeLog klog(kpath, "r");
  test::BigramModel q2(table());
  const KldStats kgot = score_kld(q2, ref, 1, {}, &klog);
  EXPECT_EQ(q2.calls, 0);
  EXPECT_EQ(kgot.kld_mean, kwant.kld_mean);
  EXPECT_EQ(kgot.kld_p99, kwant.kld_p99);
  EXPECT_EQ(kgot.dp_mean_pct, kwant.dp_mean_pct);
}

}  // namespace
}  // namespace calq::eval

namespace calq::eval {
namespace {

// One writer per log: concurrent runs on one --resume log used to interleave and duplicate lines
// (the next resume then failed). A second writer is refused at once, naming the holder's pid; a log
// of another run is still told apart by its key; the lock goes with the first writer.
TEST(EvalResume, OneWriterAtATime) {
  const std::string path = fresh("locked.jsonl");
  {
    ResumeLog first(path, "k");
    first.put("window/0", 1.5);
    try {
      ResumeLog second(path, "k");
      ADD_FAILURE() << "a second writer was accepted";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(path + " is in use by another calq process (pid " +
                                           std::to_string(::getpid()) + ")"),
                std::string::npos)
          << e.what();
    }
    EXPECT_THROW(ResumeLog(path, "other run"), ArgError);
    std::string out;  // another process sees the lock too (flock(1), util-linux)
    EXPECT_EQ(test::run_command("flock -n " + path + ".lock true", &out), 1) << out;
    // The command line: `calq eval ppl --resume LOG2` while this process holds LOG2 (not yet written:
    // the key check of an existing log comes first).
    const std::string path2 = fresh("locked2.jsonl");
    const FileLock hold(path2);
    const std::string cmd = "CALQ_PROGRESS=0 " + test::cli() + " -t 1 eval ppl " + test::data("models/stories260K") +
                            " --data " + test::data("data/tinystories/tinystories_val.txt") +
                            " --ctx 128 --chunks 2 --resume " + path2;
    EXPECT_EQ(test::run_command(cmd, &out), 1) << out;
    EXPECT_NE(out.find("is in use by another calq process (pid " + std::to_string(::getpid()) + ")"),
              std::string::npos)
        << out;
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".lock"));
  ResumeLog again(path, "k");
  EXPECT_EQ(again.restored(), 1u);
  EXPECT_EQ(*again.find("window/0"), 1.5);
}

}  // namespace
}  // namespace calq::eval
