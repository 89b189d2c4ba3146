// The report's figures as data (no drawing): every number behind a figure equals the input's,
// the planted outlier channel of tiny OPT (channel 17) stands out in the heat map and the depth
// profile, and figures without data are noted, not drawn.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "analysis/compare.h"
#include "model/decoder.h"
#include "observe/stats_runner.h"
#include "report/figures.h"
#include "test_util.h"

namespace calq::report {
namespace {

namespace fs = std::filesystem;

ResultRow row(const std::string& model, const std::string& set, const std::string& group, const std::string& method,
              int w_bits, const std::string& eval, double v, double se = NAN) {
  ResultRow r;
  r.model = model;
  r.calib = {set, set.empty() ? "other" : group};
  r.method = method;
  r.settings.w_bits = w_bits;
  if (method == "gptq" || method == "rtn") r.settings.group_size = 32;
  r.eval = eval;
  r.value = v;
  r.stderr_ = se;
  return r;
}

const Section& section(const std::vector<Section>& all, const std::string& id) {
  for (const auto& s : all)
    if (s.id == id) return s;
  throw std::runtime_error("no section " + id);
}

const Figure* figure(const Section& s, const std::string& id) {
  for (const auto& f : s.figures)
    if (f.id == id) return &f;
  return nullptr;
}

ReportInput results_input() {
  ReportInput in;
  in.results = {row("A", "", "", "float", -1, "ppl:wt", 10.0, 0.5),
                row("A", "web", "quality", "gptq", 4, "ppl:wt", 11.0, 0.5),
                row("A", "punct", "quality", "gptq", 4, "ppl:wt", 13.0),
                row("A", "fra_Latn", "language", "gptq", 4, "ppl:wt", 12.0, 0.25),
                row("A", "web", "quality", "awq", 4, "ppl:wt", 10.5),
                row("A", "", "", "rtn", 3, "ppl:wt", 20.0),
                row("A", "", "", "rtn", 4, "ppl:wt", 14.0),
                row("B", "", "", "float", -1, "acc:piqa", 0.75),
                row("B", "web", "quality", "gptq", 4, "acc:piqa", 0.70),
                row("B", "punct", "quality", "gptq", 4, "acc:piqa", 0.74)};
  in.validate();
  return in;
}

TEST(ReportFigures, CalibrationGroupFigureHoldsTheInputNumbers) {
  const auto secs = results_sections(results_input());
  const Section& cal = section(secs, "calibration");
  const Figure* f = figure(cal, "calib-quality-a");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->panels.size(), 1u);
  const Panel& p = f->panels[0];
  EXPECT_EQ(p.x.categories, (std::vector<std::string>{"web", "punct"}));
  ASSERT_EQ(p.series.size(), 2u);  // GPTQ w4g32, AWQ w4
  EXPECT_EQ(p.series[0].name, "GPTQ w4g32");
  EXPECT_EQ(p.series[0].y, (std::vector<double>{11.0, 13.0}));
  EXPECT_EQ(p.series[0].hi, (std::vector<double>{11.5, 13.0}));  // stderr where known, none for punct
  EXPECT_EQ(p.series[1].y, (std::vector<double>{10.5}));
  EXPECT_EQ(p.series[0].color, "#0072B2");  // GPTQ blue, AWQ vermillion, in every figure
  EXPECT_EQ(p.series[1].color, "#D55E00");
  ASSERT_EQ(p.hlines.size(), 1u);
  EXPECT_EQ(p.hlines[0].y, 10.0);
  // CSV: one row per point, with the float value and the relative change.
  ASSERT_EQ(f->data.rows.size(), 3u);
  const auto& h = f->data.header;
  const size_t vi = size_t(std::find(h.begin(), h.end(), "value") - h.begin());
  const size_t di = size_t(std::find(h.begin(), h.end(), "delta_vs_float") - h.begin());
  EXPECT_EQ(f->data.rows[0][vi], "11");
  EXPECT_NEAR(std::strtod(f->data.rows[0][di].c_str(), nullptr), 10.0, 1e-12);  // +10 %
  EXPECT_EQ(f->markers(), 2 + 1 + 1 + 1);
  EXPECT_EQ(f->elements(), 3);
  EXPECT_NE(figure(cal, "calib-language-a"), nullptr);
  EXPECT_EQ(figure(cal, "calib-content-a"), nullptr);
  bool noted = false;
  for (const auto& o : cal.omitted) noted |= o.what == "A: content (task data)";
  EXPECT_TRUE(noted);
}

TEST(ReportFigures, RobustnessSpreadAndBitsAxes) {
  const auto secs = results_sections(results_input());
  const Figure* rob = figure(section(secs, "robustness"), "robustness");
  ASSERT_NE(rob, nullptr);
  ASSERT_EQ(rob->panels.size(), 2u);  // ppl:wt, acc:piqa
  const Panel& ppl = rob->panels[0];
  EXPECT_EQ(ppl.x.categories, (std::vector<std::string>{"A", "B"}));
  const Series& g = ppl.series[0];  // gptq over web, punct, fra_Latn: +10 %, +30 %, +20 %
  ASSERT_EQ(g.y.size(), 1u);
  EXPECT_NEAR(g.y[0], 20.0, 1e-12);
  EXPECT_NEAR(g.lo[0], 10.0, 1e-12);
  EXPECT_NEAR(g.hi[0], 30.0, 1e-12);
  const Panel& acc = rob->panels[1];  // accuracy: percentage points, -5 and -1
  EXPECT_NEAR(acc.series[0].lo[0], -5.0, 1e-9);
  EXPECT_NEAR(acc.series[0].hi[0], -1.0, 1e-9);
  EXPECT_NEAR(acc.series[0].x[0], 1.0 - 0.18 / 2, 1e-12);  // model B, dodged left of AWQ
  const Section& bits = section(secs, "bits");
  const Figure* w = figure(bits, "bits-w-a");
  ASSERT_NE(w, nullptr);
  const Series* rtn = nullptr;
  for (const auto& s : w->panels[0].series)
    if (s.name == "RTN g32") rtn = &s;
  ASSERT_NE(rtn, nullptr);
  // At 3 and 4 bits, dodged left: the first of three methods, 0.12 apart (the CSV keeps the bits).
  ASSERT_EQ(rtn->x.size(), 2u);
  EXPECT_NEAR(rtn->x[0], 3 - 0.12, 1e-12);
  EXPECT_NEAR(rtn->x[1], 4 - 0.12, 1e-12);
  EXPECT_EQ(w->data.rows[0][4], "3");
  EXPECT_EQ(rtn->y, (std::vector<double>{20.0, 14.0}));
  EXPECT_EQ(figure(bits, "bits-kv-a"), nullptr);
  int notes = 0;
  for (const auto& o : bits.omitted) notes += o.why == "no results quantize this axis";
  EXPECT_EQ(notes, 4);  // A: a, kv; B: a, kv
  const Section& tables = section(secs, "tables");
  ASSERT_EQ(tables.tables.size(), 2u);
  const Table& t = tables.tables[0].table;
  EXPECT_EQ(t.header, (std::vector<std::string>{"method", "none", "web", "punct", "fra_Latn"}));
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"float", "10", "", "", ""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"RTN w3g32", "20 (+100.00)", "", "", ""}));
  EXPECT_EQ(t.rows[3][0], "GPTQ w4g32");
  EXPECT_EQ(t.rows[3][3], "13 (+30.00)");
  EXPECT_EQ(t.rows[4][0], "AWQ w4");
}

