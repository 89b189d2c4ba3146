// calq study FILE [--jobs N] [--fail-fast]        run the study's grid (resumable)
// calq study plan FILE [--json]                   cells, shared work, time and memory estimates
// calq study status FILE                          done / running / failed / pending, with reasons
// calq study table FILE [--format md|csv]         pivot tables and the robustness summary
// calq study submit FILE --slurm [...]            Slurm job arrays (+ submission)
// calq study run-cell FILE --phase P --index I    one array task (what the Slurm scripts run)
// calq study collect FILE                         merge the tasks' result files into the store
// The study is a library (src/study/); this file parses, calls it and prints (docs/study.md).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "command.h"
#include "data_root.h"
#include "progress_bar.h"
#include "study/plan.h"
#include "study/results.h"
#include "study/runner.h"
#include "study/slurm.h"
#include "study/steps.h"
#include "study/store.h"
#include "study/table.h"
#include "util/error.h"

namespace calq::cli {
namespace {

using namespace calq::study;
namespace fs = std::filesystem;

struct Common {
  std::string file, out;
};

void add_common(CLI::App& app, Common& c, bool required = true) {
  auto* f = app.add_option("config", c.file, "study file (TOML, docs/study.md)");
  if (required) f->required();
  app.add_option("--out", c.out, "results folder (default: the file's [study] out)");
}

StudyConfig load(const Common& c) {
  if (c.file.empty()) throw ArgError("usage: calq study FILE (or: calq study plan|status|table|submit|collect FILE)");
  const std::string data = fs::absolute(data_root()).lexically_normal().string();
  return load_study_config(c.file, data, c.out.empty() ? "" : fs::absolute(c.out).lexically_normal().string());
}

// A log line that does not tear the progress bar on a terminal.
void line(const std::string& s) {
  if (isatty(STDERR_FILENO)) std::fputs("\r\033[K", stderr);
  info(s);
}

std::string secs(double s) {
  char b[32];
  if (s < 60) std::snprintf(b, sizeof b, "%.1f s", s);
  else if (s < 3600) std::snprintf(b, sizeof b, "%.1f min", s / 60);
  else std::snprintf(b, sizeof b, "%.1f h", s / 3600);
  return b;
}

std::string mbs(double m) {
  char b[32];
  std::snprintf(b, sizeof b, m < 1024 ? "%.0f MB" : "%.1f GB", m < 1024 ? m : m / 1024);
  return b;
}

// ---- run --------------------------------------------------------------------------------------

struct RunOpts {
  Common c;
  int jobs = 1;
  bool fail_fast = false;
};

int run(const RunOpts& o) {
  const StudyConfig cfg = load(o.c);
  RunOptions ro;
  ro.jobs = o.jobs;
  ro.threads = threads();
  ro.keep_going = !o.fail_fast;
  ro.progress = bar("study " + cfg.name);
  ro.log = line;
  {
    const Grid g = build_grid(cfg);
    auto store = open_store(cfg, g);
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    store->set_meta("runner", Json{{"pid", ::getpid()}, {"host", host}}.dump());
  }
  const RunSummary s = run_study(cfg, ro);
  std::printf("study %s: %d cells: %d done before, %d done now, %d failed; %d steps built, %d reused, %d failed; "
              "%.1f s; store %s\n",
              cfg.name.c_str(), s.cells, s.already_done, s.done, s.failed, s.steps_built, s.steps_reused,
              s.steps_failed, s.seconds, store_path(cfg).c_str());
  return s.failed ? 1 : 0;
}

// ---- plan -------------------------------------------------------------------------------------

struct PlanOpts {
  Common c;
  double gflops = 0;
  bool json = false, no_store = false;
};

int plan(const PlanOpts& o) {
  const StudyConfig cfg = load(o.c);
  const Grid g = build_grid(cfg);
  std::unique_ptr<Store> store;
  if (file_exists(store_path(cfg))) store = Store::open(store_path(cfg));
  PlanOptions po;
  po.gflops = o.gflops;
  po.threads = threads();
  po.calibrate = !o.no_store;
  const Plan p = make_plan(cfg, g, store.get(), po);
  std::map<std::string, int> kinds;
  std::map<std::string, double> kind_s, kind_mb;
  for (const auto& [k, s] : g.steps) {
    const std::string kind = step_kind_name(s.kind);
    ++kinds[kind];
    kind_s[kind] += p.steps.at(k).seconds;
    kind_mb[kind] = std::max(kind_mb[kind], p.steps.at(k).memory_mb);
  }
  if (o.json) {
    Json cells = Json::array();
    for (size_t i = 0; i < g.cells.size(); ++i) {
      const Cell& c = g.cells[i];
      const CellEstimate& e = p.cells[i];
      cells.push_back({{"cell", c.key}, {"label", c.label(cfg)}, {"seconds", e.seconds}, {"shared_seconds", e.shared_seconds},
                       {"memory_mb", e.memory_mb}, {"done", e.done}});
    }
    Json steps = Json::array();
    for (const auto& k : g.order) {
      const Step& s = g.step(k);
      const StepEstimate& e = p.steps.at(k);
      steps.push_back({{"key", k}, {"kind", step_kind_name(s.kind)}, {"label", s.label}, {"cells", s.cells.size()},
                       {"seconds", e.seconds}, {"memory_mb", e.memory_mb}, {"done", e.done}, {"scale", e.scale}});
    }
    std::printf("%s\n", Json{{"study", cfg.name}, {"gflops", p.gflops}, {"threads", p.threads},
                             {"total_seconds", p.total_seconds}, {"remaining_seconds", p.remaining_seconds},
                             {"peak_memory_mb", p.peak_memory_mb}, {"scale_by_kind", p.scale_by_kind},
                             {"cells", cells}, {"steps", steps}}
                            .dump(1)
                            .c_str());
    return 0;
  }
  std::printf("study %s: %zu models, %zu calibration sets, %zu methods, %zu evaluations, %zu KV settings, %zu seed(s)\n",
              cfg.name.c_str(), cfg.models.size(), cfg.calib.size(), cfg.methods.size(), cfg.evals.size(),
              cfg.kv.size(), cfg.seeds.size());
  std::printf("grid: %zu cells, %zu steps (", g.cells.size(), g.steps.size());
  bool first = true;
  for (const auto& [k, n] : kinds) std::printf("%s%d %s", first ? "" : ", ", n, k.c_str()), first = false;
  std::printf(")\n");
  std::printf("estimates at %.0f GFLOP/s (sgemm probe, %d threads)", p.gflops, p.threads);
  if (!p.scale_by_kind.empty()) {
    std::printf(", scaled by this study's measured timings:");
    for (const auto& [k, v] : p.scale_by_kind) std::printf(" %s x%.2f", k.c_str(), v);
  }
  std::printf("\n\nshared work (one step, several cells):\n");
  for (const auto& k : g.order) {
    const Step& s = g.step(k);
    if (s.cells.size() < 2) continue;
    const StepEstimate& e = p.steps.at(k);
    std::printf("  %-60s %4zu cells  %9s  %8s%s\n", s.label.c_str(), s.cells.size(), secs(e.seconds).c_str(),
                mbs(e.memory_mb).c_str(), e.done ? "  (built)" : "");
  }
  std::printf("\ncells (own steps: quantization and evaluations; shared: their share of the shared work):\n");
  std::printf("  %4s  %-64s %10s %10s %9s  %s\n", "#", "cell", "own", "shared", "memory", "status");
  for (size_t i = 0; i < g.cells.size(); ++i) {
    const CellEstimate& e = p.cells[i];
    std::printf("  %4zu  %-64s %10s %10s %9s  %s\n", i, g.cells[i].label(cfg).c_str(), secs(e.seconds).c_str(),
                secs(e.shared_seconds).c_str(), mbs(e.memory_mb).c_str(), e.done ? "done" : "to do");
  }
  std::printf("\nby step kind:\n");
  for (const auto& [k, n] : kinds)
    std::printf("  %-8s %5d steps  %10s  peak %s\n", k.c_str(), n, secs(kind_s[k]).c_str(), mbs(kind_mb[k]).c_str());
  std::printf("\ntotal: %s (remaining %s), peak memory of one step %s\n", secs(p.total_seconds).c_str(),
              secs(p.remaining_seconds).c_str(), mbs(p.peak_memory_mb).c_str());
  return 0;
}

// ---- status -----------------------------------------------------------------------------------

bool runner_alive(const Store& s) {
  const std::string r = s.meta("runner");
  if (r.empty()) return false;
  const Json j = Json::parse(r, nullptr, false);
  if (!j.is_object()) return false;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  const int pid = j.value("pid", 0);
  return j.value("host", std::string()) == host && pid > 0 && ::kill(pid, 0) == 0;
}

int status(const Common& c) {
  const StudyConfig cfg = load(c);
  const Grid g = build_grid(cfg);
  auto store = open_store(cfg, g);
  const bool alive = runner_alive(*store);
  std::map<std::string, int> n;
  const auto rows = store->cells();
  for (const auto& r : rows) ++n[r.status];
  std::printf("study %s (%s): %zu cells: %d done, %d running, %d failed, %d pending\n", cfg.name.c_str(),
              store->path().c_str(), rows.size(), n["done"], alive ? n["running"] : 0, n["failed"],
              n["pending"] + (alive ? 0 : n["running"]));
  for (const auto& r : rows) {
    if (r.status == "done") continue;
    std::string st = r.status;
    if (st == "running" && !alive) st = "pending (interrupted)";
    std::printf("  %-22s %s%s\n", st.c_str(), r.label.c_str(), r.error.empty() ? "" : (": " + r.error).c_str());
  }
  return 0;
}

// ---- table ------------------------------------------------------------------------------------

struct TableOpts {
  Common c;
  TableOptions t;
  bool robustness_only = false;
  std::string out;
};

int table(const TableOpts& o) {
  const StudyConfig cfg = load(o.c);
  if (!file_exists(store_path(cfg))) throw ArgError(store_path(cfg) + ": no store yet; run `calq study " + o.c.file + "`");
  auto store = Store::open(store_path(cfg));
  if (o.t.format != "md" && o.t.format != "csv") throw ArgError("--format must be md or csv");
  const std::string text = o.robustness_only ? render_robustness(*store, o.t) : render_tables(*store, o.t);
  if (o.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    write_file_atomic(o.out, text);
    info("wrote " + o.out);
  }
  return 0;
}

// ---- Slurm ------------------------------------------------------------------------------------

struct SubmitOpts {
  Common c;
  bool slurm = false, dry_run = false;
  SlurmOptions s;
};

std::string self_exe() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("calq") : p.string();
}

int submit(SubmitOpts& o) {
  if (!o.slurm) throw ArgError("calq study submit: name the engine: --slurm");
  const StudyConfig cfg = load(o.c);
  const Grid g = build_grid(cfg);
  o.s.calq = self_exe();
  o.s.config = fs::absolute(o.c.file).lexically_normal().string();
  o.s.data_root = cfg.data_root;
  const SlurmScripts sc = write_slurm_scripts(cfg, g, o.s);
  for (size_t i = 0; i < sc.phases.size(); ++i)
    std::printf("%-7s %4d array task(s)  %s\n", sc.phases[i].c_str(), sc.tasks[i], sc.scripts[i].c_str());
  std::printf("submit  %s\n", sc.submit.c_str());
  if (o.dry_run) return 0;
  const int rc = std::system(("bash '" + sc.submit + "'").c_str());
  if (rc != 0) throw ArgError(sc.submit + " failed (is sbatch on PATH?); the scripts are written: run it on the cluster's login node");
  return 0;
}

struct TaskOpts {
  Common c;
  std::string phase;
  int index = -1;
};

int run_cell(const TaskOpts& o) {
  const StudyConfig cfg = load(o.c);
  int index = o.index;
  if (index < 0) {
    const char* env = std::getenv("SLURM_ARRAY_TASK_ID");
    if (!env || !*env) throw ArgError("run-cell: give --index or run as a Slurm array task (SLURM_ARRAY_TASK_ID)");
    index = std::atoi(env);
  }
  RunOptions ro;
  ro.threads = threads();
  ro.log = line;
  ro.progress = bar("study " + cfg.name + " " + o.phase + " " + std::to_string(index));
  const RunSummary s = run_task(cfg, o.phase, index, ro);
  std::printf("phase %s task %d: %d cells done, %d failed; %d steps built, %d reused, %d failed; %.1f s\n",
              o.phase.c_str(), index, s.done, s.failed, s.steps_built, s.steps_reused, s.steps_failed, s.seconds);
  return s.failed || s.steps_failed ? 1 : 0;
}

int collect(const Common& c) {
  const StudyConfig cfg = load(c);
  const Grid g = build_grid(cfg);
  auto store = Store::open([&] {
    std::error_code ec;
    fs::create_directories(cfg.out, ec);
    return store_path(cfg);
  }());
  store.reset();
  auto s = open_store(cfg, g);  // syncs the grid and merges every result file
  std::map<std::string, int> n;
  for (const auto& r : s->cells()) ++n[r.status];
  std::printf("collected into %s: %d done, %d failed, %d pending\n", s->path().c_str(), n["done"], n["failed"],
              n["pending"] + n["running"]);
  return 0;
}

// ---- registration -----------------------------------------------------------------------------

CALQ_REGISTER_COMMAND({{"study"}, "Run a study: models x calibration sets x methods x evaluations, cached and resumable",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<RunOpts>();
                         add_common(app, o->c, false);
                         app.add_option("-j,--jobs", o->jobs, "steps side by side (threads divided between them)")
                             ->check(CLI::PositiveNumber)
                             ->capture_default_str();
                         app.add_flag("--fail-fast", o->fail_fast, "stop at the first failed step (default: keep going)");
                         return [o] { return run(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"study", "plan"}, "Print the cells, the shared work and time/memory estimates",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<PlanOpts>();
                         add_common(app, o->c);
                         app.add_option("--gflops", o->gflops, "GEMM rate to assume (default: measured by a probe)");
                         app.add_flag("--json", o->json, "machine-readable plan");
                         app.add_flag("--no-store", o->no_store, "do not scale by the store's measured timings");
                         return [o] { return plan(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"study", "status"}, "Done / running / failed / pending cells, with reasons",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Common>();
                         add_common(app, *o);
                         return [o] { return status(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"study", "table"}, "Pivot tables (calibration sets x methods, delta vs float) and robustness",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<TableOpts>();
                         add_common(app, o->c);
                         app.add_option("--format", o->t.format, "md | csv")->capture_default_str();
                         app.add_option("--metric", o->t.metrics, "only these evaluations, e.g. ppl:wikitext2 or 'acc:*'");
                         app.add_flag("--robustness", o->robustness_only, "only the robustness summary");
                         app.add_option("-o,--output", o->out, "write to this file");
                         return [o] { return table(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"study", "submit"}, "Write (and submit) Slurm job arrays for the study",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<SubmitOpts>();
                         add_common(app, o->c);
                         app.add_flag("--slurm", o->slurm, "use Slurm (sbatch job arrays)");
                         app.add_option("--partition", o->s.partition, "#SBATCH --partition");
                         app.add_option("--time", o->s.time, "#SBATCH --time, e.g. 04:00:00");
                         app.add_option("--mem", o->s.mem, "#SBATCH --mem, e.g. 64G");
                         app.add_option("--cpus-per-task", o->s.cpus_per_task, "#SBATCH --cpus-per-task");
                         app.add_option("--account", o->s.account, "#SBATCH --account");
                         app.add_option("--qos", o->s.qos, "#SBATCH --qos");
                         app.add_option("--max-parallel", o->s.max_parallel, "array tasks running at once (%N)");
                         app.add_option("--sbatch-arg", o->s.extra, "another #SBATCH line, e.g. --sbatch-arg=--exclusive");
                         app.add_flag("--dry-run", o->dry_run, "write the scripts only");
                         return [o] { return submit(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"study", "run-cell"}, "Run one array task of a phase (what the Slurm scripts run)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<TaskOpts>();
                         add_common(app, o->c);
                         app.add_option("--phase", o->phase, "prep | shared | cells")->required();
                         app.add_option("--index", o->index, "task index (default: $SLURM_ARRAY_TASK_ID)");
                         return [o] { return run_cell(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"study", "collect"}, "Merge the result files of array tasks into the study's store",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Common>();
                         add_common(app, *o);
                         return [o] { return collect(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
