// calq study: the grid from a config, the content-addressed cache (shared work done once, one
// axis changed recomputes only what depends on it), the store, and a study's metrics equal to the
// same steps typed by hand with the individual commands (bitwise: the same library calls).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "study/config.h"
#include "study/grid.h"
#include "study/plan.h"
#include "study/runner.h"
#include "study/store.h"
#include "study/table.h"
#include "study_fixture.h"
#include "test_util.h"
#include "util/error.h"

namespace calq::study {
namespace {

namespace fs = std::filesystem;

using test::tiny_study;  // tests/study_fixture.h: one real model, two sets, float + RTN + GPTQ, one perplexity

StudyConfig parse(const std::string& text, const std::string& out) {
  return parse_study_config(text, "test.toml", out, test::data(), out);
}

std::map<std::string, double> metric_map(const Store& s) {
  std::map<std::string, double> m;
  for (const MetricRow& r : s.metrics()) m[r.cell + "/" + r.eval + "/" + r.metric] = r.value;
  return m;
}

TEST(StudyConfig, GridIsTheProductMinusExclusions) {
  const std::string out = test::temp_path("study", "grid");
  StudyConfig c = parse(tiny_study(), out);
  ASSERT_EQ(c.methods.size(), 4u);  // float, rtn, gptq w4, gptq w3 (lists expand)
  EXPECT_EQ(c.methods[3].label, "gptq-w3g32");
  Grid g = build_grid(c);
  // float and RTN take no calibration set: one cell each; GPTQ: 2 bit widths x 2 sets.
  EXPECT_EQ(g.cells.size(), 6u);
  c = parse(tiny_study("[[exclude]]\ncalib = \"punct\"\nmethod = \"gptq-w3*\"\n"), out);
  g = build_grid(c);
  EXPECT_EQ(g.cells.size(), 5u);
  for (const Cell& cell : g.cells) EXPECT_NE(cell.label(c).find("punct | gptq-w3"), 0u);
  size_t calib = 0;
  for (const auto& [key, s] : g.steps) calib += s.kind == StepKind::Calib;
  EXPECT_EQ(calib, 2u);  // one set per (tokenizer, spec, seed), shared by the GPTQ cells
  // The KV-cache axis (simulated in every evaluation's forward pass) multiplies the grid.
  c = parse(tiny_study("[[kv]]\nbits = [16, 4]\ngroup = 32\n"), out);
  ASSERT_EQ(c.kv.size(), 2u);
  EXPECT_EQ(c.kv[1].label, "kv4g32");
  g = build_grid(c);
  EXPECT_EQ(g.cells.size(), 12u);
  EXPECT_THROW(parse(tiny_study("[[kv]]\nbits = 1\n"), out), ConfigError);
}

TEST(StudyConfig, ErrorsNameTheEntryAndKey) {
  const std::string out = test::temp_path("study", "errors");
  try {
    parse(tiny_study("[[methods]]\nmethod = \"gptq\"\nbitz = 4\n"), out);
    FAIL() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bitz"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse("[study]\nname = \"x\"\n[[models]]\nlabel = 3\n", out), ConfigError);
  EXPECT_THROW(parse("[study\nname=", out), FormatError);
}

// A model whose folder is absent but which names its shape: the grid and the plan exist (estimated
// from the synthetic preset's config), running is refused with the model named. Figures of the cost
// model: a 7B forward is ~2 x 6.5 GFLOP per token, so the plan's float perplexity window (2048
// tokens, one chunk) at 10 GFLOP/s takes minutes, not seconds; halving every rate doubles it.
TEST(StudyPlan, AbsentModelPlansFromItsShape) {
  const std::string out = test::temp_path("study", "absent");
  const std::string text = R"([study]
name = "p"
[[models]]
label = "Llama-2-7B"
path = "no/such/Llama-2-7b-hf"
shape = "llama2-7b"
[[calibration]]
label = "c4"
builder = "text"
source = "{data}/data/c4/c4_sample.jsonl"
[[methods]]
method = "float"
[[methods]]
method = "gptq"
[[evaluations]]
kind = "ppl"
data = "{data}/data/wikitext-2-raw/wiki.test.raw"
ctx = 2048
chunks = 1
)";
  const StudyConfig c = parse(text, out);
  const Grid g = build_grid(c);
  ASSERT_EQ(g.cells.size(), 2u);
  ASSERT_EQ(g.inputs.absent.size(), 1u);
  EXPECT_TRUE(g.inputs.absent[0]);
  PlanOptions po;
  po.rates = Rates::flat(10, 1);
  const Plan p = make_plan(c, g, nullptr, po);
  const Cell& fl = g.cells[0].quant.empty() ? g.cells[0] : g.cells[1];
  const double window = p.steps.at(fl.evals.at(0)).seconds;
  // 2048 tokens x 2 x 6.48e9 linear params + lm_head 2047 x 2 x 32000 x 4096: ~2.7e13 flops.
  EXPECT_GT(window, 2.6e13 / 10e9);
  EXPECT_LT(window, 2.6e13 / 10e9 * 1.5);
  po.rates = Rates::flat(5, 0.5);
  const Plan slow = make_plan(c, g, nullptr, po);
  // everything doubles but the per-step overhead and the tokenizer term (~0.7 s for WikiText-2)
  EXPECT_NEAR(slow.steps.at(fl.evals.at(0)).seconds, 2 * window, 1.0);
  EXPECT_GT(p.peak_memory_mb, 4.0 * 6.7e9 / 1048576);  // the f32 weights at least
  try {
    run_study(c, RunOptions{});
    FAIL() << "ran without weights";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("Llama-2-7B"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("llama2-7b"), std::string::npos) << e.what();
  }
  // Without `shape`, a missing folder is an error at once, which says how to plan anyway.
  EXPECT_THROW(build_grid(parse(std::string(text).replace(text.find("shape"), 19, ""), out)), ConfigError);
}

