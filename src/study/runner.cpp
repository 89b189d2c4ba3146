#include "study/runner.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "kernels/threads.h"
#include "study/plan.h"
#include "study/results.h"
#include "study/steps.h"
#include "study/store.h"
#include "util/error.h"

namespace calq::study {

namespace fs = std::filesystem;

std::string store_path(const StudyConfig& c) { return path_join(c.out, "study.sqlite"); }

std::unique_ptr<Store> open_store(const StudyConfig& c, const Grid& g) {
  std::error_code ec;
  fs::create_directories(c.out, ec);
  if (ec) throw IoError(c.out + ": cannot create the study folder (" + ec.message() + ")");
  auto store = Store::open(store_path(c));
  store->set_meta("study", c.name);
  store->set_meta("config_sha256", c.sha256);
  store->set_meta("calq_version", CALQ_VERSION);
  std::vector<CellRow> rows;
  for (const Cell& cell : g.cells) rows.push_back(planned_row(c, g, cell));
  store->sync_cells(rows);
  collect_results(c, g, *store);
  return store;
}

namespace {

using Clock = std::chrono::steady_clock;

// Every step a cell needs (its evaluations, its quantized model, its calibration set and that
// set's statistics), with their inputs, transitively.
std::vector<std::string> cell_closure(const StudyConfig& c, const Grid& g, const Cell& cell) {
  std::vector<std::string> v = cell.evals;
  if (!cell.quant.empty()) v.push_back(cell.quant);
  for (const auto& [k, s] : g.steps)
    if (s.kind == StepKind::Stats && std::find(s.cells.begin(), s.cells.end(), cell.key) != s.cells.end()) v.push_back(k);
  for (size_t i = 0; i < v.size(); ++i)
    for (const auto& d : g.step(v[i]).deps)
      if (std::find(v.begin(), v.end(), d) == v.end()) v.push_back(d);
  return v;
}

class Scheduler {
 public:
  Scheduler(const StudyConfig& c, const Grid& g, const RunOptions& o, Store* store)
      : c_(c), g_(g), o_(o), store_(store) {}

  // `cells`: to finish; `listed`: steps this run may build (empty: any it needs).
  RunSummary run(const std::vector<std::string>& cells, const std::vector<std::string>& extra,
                 const std::set<std::string>& listed) {
    const auto t0 = Clock::now();
    prepare(cells, extra, listed);
    const int jobs = std::max(1, o_.jobs);
    const int total = o_.threads > 0 ? o_.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    threads_per_step_ = std::max(1, total / jobs);
    report();
    std::vector<std::thread> workers;
    for (int i = 0; i < jobs; ++i) workers.emplace_back([this] { work(); });
    for (auto& w : workers) w.join();
    release_unkept();
    sum_.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    report(true);
    return sum_;
  }

 private:
  enum class St { Pending, Running, Done, Failed };
  struct Running {
    std::string label;
    int64_t done = 0, total = 0;
    std::string unit;
    Clock::time_point start = Clock::now();
  };

  const StudyConfig& c_;
  const Grid& g_;
  RunOptions o_;
  Store* store_;
  int threads_per_step_ = 1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, St> st_;
  std::map<std::string, std::string> err_;
  std::map<std::string, Json> rec_;
  std::map<std::string, std::vector<std::string>> closure_;  // target cell -> steps
  std::map<std::string, std::vector<std::string>> users_;    // step -> target cells
  std::set<std::string> finished_;                            // target cells finished in this run
  std::vector<std::string> targets_;
  std::map<std::string, Running> running_;
  bool stop_ = false;
  RunSummary sum_;

  void log(const std::string& s) {
    if (o_.log) o_.log(s);
  }

  void prepare(const std::vector<std::string>& cells, const std::vector<std::string>& extra,
               const std::set<std::string>& listed) {
    targets_ = cells;
    std::vector<std::string> need = extra;
    for (const auto& k : cells) {
      closure_[k] = cell_closure(c_, g_, *g_.cell(k));
      for (const auto& s : closure_[k]) {
        users_[s].push_back(k);
        need.push_back(s);
      }
    }
    for (size_t i = 0; i < need.size(); ++i)
      for (const auto& d : g_.step(need[i]).deps) need.push_back(d);
    for (const auto& k : need) {
      if (st_.count(k)) continue;
      const Step& s = g_.step(k);
      Json r = artifact_record(c_, s);
      if (!r.is_null()) {
        st_[k] = St::Done;
        rec_[k] = r;
        ++sum_.steps_reused;
        if (!file_exists(path_join(steps_dir(c_), k + ".json"))) record_step(s, r);
      } else if (!listed.empty() && !listed.count(k)) {
        throw ArgError("study: " + s.label + " is not built yet; it belongs to an earlier phase (run that phase first)");
      } else {
        st_[k] = St::Pending;
      }
    }
    for (const auto& k : cells)
      if (store_) store_->set_status(k, "running");
    // Cells whose steps are all reused finish at once.
    for (const auto& k : cells) maybe_finish(k);
  }

