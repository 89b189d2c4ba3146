// --int8-acts on the evaluation jobs (eval ppl, kld, tasks): a GGUF Q4_0 model evaluated with int8
// activations in blocks of 32 (LoadOptions QActs::Int8, llama.cpp's arithmetic) gives numbers close
// to, but not the same as, the float-activation path's; the setting is recorded in the results
// ("activations": "int8") and in the resume key, so a log of one mode is refused by the other.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "eval/jobs.h"
#include "export_fixtures.h"
#include "formats/gguf_model.h"
#include "test_util.h"
#include "util/error.h"

namespace calq::test {
namespace {

using namespace calq::eval;

// TinyStories-656K (hidden 128, intermediate 384: every row a whole number of Q4_0 blocks) as a
// pure Q4_0 GGUF; it carries the folder's tokenizer, whose sha256 stays its identity.
class EvalInt8Acts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("eval_int8_acts");
    GgufExportOptions o;
    o.type = ggml::Type::Q4_0;
    o.pure = true;
    export_gguf(folder(), gguf(), o);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string folder() { return data("models/TinyStories-656K"); }
  static std::string gguf() { return *dir_ / "m.gguf"; }
  static std::string text() { return data("data/tinystories/tinystories_val.txt"); }
  static std::string scratch(const std::string& name) { return *dir_ / name; }
  static ScratchDir* dir_;
};
ScratchDir* EvalInt8Acts::dir_ = nullptr;

// A run whose resume log was written by the other activation mode is refused.
template <class Job, class Run>
void expect_other_mode_refused(Job job, Run run) {
  job.int8_acts = !job.int8_acts;
  try {
    run(job);
    ADD_FAILURE() << "a resume log of the other activation mode was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to another run"), std::string::npos) << e.what();
  }
}

TEST_F(EvalInt8Acts, Ppl) {
  PplJob job;
  job.model = gguf();
  job.w.data = text();
  job.w.ctx = 128;
  job.w.chunks = 2;
  job.bf16 = true;
  const Json f = run_ppl(job).results;
  job.int8_acts = true;
  job.resume = scratch("ppl.resume");
  const Json q = run_ppl(job).results;
  EXPECT_FALSE(f.at("settings").contains("activations"));
  EXPECT_EQ(q.at("settings").at("activations"), "int8");
  const double pf = f.at("metrics").at("ppl").get<double>(), pq = q.at("metrics").at("ppl").get<double>();
  EXPECT_NE(pq, pf);
  EXPECT_NEAR(pq / pf, 1.0, 0.02) << pf << " " << pq;
  expect_other_mode_refused(job, [](const PplJob& j) { return run_ppl(j); });
}

TEST_F(EvalInt8Acts, Kld) {
  KldRefJob ref;
  ref.model = folder();
  ref.w.data = text();
  ref.w.ctx = 128;
  ref.w.chunks = 2;
  ref.k = 8;
  ref.out = scratch("ref.safetensors");
  run_kld_reference(ref);
  KldJob job;
  job.model = gguf();
  job.ref = ref.out;
  job.bf16 = true;
  const Json f = run_kld(job).results;
  job.int8_acts = true;
  job.resume = scratch("kld.resume");
  const Json q = run_kld(job).results;
  EXPECT_FALSE(f.at("settings").contains("activations"));
  EXPECT_EQ(q.at("settings").at("activations"), "int8");
  const double kf = f.at("metrics").at("kld_mean").get<double>(), kq = q.at("metrics").at("kld_mean").get<double>();
  EXPECT_EQ(q.at("metrics").at("tokens"), f.at("metrics").at("tokens"));
  EXPECT_GT(kf, 0.0);  // 4-bit weights against the float model
  EXPECT_NE(kq, kf);   // int8 activations add their own rounding, a little
  EXPECT_NEAR(kq, kf, 0.5 * kf) << kf << " " << kq;
  expect_other_mode_refused(job, [](const KldJob& j) { return run_kld(j); });
}

TEST_F(EvalInt8Acts, Tasks) {
  TasksJob job;
  job.model = gguf();
  job.tasks = {"arc_easy"};
  job.task_dir = data("data/tasks");
  job.limit = 4;
  job.bf16 = true;
  const Json f = run_tasks(job).results_file;
  job.int8_acts = true;
  job.resume = scratch("tasks.resume");
  const Json q = run_tasks(job).results_file;
  EXPECT_FALSE(f.at("settings").contains("activations"));
  EXPECT_EQ(q.at("settings").at("activations"), "int8");
  // Every choice's log-likelihood moves a little, none far.
  const Json& lf = f.at("details").at("arc_easy").at("loglikelihoods");
  const Json& lq = q.at("details").at("arc_easy").at("loglikelihoods");
  ASSERT_EQ(lf.size(), 4u);
  ASSERT_EQ(lq.size(), lf.size());
  double max_d = 0;
  for (size_t d = 0; d < lf.size(); ++d) {
    ASSERT_EQ(lq[d].size(), lf[d].size());
    for (size_t c = 0; c < lf[d].size(); ++c) {
      const double a = lf[d][c].get<double>(), b = lq[d][c].get<double>();
      max_d = std::max(max_d, std::fabs(a - b));
      EXPECT_NEAR(b, a, 0.05 * std::fabs(a) + 0.05) << d << "/" << c;
    }
  }
  EXPECT_GT(max_d, 0.0);
  expect_other_mode_refused(job, [](const TasksJob& j) { return run_tasks(j); });
}

}  // namespace
}  // namespace calq::test
