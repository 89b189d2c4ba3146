#include "report/study_report.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "io/mapped_file.h"
#include "report/report.h"
#include "study/steps.h"
#include "study/table.h"
#include "util/fs.h"

namespace calq::report {

namespace {

std::string set_label(const study::StudyConfig& c, const std::string& calib, int64_t seed) {
  if (calib.empty() || c.seeds.size() < 2 || seed < 0) return calib;
  return calib + " s" + std::to_string(seed);
}

}  // namespace

StudyReportInput study_report_input(const study::StudyConfig& c, const study::Grid& g, const study::Store& s) {
  StudyReportInput out;
  ReportInput& in = out.input;
  in.title = "calq study report: " + c.name;
  // A KLD evaluation also measures the quantized model's perplexity on its windows; the float model
  // is not KLD-evaluated (its divergence is 0), so that perplexity has no baseline: left to study-table.*.
  std::set<std::string> kld_ppl;
  for (const auto& e : c.evals)
    if (e.kind == "kld") kld_ppl.insert("ppl:" + e.label);
  for (const study::ResultRecord& r : study::result_records(s)) {
    if (kld_ppl.count(r.eval)) continue;
    ResultRow row;
    row.model = r.model;
    row.synthetic = r.synthetic;
    row.calib.label = set_label(c, r.calib, r.seed);
    if (!r.calib.empty()) row.calib.group = r.calib_group.empty() ? "other" : r.calib_group;
    row.method = r.method;
    row.settings = method_settings_from_json(r.settings, s.path() + ": cell " + r.cell + " report_settings");
    row.eval = r.eval;
    row.value = r.value;
    row.stderr_ = r.stderr_ >= 0 ? r.stderr_ : NAN;
    row.source = "study.sqlite cell " + r.cell;
    in.results.push_back(std::move(row));
  }
  // Statistics in config order: models, then calibration sets, then seeds.
  std::vector<const study::Step*> steps;
  for (const auto& [key, st] : g.steps)
    if (st.kind == study::StepKind::Stats) steps.push_back(&st);
  std::sort(steps.begin(), steps.end(), [](const study::Step* a, const study::Step* b) {
    return std::tie(a->model, a->calib, a->seed) < std::tie(b->model, b->calib, b->seed);
  });
  for (const study::Step* sp : steps) {
    const study::Step& st = *sp;
    if (!study::artifact_complete(c, st)) {
      out.missing_stats.push_back(st.label);
      continue;
    }
    const auto& m = c.models.at(size_t(st.model));
    const auto& cal = c.calib.at(size_t(st.calib));
    StatsInput si;
    si.model = m.label;
    si.synthetic = m.synthetic;
    si.calib.label = set_label(c, cal.label, int64_t(st.seed));
    si.calib.group = cal.group;
    si.path = study::stats_path(c, st);
    in.stats.push_back(std::move(si));
  }
  return out;
}

StudyReportSummary write_study_report(const study::StudyConfig& c, const study::Grid& g, const study::Store& s,
                                      const std::string& out_dir, const ReportOptions& opt) {
  StudyReportSummary sum;
  StudyReportInput in = study_report_input(c, g, s);
  if (in.input.results.empty() && in.input.stats.empty())
    throw ArgError(s.path() + ": nothing to report: no finished cells and no statistics in the cache yet");
  sum.missing_stats = std::move(in.missing_stats);
  sum.report = write_report(in.input, out_dir, opt);
  // The study's own tables beside the figures: the long CSV of `calq study table --format csv`
  // and the Markdown pivot tables with the robustness summary.
  study::TableOptions t;
  t.format = "csv";
  write_file_atomic(path_join(out_dir, "study-table.csv"), study::render_tables(s, t));
  t.format = "md";
  write_file_atomic(path_join(out_dir, "study-table.md"), study::render_tables(s, t));
  return sum;
}

}  // namespace calq::report
