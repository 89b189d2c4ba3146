// `calq study report` on a tiny study (tests/study_fixture.h): every number a figure's CSV holds
// equals the store's (bitwise, as the report's CSV writes numbers that read back exactly), the
// statistics of every calibration set feed the statistics figures, and the KV axis is drawn.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "io/mapped_file.h"
#include "report/gnuplot.h"
#include "study/config.h"
#include "study/runner.h"
#include "study/store.h"
#include "study/table.h"
#include "study_fixture.h"
#include "test_util.h"

namespace calq {
namespace {

namespace fs = std::filesystem;

// A CSV file as header-named rows (the report's CSV: no field of these files holds a comma).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t col(const std::string& name) const {
    const size_t i = size_t(std::find(header.begin(), header.end(), name) - header.begin());
    EXPECT_LT(i, header.size()) << name;
    return i;
  }
};

Csv read_csv(const std::string& path) {
  Csv c;
  std::ifstream f(path);
  std::string line;
  for (bool first = true; std::getline(f, line); first = false) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    (first ? c.header : c.rows.emplace_back()) = cells;
  }
  return c;
}

double num(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

int json_int(const Json& j, const char* key) { return j.contains(key) ? j.at(key).get<int>() : -1; }

TEST(StudyReportSlow, FigureCsvEqualsTheStore) {
  try {
    report::find_gnuplot();
  } catch (const report::MissingToolError&) {
    GTEST_SKIP() << "gnuplot is not installed (Debian gnuplot-nox; scripts/deps.sh): no report";
  }
  const std::string dir = test::temp_path("report_study", "csv");
  fs::remove_all(dir);
  fs::create_directories(dir);
  bool ok = false;
  const std::string log = test::run_tiny_report_study(dir, &ok);
  ASSERT_TRUE(ok) << log;
  const std::string rep = dir + "/report";

  const study::StudyConfig cfg = study::load_study_config(dir + "/study.toml", test::data());
  auto store = study::Store::open(study::store_path(cfg));
  const auto records = study::result_records(*store);
  ASSERT_FALSE(records.empty());

  // 1. Every calibrated number of the store is one row of a calibration-set figure, bitwise; its
  //    float_value is the float model's (16-bit KV cache) number.
  std::map<std::tuple<std::string, std::string, int, std::string>, std::vector<std::string>> csv_rows;
  Csv any;
  for (const char* group : {"quality", "language"}) {
    const Csv c = read_csv(rep + "/calib-" + group + "-stories260k.csv");
    ASSERT_FALSE(c.rows.empty()) << group;
    for (const auto& r : c.rows) {
      const std::string kv = r[c.col("kv_bits")];
      const auto key = std::make_tuple(r[c.col("calib_set")], r[c.col("method")], kv.empty() ? -1 : std::stoi(kv), r[c.col("eval")]);
      EXPECT_TRUE(csv_rows.emplace(key, r).second) << "two rows for one number";
    }
    any = c;
  }
  std::map<std::string, double> float_kv16;
  for (const auto& r : records)
    if (r.method == "float" && r.kv_label == "kv16") float_kv16[r.eval] = r.value;
  size_t calibrated = 0;
  for (const auto& r : records) {
    if (r.calib.empty()) continue;
    ++calibrated;
    const auto it = csv_rows.find({r.calib, r.method, json_int(r.settings, "kv_bits"), r.eval});
    ASSERT_NE(it, csv_rows.end()) << r.cell << " " << r.calib << " " << r.method_label << " " << r.kv_label;
    const auto& row = it->second;
    EXPECT_EQ(num(row[any.col("value")]), r.value) << r.cell;
    if (r.stderr_ >= 0) {
      EXPECT_EQ(num(row[any.col("stderr")]), r.stderr_) << r.cell;
    }
    EXPECT_EQ(num(row[any.col("float_value")]), float_kv16.at(r.eval)) << r.cell;
  }
  EXPECT_EQ(calibrated, csv_rows.size());  // and no row the store does not have
  // 4 sets x (GPTQ at KV 16 and 4, SmoothQuant at 16) x 1 perplexity.
  EXPECT_EQ(calibrated, 12u);

  // 2. The KV axis: the float model at 4 and 16 bits; GPTQ's median over the four sets.
  const Csv kv = read_csv(rep + "/bits-kv-stories260k.csv");
  std::map<std::pair<std::string, int>, double> kv_median;
  for (const auto& r : kv.rows) kv_median[{r[kv.col("series")], std::stoi(r[kv.col("bits")])}] = num(r[kv.col("median")]);
  std::vector<double> gptq_kv4;
  for (const auto& r : records) {
    if (r.method == "float") {
      EXPECT_EQ(kv_median.at({"float", r.kv_label == "kv16" ? 16 : 4}), r.value) << r.kv_label;
    }
    if (r.method == "gptq" && r.kv_label != "kv16") gptq_kv4.push_back(r.value);
  }
  ASSERT_EQ(gptq_kv4.size(), 4u);
  std::sort(gptq_kv4.begin(), gptq_kv4.end());
  EXPECT_EQ(kv_median.at({"GPTQ w4g32", 4}), 0.5 * (gptq_kv4[1] + gptq_kv4[2]));

  // 3. The statistics figures read every set's file: depth rows of all four sets, histograms of
  //    the two languages, the heat map's per-set rows and their maximum.
  std::set<std::string> depth_sets, hist_sets, heat_sets;
  const Csv depth = read_csv(rep + "/depth-stories260k.csv");
  for (const auto& r : depth.rows) depth_sets.insert(r[depth.col("calib_set")]);
  const Csv hist = read_csv(rep + "/hist-stories260k.csv");
  for (const auto& r : hist.rows) hist_sets.insert(r[hist.col("calib_set")]);
  const Csv heat = read_csv(rep + "/heatmap-stories260k.csv");
  for (const auto& r : heat.rows) heat_sets.insert(r[heat.col("calib_set")]);
  EXPECT_EQ(depth_sets, (std::set<std::string>{"tinystories", "punct", "eng_Latn", "fra_Latn"}));
  EXPECT_EQ(hist_sets, (std::set<std::string>{"eng_Latn", "fra_Latn"}));
  EXPECT_EQ(heat_sets, (std::set<std::string>{"tinystories", "punct", "eng_Latn", "fra_Latn", "all sets (max)"}));
  for (const char* f : {"similarity-stories260k.csv", "convergence-stories260k.csv", "robustness.csv", "bits-w-stories260k.csv",
                        "bits-a-stories260k.csv", "table-stories260k-ppl-ts.csv", "index.html"})
    EXPECT_TRUE(fs::exists(rep + "/" + f)) << f;

  // 4. The study's own table beside the figures, as `calq study table --format csv` writes it.
  study::TableOptions t;
  t.format = "csv";
  EXPECT_EQ(read_file(rep + "/study-table.csv"), study::render_tables(*store, t));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace calq
