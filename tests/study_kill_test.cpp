// Resume after kill -9: `calq study` run in a child process and killed with SIGKILL at several
// moments (a fixed pseudo-random schedule, so a failure reproduces), then rerun to the end, leaves
// the same store as one uninterrupted run: every cell done with bitwise the same metrics, the same
// settings, inputs and artifact keys (timings, dates and paths aside).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "study/config.h"
#include "study/grid.h"
#include "study/runner.h"
#include "study/store.h"
#include "study_fixture.h"
#include "test_util.h"

namespace calq::study {
namespace {

namespace fs = std::filesystem;

const std::string kStudy = test::tiny_study_head("kill", 8, false) + R"(
[[methods]]
method = "float"

[[methods]]
method = ["gptq", "awq"]
group_size = 32

[[evaluations]]
kind = "ppl"
label = "ts"
data = "{data}/data/tinystories/tinystories_val.txt"
ctx = 128
chunks = 6

[[evaluations]]
kind = "kld"
label = "kld"
data = "{data}/data/wikitext-2-raw/wiki.test.raw"
ctx = 128
chunks = 4
)";

// Runs `calq study FILE --out OUT`; kills it after `after_ms` (< 0: lets it finish). Returns true
// when it was killed before finishing.
bool run_cli(const std::string& file, const std::string& out, int after_ms) {
  const std::string cli = test::cli(), data = test::data();  // no allocation after fork
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    setenv("CALQ_DATA", data.c_str(), 1);  // the data pack the test reads, whatever the cwd
    execl(cli.c_str(), cli.c_str(), "--threads", "1", "study", file.c_str(), "--out", out.c_str(), (char*)nullptr);
    _exit(127);
  }
  int st = 0;
  if (after_ms >= 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(after_ms);
    while (std::chrono::steady_clock::now() < until) {
      if (waitpid(pid, &st, WNOHANG) == pid) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill(pid, SIGKILL);
  }
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) return true;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "calq study exited with " << st;
  return false;
}

struct Snapshot {
  std::map<std::string, std::string> cells;  // cell -> status, settings, inputs, artifact keys
  std::map<std::string, double> metrics;
};

Snapshot snapshot(const std::string& file, const std::string& out) {
  const StudyConfig c = load_study_config(file, test::data(), out);
  auto s = open_store(c, build_grid(c));
  Snapshot r;
  for (const CellRow& row : s->cells())
    r.cells[row.cell] = row.status + " " + row.error + " " + row.settings.dump() + " " + row.inputs.dump() + " " +
                        row.kv.dump() + " " + std::to_string(row.position);
  for (const MetricRow& m : s->metrics()) r.metrics[m.cell + "/" + m.eval + "/" + m.metric] = m.value;
  return r;
}

TEST(StudySlow, KillNineAtRandomMomentsThenRerunGivesTheSameStore) {
  const std::string dir = test::temp_path("study", "kill");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string file = dir + "/kill.toml";
  std::ofstream(file) << kStudy;

  const auto t0 = std::chrono::steady_clock::now();
  run_cli(file, dir + "/whole", -1);
  const int whole_ms = int(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  const Snapshot want = snapshot(file, dir + "/whole");
  ASSERT_EQ(want.cells.size(), 5u);
  for (const auto& [cell, row] : want.cells) EXPECT_EQ(row.substr(0, 5), "done ") << row;
  ASSERT_GT(want.metrics.size(), 10u);

  // Kills spread over the run (each rerun continues from what the previous ones left).
  std::mt19937 rng(12345);
  int kills = 0;
  for (int i = 0; i < 5; ++i) {
    const int at = 50 + int(rng() % uint32_t(std::max(whole_ms / 3, 100)));
    kills += run_cli(file, dir + "/killed", at);
  }
  EXPECT_GT(kills, 0);
  run_cli(file, dir + "/killed", -1);
  const Snapshot got = snapshot(file, dir + "/killed");
  EXPECT_EQ(got.cells, want.cells);
  EXPECT_EQ(got.metrics, want.metrics);  // bitwise
  fs::remove_all(dir);
}

}  // namespace
}  // namespace calq::study
