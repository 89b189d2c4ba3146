// `calq study report`: a study's results store and the statistics in its cache as a report
// input (report/input.h), so a study gets the same page as loose files (docs/report.md).
//   results: every metric of every done cell (study::result_records, the numbers of
//            `calq study table`), with the cell's report settings (bits, group size, α, KV bits);
//            except the perplexity a KLD evaluation also measures (no float baseline; in study-table.*);
//   stats:   the statistics artifact of every (model, calibration set) of the grid that is
//            complete in the cache (a study with `keep` without "stats" has deleted them).
// With more than one seed, calibration-set labels carry the seed ("c4 s1"), as the tables' rows do.
#pragma once
#include <string>
#include <vector>

#include "report/input.h"
#include "report/report.h"
#include "study/grid.h"
#include "study/store.h"

namespace calq::report {

struct StudyReportInput {
  ReportInput input;
  std::vector<std::string> missing_stats;  // labels of statistics steps not (or no longer) in the cache
};

StudyReportInput study_report_input(const study::StudyConfig& c, const study::Grid& g, const study::Store& s);

struct StudyReportSummary {
  ReportSummary report;
  std::vector<std::string> missing_stats;
};

// The report of a study into `out_dir` (report/report.h), plus the study's own tables
// (`calq study table`): study-table.csv (long form) and study-table.md (pivots, robustness).
// ArgError when the store has no finished cell and the cache no statistics.
StudyReportSummary write_study_report(const study::StudyConfig& c, const study::Grid& g, const study::Store& s,
                                      const std::string& out_dir, const ReportOptions& opt = {});

}  // namespace calq::report