  void record_step(const Step& s, Json r) {
    r["cost"] = step_cost(c_, g_, s);
    if (!r.contains("status")) r["status"] = "done";
    write_step_result(c_, r);
    if (store_) store_->put_step(step_row(r));
  }

  // The first runnable step in grid order; fails the steps whose inputs failed. Under mu_.
  std::string pick() {
    for (const auto& k : g_.order) {
      auto it = st_.find(k);
      if (it == st_.end() || it->second != St::Pending) continue;
      const Step& s = g_.step(k);
      bool ready = true;
      std::string failed_dep;
      for (const auto& d : s.deps) {
        const St ds = st_.at(d);
        if (ds == St::Failed) failed_dep = d;
        if (ds != St::Done) ready = false;
      }
      if (!failed_dep.empty()) {
        fail(k, "needs " + g_.step(failed_dep).label + ", which failed: " + err_[failed_dep]);
        return pick();
      }
      // Needed only by cells that already failed: skip.
      const auto& u = users_[k];
      if (!u.empty() && std::all_of(u.begin(), u.end(), [&](const std::string& cl) { return finished_.count(cl); })) {
        it->second = St::Failed;
        err_[k] = "skipped";
        continue;
      }
      if (ready) return k;
    }
    return "";
  }

  bool work_left() const {
    for (const auto& [k, s] : st_)
      if (s == St::Pending || s == St::Running) return true;
    return false;
  }

  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      std::string k;
      while (!stop_ && (k = pick()).empty() && !running_.empty()) cv_.wait(lock);
      if (stop_ || k.empty()) break;
      st_[k] = St::Running;
      const Step& s = g_.step(k);
      running_[k] = Running{s.label, 0, 0, "", Clock::now()};
      report();
      lock.unlock();
      Json record;
      std::string error;
      try {
        record = build_step(s, env_for(k));
      } catch (const std::exception& e) {
        error = e.what();
      }
      lock.lock();
      running_.erase(k);
      if (error.empty()) {
        st_[k] = St::Done;
        rec_[k] = record;
        ++sum_.steps_built;
        log("built " + s.label + " (" + fmt_seconds(record.value("seconds", 0.0)) + ")");
        try {
          record_step(s, record);
        } catch (const std::exception& e) {
          log("warning: " + std::string(e.what()));
        }
      } else {
        fail(k, error);
        if (!o_.keep_going) stop_ = true;
      }
      for (const auto& cell : users_[k]) maybe_finish(cell);
      report();
      cv_.notify_all();
    }
    cv_.notify_all();
  }

  StepEnv env_for(const std::string& key) {
    StepEnv e{c_, g_, 0, {}, {}};
    e.threads = threads_per_step_;
    e.progress = [this, key](const ProgressEvent& ev) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = running_.find(key);
      if (it == running_.end()) return;
      it->second.done = ev.done;
      it->second.total = ev.total;
      it->second.unit = ev.unit;
      report();
    };
    return e;
  }

  // Under mu_.
  void fail(const std::string& k, const std::string& error) {
    st_[k] = St::Failed;
    err_[k] = error;
    ++sum_.steps_failed;
    const Step& s = g_.step(k);
    log("failed " + s.label + ": " + error);
    try {
      write_step_result(c_, {{"kind", step_kind_name(s.kind)}, {"key", k}, {"label", s.label}, {"status", "failed"},
                             {"error", error}});
    } catch (const std::exception&) {
    }
    for (const auto& cell : users_[k]) maybe_finish(cell);
  }

  // Under mu_: a target cell is finished when all its steps are built, or one failed.
  void maybe_finish(const std::string& cell) {
    if (finished_.count(cell)) return;
    std::string error;
    for (const auto& s : closure_.at(cell)) {
      const St x = st_.at(s);
      if (x == St::Failed && err_[s] != "skipped") {
        error = g_.step(s).label + ": " + err_[s];
        break;
      }
      if (x != St::Done) return;
    }
    finished_.insert(cell);
    const Cell& c = *g_.cell(cell);
    const Json r = cell_result(c_, g_, c, rec_, error);
    try {
      write_cell_result(c_, r);
      if (store_) store_->put_cell(r);
    } catch (const std::exception& e) {
      log("warning: cell " + c.label(c_) + ": " + e.what());
    }
    if (error.empty()) {
      ++sum_.done;
      log("done " + c.label(c_));
    } else {
      ++sum_.failed;
      log("failed " + c.label(c_) + ": " + error);
    }
    release(cell);
  }

  // Under mu_: artifacts of kinds not kept, once every target cell using them is finished.
  void release(const std::string& cell) {
    for (const auto& k : closure_.at(cell)) {
      const Step& s = g_.step(k);
      if (c_.keep.count(step_kind_name(s.kind))) continue;
      const auto& u = users_[k];
      if (!std::all_of(u.begin(), u.end(), [&](const std::string& x) { return finished_.count(x); })) continue;
      if (st_.at(k) == St::Running) continue;
      remove_artifact(c_, s);
    }
  }

  // Artifacts of kinds not kept whose cells were all finished before this run.
  void release_unkept() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& cell : targets_)
      if (finished_.count(cell)) release(cell);
  }

  static std::string fmt_seconds(double s) {
    char b[32];
    std::snprintf(b, sizeof b, s < 100 ? "%.1f s" : "%.0f s", s);
    return b;
  }

  // Under mu_ (or before the workers start).
  void report(bool finished = false) {
    if (!o_.progress) return;
    std::string note;
    for (const auto& [k, r] : running_) {
      if (!note.empty()) {
        note += " (+" + std::to_string(running_.size() - 1) + " more)";
        break;
      }
      note = r.label;
      if (r.total > 0) {
        note += " " + std::to_string(r.done) + "/" + std::to_string(r.total) + " " + r.unit;
        const double el = std::chrono::duration<double>(Clock::now() - r.start).count();
        if (r.done > 0) note += ", ETA " + fmt_seconds(el * double(r.total - r.done) / double(r.done));
      }
    }
    report_progress(o_.progress, int64_t(finished_.size()), int64_t(targets_.size()), "cell", note, finished);
  }
};