// Rates: read at a model's width by log interpolation between the probed widths, clamped outside.
TEST(StudyPlan, RatesInterpolateByWidth) {
  Rates r;
  r.gemm_small = 10, r.gemm = 40, r.gemm_large = 20, r.stream = 1;
  EXPECT_DOUBLE_EQ(r.gemm_at(64), 10);
  EXPECT_DOUBLE_EQ(r.gemm_at(128), 10);
  EXPECT_NEAR(r.gemm_at(std::exp2(8.5)), 20, 1e-9);  // halfway in log2 between 128 and 1024: sqrt(10 x 40)
  EXPECT_DOUBLE_EQ(r.gemm_at(1024), 40);
  EXPECT_NEAR(r.gemm_at(2048), std::sqrt(40.0 * 20.0), 1e-9);
  EXPECT_DOUBLE_EQ(r.gemm_at(8192), 20);
  const Rates back = Rates::from_json(r.to_json());
  EXPECT_EQ(back.gemm_small, 10);
  EXPECT_EQ(back.gemm_large, 20);
  EXPECT_EQ(back.stream, 1);
}

// Runs the tiny study, then the same steps through the CLI, and compares every perplexity
// exactly; a rerun builds nothing; a changed axis (GPTQ bits) rebuilds only its own steps.
TEST(StudySlow, MetricsEqualTheIndividualCommandsAndCacheIsReused) {
  const std::string out = test::temp_path("study", "run");
  fs::remove_all(out);
  // keep = ["results"]: quantized models are deleted once evaluated; the plan still knows the cells are done.
  const StudyConfig c = parse(tiny_study("", "4").replace(0, 7, "[study]\nkeep = [\"results\"]"), out);
  PlanOptions po;
  po.gflops = 10;
  const Plan before = make_plan(c, build_grid(c), nullptr, po);
  EXPECT_GT(before.remaining_seconds, 0);
  EXPECT_EQ(before.remaining_seconds, before.total_seconds);
  RunOptions o;
  const RunSummary first = run_study(c, o);
  EXPECT_EQ(first.cells, 4);
  EXPECT_EQ(first.done, 4);
  EXPECT_EQ(first.failed, 0);

  const Grid g = build_grid(c);
  auto store = open_store(c, g);
  std::map<std::string, double> ppl;  // method label (+ calib) -> ppl
  for (const CellRow& r : store->cells()) {
    EXPECT_EQ(r.status, "done") << r.label << " " << r.error;
    for (const MetricRow& m : store->metrics())
      if (m.cell == r.cell && m.eval == "ts" && m.metric == "ppl") ppl[r.method_label + "/" + r.calib] = m.value;
  }
  ASSERT_EQ(ppl.size(), 4u);
  // The run recorded the machine's rates, and --check has every built step kind to set against them.
  const Rates ran = store_rates(*store);
  EXPECT_GT(ran.gemm, 0);
  EXPECT_GT(ran.stream, 0);
  int checked = 0;
  for (const KindCheck& k : check_against_store(c, g, *store, ran)) {
    EXPECT_GT(k.estimated, 0) << k.kind;
    EXPECT_GT(k.measured, 0) << k.kind;
    checked += k.steps;
  }
  EXPECT_EQ(checked, int(g.steps.size()));
  const Plan after = make_plan(c, g, store.get(), po);
  EXPECT_EQ(after.remaining_seconds, 0);
  for (const CellEstimate& e : after.cells) EXPECT_TRUE(e.done) << e.cell;
  size_t quant_dirs = 0;
  for (const auto& [k, s] : g.steps) quant_dirs += s.kind == StepKind::Quant && fs::exists(artifact_dir(c, s));
  EXPECT_EQ(quant_dirs, 0u);  // deleted after their evaluations

  // By hand.
  const std::string M = test::data("models/stories260K"), D = test::data("data/tinystories/tinystories_val.txt");
  const std::string h = out + "/by-hand", C = "CALQ_DATA='" + test::data() + "' " + test::cli();
  fs::create_directories(h);
  std::string log;
  auto sh = [&](const std::string& cmd) {
    ASSERT_EQ(test::run_command(cmd, &log), 0) << cmd << "\n" << log;
  };
  auto ppl_of = [&](const std::string& model, const std::string& name) {
    sh(C + " eval ppl " + model + " --data " + D + " --ctx 64 --chunks 2 -o " + h + "/" + name + ".json");
    return load_json_file(h + "/" + name + ".json").at("metrics").at("ppl").get<double>();
  };
  test::expect_row_invariant(ppl_of(M, "float"), ppl.at("float/"), 1e-6, "float");
  sh(C + " quantize " + M + " --method rtn --group-size 32 -o " + h + "/rtn");
  test::expect_row_invariant(ppl_of(h + "/rtn", "rtn"), ppl.at("rtn-w4g32/"), 1e-6, "rtn");
  sh(C + " calib build text --tokenizer " + M + " --source " + D + " -n 4 -T 64 --seed 0 -o " + h + "/ts.safetensors");
  sh(C + " quantize " + M + " --method gptq --bits 4 --group-size 32 --calib " + h + "/ts.safetensors -o " + h +
     "/gptq-ts");
  test::expect_row_invariant(ppl_of(h + "/gptq-ts", "gptq-ts"), ppl.at("gptq-w4g32/tinystories"), 1e-6, "gptq-ts");
  sh(C + " calib build punct --tokenizer " + M + " -n 4 -T 64 --seed 0 -o " + h + "/punct.safetensors");
  sh(C + " quantize " + M + " --method gptq --bits 4 --group-size 32 --calib " + h + "/punct.safetensors -o " + h +
     "/gptq-punct");
  test::expect_row_invariant(ppl_of(h + "/gptq-punct", "gptq-punct"), ppl.at("gptq-w4g32/punct"), 1e-6, "gptq-punct");
  store.reset();

  // Rerun: nothing to do.
  const RunSummary again = run_study(c, o);
  EXPECT_EQ(again.already_done, 4);
  EXPECT_EQ(again.steps_built, 0);

  // GPTQ at 3 bits as well: only its 2 quantizations and 2 evaluations are new, and the 2 calibration
  // sets, which keep = ["results"] deleted after the last cell that needed them.
  const StudyConfig c3 = parse(tiny_study("", "[4, 3]"), out);
  const RunSummary more = run_study(c3, o);
  EXPECT_EQ(more.cells, 6);
  EXPECT_EQ(more.already_done, 4);
  EXPECT_EQ(more.done, 2);
  EXPECT_EQ(more.steps_built, 6);
  store = open_store(c3, build_grid(c3));
  EXPECT_EQ(metric_map(*store).size(), store->metrics().size());
  const std::string table = render_tables(*store, TableOptions{});
  EXPECT_NE(table.find("gptq-w3g32"), std::string::npos) << table;
  const std::string rob = render_robustness(*store, TableOptions{});
  EXPECT_NE(rob.find("gptq-w4g32"), std::string::npos) << rob;
  fs::remove_all(out);
}

