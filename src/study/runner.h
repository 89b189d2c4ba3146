// Running a study: the steps of the cells not yet done, in dependency order, `jobs` at a time
// (threads divided between them), each cell's result recorded as soon as its last step is built.
// Resumable at any moment: artifacts are atomic (study/steps.h), results are files written
// atomically and merged into the store in transactions, so a rerun after a kill continues with
// nothing lost and nothing finished recomputed. A failed step fails only the cells that need it
// (keep_going, the default); the others go on.
//
// Slurm (study/slurm.h) runs the same steps in three phases of array tasks: `prep` (synthetic
// models and calibration sets, one task), `shared` (statistics and float KLD references, one task
// per model), `cells` (one task per quantized model — the cells that share it — or per float
// cell). Tasks write only result files; `calq study collect` merges them into the store.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "study/grid.h"
#include "util/progress.h"

namespace calq::study {

class Store;

struct RunOptions {
  int jobs = 1;           // steps side by side
  int threads = 0;        // all steps together (0: every core); each step gets threads / jobs
  bool keep_going = true; // a failed step fails its cells only; false: stop at the first failure
  ProgressFn progress;    // cells finished / cells to run; note: the running steps, the current cell's ETA
  std::function<void(const std::string&)> log;  // one line per finished step or cell
};

struct RunSummary {
  int cells = 0;            // in the grid
  int already_done = 0;     // done before this run
  int done = 0, failed = 0; // finished in this run
  int steps_built = 0, steps_reused = 0, steps_failed = 0;
  double seconds = 0;
};

// Runs the whole study into its store (<out>/study.sqlite).
RunSummary run_study(const StudyConfig& c, const RunOptions& o);

// The Slurm phases and their tasks (deterministic for a given config).
struct PhaseTask {
  std::string label;
  std::vector<std::string> steps;  // built by this task
  std::vector<std::string> cells;  // finished (result files written) by this task
};
const std::vector<std::string>& phases();  // "prep", "shared", "cells"
std::vector<PhaseTask> phase_tasks(const StudyConfig& c, const Grid& g, const std::string& phase);

// One array task: builds its steps (those of earlier phases must be complete) and writes the
// result files of its cells. The store is not touched.
RunSummary run_task(const StudyConfig& c, const std::string& phase, int index, const RunOptions& o);

// Opens <out>/study.sqlite, brings its cells in line with the grid and merges the result files.
std::unique_ptr<Store> open_store(const StudyConfig& c, const Grid& g);
std::string store_path(const StudyConfig& c);

}  // namespace calq::study