TEST(ReportFigures, CsvAndExactNumbers) {
  Table t{{"a", "b"}, {{"x,y", "1"}, {"q\"z", "2"}}};
  EXPECT_EQ(t.csv(), "a,b\n\"x,y\",1\n\"q\"\"z\",2\n");
  for (double v : {0.1, 1.0 / 3, 6.02214076e23, -2.5e-300, 17.0, 3.4028234663852886e38})
    EXPECT_EQ(std::strtod(fmt_exact(v).c_str(), nullptr), v);
  EXPECT_EQ(fmt_exact(0.5), "0.5");
  EXPECT_EQ(slug("Llama-2 7B (hf)"), "llama-2-7b-hf");
}

// Tiny OPT has LayerNorm weight 17 scaled x20 in both layers: channel 17 is an outlier of every
// attention and MLP input.
class ReportStatsFigures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = Decoder::load(test::data("models/tiny/opt"));
    StatsRunOptions o;
    o.batch = 1;
    dir_ = test::temp_path("report_figs", "d");
    fs::create_directories(dir_);
    for (uint32_t seed : {1u, 2u}) {
      const std::string p = dir_ + "/s" + std::to_string(seed) + ".stats.safetensors";
      save_stats(collect_stats(*m, test::lcg_calib_set(8, 24, 0, 128, seed), o), p);
      in_.stats.push_back({"opt", true, {"s" + std::to_string(seed), "quality"}, p});
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static inline std::string dir_;
  static inline ReportInput in_;
};