TEST(StudyRun, FailedCellIsRecordedAndOthersFinish) {
  const std::string out = test::temp_path("study", "fail");
  fs::remove_all(out);
  // A task file that is not JSON lines fails every evaluation on it, at run time.
  fs::create_directories(out + "/bad-tasks");
  std::ofstream(out + "/bad-tasks/piqa.jsonl") << "not json\n";
  const StudyConfig c = parse(tiny_study("[[evaluations]]\nkind = \"tasks\"\nlabel = \"bad\"\ntasks = [\"piqa\"]\n"
                                         "task_dir = \"" + out + "/bad-tasks\"\n",
                                         "4"),
                              out);
  const RunSummary r = run_study(c, RunOptions{});
  EXPECT_EQ(r.failed, 4);
  auto store = open_store(c, build_grid(c));
  for (const CellRow& row : store->cells()) {
    EXPECT_EQ(row.status, "failed");
    EXPECT_FALSE(row.error.empty());
  }
  // The other evaluation's artifacts were built and are reused once the bad one is removed.
  const StudyConfig ok = parse(tiny_study("", "4"), out);
  const RunSummary r2 = run_study(ok, RunOptions{});
  EXPECT_EQ(r2.done, 4);
  EXPECT_EQ(r2.steps_built, 0);
  fs::remove_all(out);
}

}  // namespace
}  // namespace calq::study

namespace calq::study {
namespace {

// The shipped demo study parses and expands to the grid docs/study.md describes.
TEST(StudyConfig, DemoStudyExpands) {
  const StudyConfig c = load_study_config(std::string(CALQ_SOURCE_DIR) + "/studies/demo.toml", test::data(),
                                          test::temp_path("study", "demo"));
  ASSERT_EQ(c.models.size(), 3u);
  EXPECT_TRUE(c.models[2].synthetic);
  EXPECT_EQ(c.calib.size(), 5u);
  EXPECT_EQ(c.methods.size(), 5u);
  const Grid g = build_grid(c);
  // Real models: float + 4 methods x 5 sets; the synthetic one: float + (GPTQ, SmoothQuant) x 5.
  EXPECT_EQ(g.cells.size(), size_t(2 * 21 + 11));
}

}  // namespace
}  // namespace calq::study