std::vector<std::string> cells_to_run(const Grid& g, Store& store, RunSummary* sum) {
  std::map<std::string, std::string> status;
  for (const CellRow& r : store.cells()) status[r.cell] = r.status;
  std::vector<std::string> out;
  for (const Cell& c : g.cells) {
    if (status[c.key] == "done") {
      ++sum->already_done;
      continue;
    }
    out.push_back(c.key);
  }
  return out;
}

}  // namespace

RunSummary run_study(const StudyConfig& c, const RunOptions& o) {
  const Grid g = build_grid(c);
  auto store = open_store(c, g);
  RunSummary pre;
  const std::vector<std::string> todo = cells_to_run(g, *store, &pre);
  Scheduler s(c, g, o, store.get());
  RunSummary sum = s.run(todo, {}, {});
  sum.cells = int(g.cells.size());
  sum.already_done = pre.already_done;
  return sum;
}

const std::vector<std::string>& phases() {
  static const std::vector<std::string> p = {"prep", "shared", "cells"};
  return p;
}

std::vector<PhaseTask> phase_tasks(const StudyConfig& c, const Grid& g, const std::string& phase) {
  std::vector<PhaseTask> out;
  if (phase == "prep") {
    PhaseTask t{"synthetic models and calibration sets", {}, {}};
    for (const auto& k : g.order)
      if (g.step(k).kind == StepKind::Model || g.step(k).kind == StepKind::Calib) t.steps.push_back(k);
    if (!t.steps.empty()) out.push_back(t);
  } else if (phase == "shared") {
    for (size_t m = 0; m < c.models.size(); ++m) {
      PhaseTask t{"statistics and KLD references of " + c.models[m].label, {}, {}};
      for (const auto& k : g.order) {
        const Step& s = g.step(k);
        if ((s.kind == StepKind::Stats || s.kind == StepKind::KldRef) && s.model == int(m)) t.steps.push_back(k);
      }
      if (!t.steps.empty()) out.push_back(t);
    }
  } else if (phase == "cells") {
    std::map<std::string, size_t> by_quant;  // cells sharing a quantized model are one task
    for (const Cell& cell : g.cells) {
      if (!cell.quant.empty() && by_quant.count(cell.quant)) {
        PhaseTask& t = out[by_quant[cell.quant]];
        t.cells.push_back(cell.key);
        for (const auto& e : cell.evals) t.steps.push_back(e);
        continue;
      }
      PhaseTask t{cell.label(c), {}, {}};
      t.cells.push_back(cell.key);
      if (!cell.quant.empty()) {
        t.steps.push_back(cell.quant);
        by_quant[cell.quant] = out.size();
      }
      for (const auto& e : cell.evals) t.steps.push_back(e);
      out.push_back(t);
    }
  } else {
    throw ArgError("unknown phase '" + phase + "' (prep, shared or cells)");
  }
  return out;
}

RunSummary run_task(const StudyConfig& c, const std::string& phase, int index, const RunOptions& o) {
  const Grid g = build_grid(c);
  const std::vector<PhaseTask> tasks = phase_tasks(c, g, phase);
  if (index < 0 || index >= int(tasks.size()))
    throw ArgError("phase " + phase + " has " + std::to_string(tasks.size()) + " tasks; index " + std::to_string(index) +
                   " is out of range");
  const PhaseTask& t = tasks[size_t(index)];
  const std::set<std::string> listed(t.steps.begin(), t.steps.end());
  Scheduler s(c, g, o, nullptr);
  RunSummary sum = s.run(t.cells, t.steps, listed);
  sum.cells = int(t.cells.size());
  return sum;
}

}  // namespace calq::study
