// Drawing the report with gnuplot (skipped when gnuplot is absent): the folder holds every file,
// the page is self-contained with unique ids, a missing gnuplot is a typed one-line error, and
// `calq report` over tiny OPT's statistics writes CSV files equal to the statistics.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "io/mapped_file.h"
#include "observe/act_stats.h"
#include "report/gnuplot.h"
#include "report/report.h"
#include "test_util.h"

namespace calq::report {
namespace {

namespace fs = std::filesystem;

bool have_gnuplot() {
  try {
    find_gnuplot();
    return true;
  } catch (const MissingToolError&) {
    return false;
  }
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cells.push_back(c);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    rows.push_back(cells);
  }
  return rows;
}

std::string collect_opt_stats(const std::string& dir, int seed, std::string* out) {
  const std::string set = dir + "/r" + std::to_string(seed) + ".safetensors";
  const std::string stats = dir + "/r" + std::to_string(seed) + ".stats.safetensors";
  const std::string calq = "CALQ_PROGRESS=0 '" + test::cli() + "' ";
  if (test::run_command(calq + "calib build random-tokens --vocab 128 --seed " + std::to_string(seed) +
                            " -n 8 -T 24 -o " + set, out) != 0 ||
      test::run_command(calq + "stats '" + test::data("models/tiny/opt") + "' --calib " + set + " -b 1 -q -o " + stats,
                        out) != 0)
    return "";
  return stats;
}

TEST(ReportRender, MissingGnuplotIsATypedError) {
  // The library takes the path (and the search path) as arguments; the CLI passes $CALQ_GNUPLOT.
  EXPECT_THROW(find_gnuplot("/nonexistent/gnuplot"), MissingToolError);
  try {
    find_gnuplot("/nonexistent/gnuplot", "", "CALQ_GNUPLOT");
    ADD_FAILURE() << "no error for a gnuplot that is not there";
  } catch (const MissingToolError& e) {
    EXPECT_STREQ(e.what(), "CALQ_GNUPLOT=/nonexistent/gnuplot is not an executable file");
  }
  std::string out;
  const int rc = test::run_command("CALQ_GNUPLOT=/nonexistent/gnuplot '" + test::cli() + "' report -o " +
                                       test::temp_path("report_render", "none") + " --stats m:s=x.stats.safetensors",
                                   &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("calq: error: CALQ_GNUPLOT=/nonexistent/gnuplot is not an executable file"), std::string::npos) << out;
  // Not on the search path: the error says what to install; the CLI searches $PATH.
  try {
    find_gnuplot("", "/nonexistent:/nonexistent2");
    ADD_FAILURE() << "no error without gnuplot on the search path";
  } catch (const MissingToolError& e) {
    EXPECT_NE(std::string(e.what()).find("gnuplot-nox"), std::string::npos) << e.what();
  }
  const int rc2 = test::run_command("env -u CALQ_GNUPLOT PATH=/nonexistent '" + test::cli() + "' report -o " +
                                        test::temp_path("report_render", "none") + " --stats m:s=x.stats.safetensors",
                                    &out);
  EXPECT_EQ(rc2, 1) << out;
  EXPECT_NE(out.find("calq: error: gnuplot not found on PATH"), std::string::npos) << out;
}

TEST(ReportRender, CliOnTinyOptWritesTheStatisticsAsCsv) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (Debian gnuplot-nox; scripts/deps.sh): not drawn";
  const std::string dir = test::temp_path("report_render", "cli");
  fs::create_directories(dir);
  std::string out;
  const std::string s0 = collect_opt_stats(dir, 0, &out), s1 = collect_opt_stats(dir, 1, &out);
  ASSERT_FALSE(s0.empty() || s1.empty()) << out;
  const std::string rep = dir + "/report";
  ASSERT_EQ(test::run_command("'" + test::cli() + "' report -o " + rep + " --synthetic opt --stats opt:r0=" + s0 +
                                  " --stats opt:r1=" + s1 + " --write-input " + dir + "/in.json",
                              &out),
            0)
      << out;
  EXPECT_NE(out.find("figures"), std::string::npos) << out;
  for (const char* f : {"index.html", "input.json", "heatmap-opt.svg", "heatmap-opt.png", "heatmap-opt.csv",
                        "depth-opt.csv", "hist-opt.svg", "similarity-opt.csv", "convergence-opt.csv"})
    EXPECT_TRUE(fs::exists(rep + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(rep + "/gnuplot"));  // scripts removed unless --keep-scripts
  // The heat map's data holds each statistics file's per-channel absmax exactly; channel 17 dominates.
  const ActStats st = load_stats(s0);
  const auto csv = read_csv(rep + "/heatmap-opt.csv");
  ASSERT_GE(csv.size(), 5u);
  ASSERT_EQ(csv[0][0], "calib_set");
  ASSERT_EQ(csv[0][4 + 17], "ch17");
  int r0_rows = 0;
  for (size_t i = 1; i < csv.size(); ++i) {
    if (csv[i][0] != "r0") continue;
    const TensorStats* t = st.find(csv[i][3]);
    ASSERT_NE(t, nullptr) << csv[i][3];
    for (int64_t c = 0; c < t->cols; ++c)
      ASSERT_EQ(std::strtod(csv[i][4 + size_t(c)].c_str(), nullptr), double(t->absmax(c))) << csv[i][3] << " ch" << c;
    EXPECT_GT(t->absmax(17), 8 * t->absmax(0)) << csv[i][3];
    ++r0_rows;
  }
  EXPECT_EQ(r0_rows, 4);
  // The per-layer outlier counts name channel 17 in every attention and MLP input.
  const auto depth = read_csv(rep + "/depth-opt.csv");
  const auto& h = depth[0];
  const size_t kind = size_t(std::find(h.begin(), h.end(), "kind") - h.begin());
  const size_t rel = size_t(std::find(h.begin(), h.end(), "relative_channels") - h.begin());
  int rows = 0;
  for (size_t i = 1; i < depth.size(); ++i)
    if (depth[i][kind] == "attn_in" || depth[i][kind] == "mlp_in") {
      EXPECT_EQ(depth[i][rel], "17");
      ++rows;
    }
  EXPECT_EQ(rows, 8);  // 2 layers x (attn_in, mlp_in) x both statistics files
  // The input written alongside reads back to the same report input.
  const ReportInput back = report_input_from_json(load_json_file(dir + "/in.json"), "in.json");
  ASSERT_EQ(back.stats.size(), 2u);
  EXPECT_EQ(back.stats[0].calib.group, "quality");  // random-tokens builder
  EXPECT_TRUE(back.stats[0].synthetic);
  fs::remove_all(dir);
}

TEST(ReportRender, FiguresWithoutDataBecomeNotes) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (Debian gnuplot-nox; scripts/deps.sh): not drawn";
  const std::string dir = test::temp_path("report_render", "partial");
  fs::create_directories(dir);
  std::string out;
  const std::string calq = "CALQ_PROGRESS=0 '" + test::cli() + "' ";
  ASSERT_EQ(test::run_command(calq + "calib build random-tokens --vocab 128 -n 4 -T 16 -o " + dir + "/r.safetensors", &out), 0) << out;
  // Only the MLP down-projection inputs: no attention or MLP inputs for the histograms and heat map.
  ASSERT_EQ(test::run_command(calq + "stats '" + test::data("models/tiny/opt") + "' --calib " + dir +
                                  "/r.safetensors --modules 'model.decoder.layers.*.fc2' -q -o " + dir + "/r.stats.safetensors",
                              &out),
            0)
      << out;
  ASSERT_EQ(test::run_command(calq + "report -o " + dir + "/rep --stats opt:r=" + dir + "/r.stats.safetensors", &out), 0) << out;
  const std::string html = read_file(dir + "/rep/index.html");
  EXPECT_FALSE(fs::exists(dir + "/rep/heatmap-opt.svg"));
  EXPECT_NE(html.find("Not drawn: opt: per-channel absmax, layer × channel (calibration set r) — no data for any of its panels"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "/rep/depth-opt.svg"));  // max |x| and kurtosis of the fc2 inputs
  fs::remove_all(dir);
}

