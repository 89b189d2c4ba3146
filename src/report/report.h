// `calq report` / `calq study report`: a ReportInput (report/input.h) -> a report folder:
//   index.html        the self-contained page (report/html.h)
//   <figure>.svg      every figure; <figure>.png for raster figures (heat maps)
//   <figure>.csv      the numbers behind every figure; table-*.csv the pivot tables
//   input.json        the input itself (report_input_to_json), so a report can be redrawn
// docs/report.md describes each figure and file.
#pragma once
#include <string>
#include <vector>

#include "report/figures.h"
#include "report/input.h"

namespace calq::report {

struct ReportOptions {
  FigureOptions figures;
  std::string gnuplot;        // gnuplot executable (empty: find_gnuplot() on the default search path)
  bool keep_scripts = false;  // keep the gnuplot scripts in <out>/gnuplot/
};

struct ReportSummary {
  std::string index;                  // path of index.html
  int figures = 0, tables = 0, omitted = 0;
  std::vector<std::string> figure_ids;
};

// Every section of the report, figure ids made unique (report order).
std::vector<Section> report_sections(const ReportInput& in, const FigureOptions& opt = {});

// Validates the input, finds gnuplot (MissingToolError before any work), builds and draws every
// figure and writes the folder `out_dir` (created; existing report files are replaced).
ReportSummary write_report(const ReportInput& in, const std::string& out_dir, const ReportOptions& opt = {});

}  // namespace calq::report
