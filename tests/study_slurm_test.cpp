// Slurm scale-out without Slurm: `calq study submit --slurm` with a stand-in sbatch on PATH (it
// records its arguments and answers job ids as `sbatch --parsable` does), then every array task of
// every phase run here by bash with the environment Slurm gives a task, then `calq study collect`:
// the store equals a local run's (every cell done, bitwise the same metrics).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "study/config.h"
#include "study/grid.h"
#include "study/runner.h"
#include "study/store.h"
#include "study_fixture.h"
#include "test_util.h"

namespace calq::study {
namespace {

namespace fs = std::filesystem;

const std::string kStudy = test::tiny_study_head("slurm", 4, false) + R"(
[[methods]]
method = "float"

[[methods]]
method = ["gptq", "smoothquant"]
group_size = 32

[[evaluations]]
kind = "ppl"
label = "ts"
data = "{data}/data/tinystories/tinystories_val.txt"
ctx = 64
chunks = 2

[[evaluations]]
kind = "kld"
label = "kld"
data = "{data}/data/tinystories/tinystories_val.txt"
ctx = 64
chunks = 2
)";

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::map<std::string, std::string> store_view(const StudyConfig& c) {
  auto s = open_store(c, build_grid(c));
  std::map<std::string, std::string> v;
  for (const CellRow& r : s->cells()) v[r.cell] = r.status + " " + r.error + " " + r.settings.dump();
  for (const MetricRow& m : s->metrics()) {
    std::ostringstream x;
    x.precision(17);
    x << m.value;
    v[m.cell + "/" + m.eval + "/" + m.metric] = x.str();
  }
  return v;
}

TEST(StudySlow, SlurmArrayTasksThenCollectEqualALocalRun) {
  const std::string dir = test::temp_path("study", "slurm");
  fs::remove_all(dir);
  fs::create_directories(dir + "/bin");
  const std::string file = dir + "/slurm.toml";
  std::ofstream(file) << kStudy;
  // sbatch --parsable prints "<jobid>[;<cluster>]"; this one records each call.
  std::ofstream(dir + "/bin/sbatch") << "#!/bin/bash\nn=$(( $(wc -l < " << dir << "/sbatch.log 2>/dev/null || echo 0) + 1 ))\n"
                                     << "echo \"$*\" >> " << dir << "/sbatch.log\necho \"$((4200 + n));cluster\"\n";
  fs::permissions(dir + "/bin/sbatch", fs::perms::owner_all);

  std::string log;
  const std::string C = "CALQ_DATA='" + test::data() + "' " + test::cli();
  ASSERT_EQ(test::run_command("PATH=" + dir + "/bin:$PATH " + C + " study submit " + file + " --slurm --out " + dir +
                                  "/cluster --partition cpu --time 01:00:00 --mem 4G --cpus-per-task 1",
                              &log),
            0)
      << log;
  // Three phases, each after the previous one succeeded.
  const std::string calls = read_text(dir + "/sbatch.log");
  EXPECT_EQ(calls, "--parsable prep.sbatch\n--parsable --dependency=afterok:4201 shared.sbatch\n"
                   "--parsable --dependency=afterok:4202 cells.sbatch\n");
  for (const std::string phase : {"prep", "shared", "cells"}) {
    const std::string script = dir + "/cluster/slurm/" + phase + ".sbatch";
    const std::string text = read_text(script);
    EXPECT_NE(text.find("#SBATCH --partition=cpu\n"), std::string::npos);
    EXPECT_NE(text.find("#SBATCH --mem=4G\n"), std::string::npos);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, std::regex("#SBATCH --array=0-([0-9]+)"))) << text;
    const int last = std::stoi(m[1]);
    for (int i = 0; i <= last; ++i) {
      const std::string env = "SLURM_JOB_ID=" + std::to_string(5000 + i) + " SLURM_ARRAY_JOB_ID=4200 SLURM_ARRAY_TASK_ID=" +
                              std::to_string(i) + " SLURM_CPUS_PER_TASK=1 SLURM_ARRAY_TASK_COUNT=" + std::to_string(last + 1);
      ASSERT_EQ(test::run_command(env + " bash " + script, &log), 0) << phase << " " << i << "\n" << log;
    }
  }
  ASSERT_EQ(test::run_command(C + " study collect " + file + " --out " + dir + "/cluster", &log), 0) << log;
  EXPECT_NE(log.find("5 done, 0 failed, 0 pending"), std::string::npos) << log;

  const StudyConfig local = load_study_config(file, test::data(), dir + "/local");
  RunOptions o;
  o.jobs = 2;  // two steps side by side: the same numbers as one at a time (and as the cluster's)
  EXPECT_EQ(run_study(local, o).done, 5);
  const auto want = store_view(local);
  EXPECT_EQ(store_view(load_study_config(file, test::data(), dir + "/cluster")), want);
  EXPECT_GT(want.size(), 20u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace calq::study