TEST_F(ReportStatsFigures, HeatmapCsvIsTheStatsAbsmax) {
  const ModelStats ms = load_model_stats(in_, "opt");
  const Figure f = heatmap_figure(ms);
  EXPECT_TRUE(f.raster);
  ASSERT_EQ(f.panels.size(), 2u);  // attention and MLP inputs
  // Every set's rows are its file's per-channel absmax exactly; the drawn rows are the maximum over
  // the sets (both statistics files feed the map, not only the first).
  const ActStats s1 = load_stats(in_.stats[0].path), s2 = load_stats(in_.stats[1].path);
  std::map<std::string, size_t> rows_per_set;
  const auto& h = f.data.header;
  ASSERT_EQ(h[0], "calib_set");
  ASSERT_EQ(h[4 + 17], "ch17");
  for (const auto& r : f.data.rows) {
    const TensorStats* t1 = s1.find(r[3]);
    const TensorStats* t2 = s2.find(r[3]);
    ASSERT_NE(t1, nullptr) << r[3];
    ASSERT_NE(t2, nullptr) << r[3];
    const auto a1 = t1->absmax_vec(), a2 = t2->absmax_vec();
    for (size_t c = 0; c < a1.size(); ++c) {
      const double want = r[0] == "s1" ? a1[c] : r[0] == "s2" ? a2[c] : std::max(a1[c], a2[c]);
      ASSERT_EQ(std::strtod(r[4 + c].c_str(), nullptr), want) << r[0] << " " << r[3] << " ch" << c;
      if (r[0] == "all sets (max)") {
        EXPECT_EQ(f.panels[r[1] == "attn_in" ? 0 : 1].heat->z[size_t(std::stoi(r[2]))][c], want);
      }
    }
    // The planted channel is the largest of its row, by far.
    const auto& am = r[0] == "s2" ? a2 : a1;
    EXPECT_EQ(size_t(std::max_element(am.begin(), am.end()) - am.begin()), 17u) << r[3];
    ++rows_per_set[r[0]];
  }
  // 2 layers x (attn_in, mlp_in) per set and for the maximum.
  EXPECT_EQ(rows_per_set, (std::map<std::string, size_t>{{"all sets (max)", 4}, {"s1", 4}, {"s2", 4}}));
  EXPECT_NE(f.caption.find("17 (2/2 layers)"), std::string::npos) << f.caption;
}

TEST_F(ReportStatsFigures, DepthProfileCountsTheOutlierChannel) {
  const ModelStats ms = load_model_stats(in_, "opt");
  const Figure f = depth_figure(ms, set_styles(in_), {});
  // Rows: max |x|, kurtosis, relative and LLM.int8 counts; columns: attention and MLP inputs.
  ASSERT_EQ(f.panels.size(), 8u);
  EXPECT_EQ(f.columns, 2);
  for (size_t p = 4; p < 8; ++p) {
    ASSERT_EQ(f.panels[p].series.size(), 2u) << f.panels[p].title;  // one series per set: s1, s2
    for (const auto& s : f.panels[p].series) EXPECT_EQ(s.y, (std::vector<double>{1, 1})) << f.panels[p].title << " " << s.name;
    EXPECT_EQ(f.panels[p].legend, p >= 6);
  }
  EXPECT_EQ(f.panels[4].series[0].name, "s1");
  EXPECT_EQ(f.panels[4].series[1].name, "s2");
  const auto& h = f.data.header;
  const size_t ci = size_t(std::find(h.begin(), h.end(), "relative_channels") - h.begin());
  const size_t ki = size_t(std::find(h.begin(), h.end(), "kind") - h.begin());
  std::map<std::string, int> hidden_rows;
  for (const auto& r : f.data.rows) {
    if (r[ki] == "attn_in" || r[ki] == "mlp_in") {
      EXPECT_EQ(r[ci], "17");
      ++hidden_rows[r[1]];
    }
  }
  EXPECT_EQ(hidden_rows, (std::map<std::string, int>{{"s1", 4}, {"s2", 4}}));  // every set's statistics
}

TEST_F(ReportStatsFigures, SimilarityConvergenceHistograms) {
  const ModelStats ms = load_model_stats(in_, "opt");
  const Figure sim = similarity_figure(ms, {});
  ASSERT_EQ(sim.data.rows.size(), 1u);
  const StatsComparison c = compare_stats(ms.stats[0], ms.stats[1], "s1", "s2");
  EXPECT_EQ(sim.data.rows[0][3], fmt_exact(c.all.cos_rms));
  EXPECT_EQ(sim.panels[0].heat->z[0][1], c.all.cos_rms);
  EXPECT_EQ(sim.panels[1].heat->z[1][0], c.all.jaccard);
  EXPECT_EQ(sim.panels[0].heat->z[0][0], 1.0);
  const auto index = set_styles(in_);
  const Figure conv = convergence_figure(ms, index, {});
  ASSERT_FALSE(conv.panels.empty());
  EXPECT_EQ(conv.panels[0].series.size(), 2u);
  EXPECT_EQ(conv.panels[0].series[0].x, (std::vector<double>{1, 2, 4}));  // snapshots 1, 2, 4 of 8 samples
  const Figure hist = histogram_figure(ms, index);
  ASSERT_EQ(hist.panels.size(), 2u);
  double total = 0;
  for (double y : hist.panels[0].series[0].y) total += y;
  EXPECT_NEAR(total, 1.0, 1e-12);  // no zeros or overflow in these activations
  const auto secs = stats_sections(in_);
  const Section& depth = section(secs, "depth");
  ASSERT_EQ(depth.omitted.size(), 1u);  // one model: no all-models overview
}

}  // namespace
}  // namespace calq::report