TEST(ReportRender, PageIsSelfContainedWithUniqueIds) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (Debian gnuplot-nox; scripts/deps.sh): not drawn";
  const std::string dir = test::temp_path("report_render", "page");
  fs::create_directories(dir);
  std::string out;
  const std::string s0 = collect_opt_stats(dir, 3, &out);
  ASSERT_FALSE(s0.empty()) << out;
  ReportInput in;
  in.title = "a <title> & more";
  auto row = [](const std::string& set, const std::string& method, int bits, double v) {
    ResultRow r;
    r.model = "m_1";
    r.calib = {set, set.empty() ? "other" : "quality"};
    r.method = method;
    r.settings.w_bits = bits;
    r.eval = "ppl:wikitext2";
    r.value = v;
    return r;
  };
  in.results = {row("", "float", -1, 10), row("web", "gptq", 4, 11), row("punct", "gptq", 4, 12.5),
                row("", "rtn", 3, 30), row("", "rtn", 4, 14)};
  in.stats.push_back({"m_1", false, {"web", "quality"}, s0});
  const ReportSummary sum = write_report(in, dir + "/rep");
  const std::string html = read_file(sum.index);
  EXPECT_EQ(html.find("<?xml"), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
  EXPECT_NE(html.find("a &lt;title&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Every id on the page is unique (gnuplot's point shapes are prefixed per figure).
  std::set<std::string> ids;
  for (size_t i = html.find(" id="); i != std::string::npos; i = html.find(" id=", i + 1)) {
    const char q = html[i + 4];
    const size_t e = html.find(q, i + 5);
    EXPECT_TRUE(ids.insert(html.substr(i + 5, e - i - 5)).second) << html.substr(i + 5, e - i - 5);
  }
  for (const auto& id : sum.figure_ids) {
    EXPECT_TRUE(fs::exists(dir + "/rep/" + id + ".svg")) << id;
    EXPECT_TRUE(fs::exists(dir + "/rep/" + id + ".csv")) << id;
    EXPECT_NE(html.find("<figure class=\"fig\" id=\"" + id + "\""), std::string::npos) << id;
  }
  EXPECT_NE(std::find(sum.figure_ids.begin(), sum.figure_ids.end(), "bits-w-m-1"), sum.figure_ids.end());
  EXPECT_NE(html.find("Not drawn: m_1: KV-cache bits"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "/rep/table-m-1-ppl-wikitext2.csv"));
  // The figure's plot elements are in the page: 2 series + float line in the calibration figure.
  const size_t f = html.find("id=\"calib-quality-m-1\"");
  ASSERT_NE(f, std::string::npos);
  const std::string fig = html.substr(f, html.find("</figure>", f) - f);
  EXPECT_NE(fig.find("data-elements=\"2\""), std::string::npos);  // GPTQ w4, float line
  size_t groups = 0;
  for (size_t i = fig.find("calib-quality-m-1-gnuplot_plot_"); i != std::string::npos;
       i = fig.find("calib-quality-m-1-gnuplot_plot_", i + 1))
    ++groups;
  EXPECT_EQ(groups, 2u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace calq::report
