// calq report -o DIR [--title T] --stats MODEL:SET=FILE ... --eval MODEL:SET[:METHOD]=FILE ...
//             [--set SET=GROUP ...] [--synthetic MODEL ...] [--input input.json] [--write-input F]
// The study report over loose statistics and results files (src/report/, docs/report.md):
// DIR/index.html, one SVG (+ PNG) and one CSV per figure, the tables as CSV, input.json.
#include <cstdio>
#include <memory>

#include "command.h"
#include "io/mapped_file.h"
#include "report/gnuplot.h"
#include "report/loose_files.h"
#include "report/report.h"

namespace calq::cli {
namespace {

struct ReportOpts {
  report::LooseFiles files;
  std::string out, input, write_input;
  double k = 8.0;
  bool keep_scripts = false;
};

int run(ReportOpts& o) {
  report::ReportOptions ro;
  ro.gnuplot = report::find_gnuplot();  // before any work: a missing gnuplot is the first error
  report::ReportInput in;
  if (!o.input.empty()) {
    if (!o.files.stats.empty() || !o.files.evals.empty())
      throw UsageError("report: give either --input or --stats/--eval files, not both");
    in = report::report_input_from_json(load_json_file(o.input), o.input);
    if (!o.files.title.empty()) in.title = o.files.title;
  } else {
    if (o.files.stats.empty() && o.files.evals.empty())
      throw UsageError("report: nothing to report: give --stats and/or --eval files (or --input)");
    in = report::build_report_input(o.files);
  }
  if (!o.write_input.empty()) write_file_atomic(o.write_input, report::report_input_to_json(in).dump(1) + "\n");
  ro.figures.outliers.rel_k = o.k;
  ro.keep_scripts = o.keep_scripts;
  const auto sum = report::write_report(in, o.out, ro);
  std::printf("wrote %s: %d figures, %d tables, %d not drawn (no data)\n", sum.index.c_str(), sum.figures, sum.tables,
              sum.omitted);
  return 0;
}

CALQ_REGISTER_COMMAND({{"report"}, "The study report (figures, tables, CSV) from statistics and results files", [](CLI::App& app) -> Runner {
  auto o = std::make_shared<ReportOpts>();
  app.add_option("-o,--out", o->out, "report folder (index.html, *.svg, *.png, *.csv)")->required();
  app.add_option("--stats", o->files.stats, "MODEL:SET=FILE.stats.safetensors (repeat)");
  app.add_option("--eval", o->files.evals, "MODEL:SET[:METHOD]=RESULTS.json from calq eval (repeat; SET '-' = none)");
  app.add_option("--set", o->files.groups, "SET=GROUP: quality | content | language | other (default: from the set's builder)");
  app.add_option("--synthetic", o->files.synthetic, "a model label whose weights are synthetic (repeat)");
  app.add_option("--title", o->files.title, "page title");
  app.add_option("--input", o->input, "a report input JSON (format calq-report-input) instead of files");
  app.add_option("--write-input", o->write_input, "also write the input built from the files as JSON");
  app.add_option("-k,--k", o->k, "relative outlier factor (channel absmax > k x median)")->capture_default_str();
  app.add_flag("--keep-scripts", o->keep_scripts, "keep the gnuplot scripts in OUT/gnuplot/");
  return [o] { return run(*o); };
}});

}  // namespace
}  // namespace calq::cli
