// The report's input model: JSON round trip, validation, the loose-file specs, and reading
// results files and quantized model folders into result rows.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/mapped_file.h"
#include "report/loose_files.h"
#include "test_util.h"

namespace calq::report {
namespace {

namespace fs = std::filesystem;

ResultRow make_row(const std::string& model, const std::string& set, const std::string& group, const std::string& method,
                   int w_bits, const std::string& eval, double v, double se = NAN) {
  ResultRow r;
  r.model = model;
  r.calib = {set, set.empty() ? "other" : group};
  r.method = method;
  r.settings.w_bits = w_bits;
  r.eval = eval;
  r.value = v;
  r.stderr_ = se;
  return r;
}

TEST(ReportInput, JsonRoundTrip) {
  ReportInput in;
  in.title = "t";
  in.results.push_back(make_row("m", "", "", "float", -1, "ppl:wikitext2", 5.5, 0.1));
  ResultRow r = make_row("m", "fra_Latn", "language", "smoothquant", 8, "acc:piqa", 0.625);
  r.settings.a_bits = 8;
  r.settings.alpha = 0.5;
  r.settings.a_granularity = "per_token";
  r.synthetic = true;
  r.source = "x.json";
  in.results.push_back(r);
  in.stats.push_back({"m", false, {"web", "quality"}, "web.stats.safetensors"});
  const Json j = report_input_to_json(in);
  const ReportInput back = report_input_from_json(parse_json(j.dump(), "mem"), "mem");
  ASSERT_EQ(back.results.size(), 2u);
  EXPECT_EQ(back.title, "t");
  EXPECT_EQ(back.results[0].value, 5.5);
  EXPECT_EQ(back.results[0].stderr_, 0.1);
  EXPECT_TRUE(back.results[0].calib.label.empty());
  EXPECT_TRUE(std::isnan(back.results[1].stderr_));
  EXPECT_TRUE(back.results[1].settings == r.settings);
  EXPECT_EQ(back.results[1].method_key(), "SmoothQuant W8A8 α0.5");
  EXPECT_TRUE(back.results[1].synthetic);
  EXPECT_EQ(back.results[1].calib.group, "language");
  ASSERT_EQ(back.stats.size(), 1u);
  EXPECT_EQ(back.stats[0].path, "web.stats.safetensors");
  EXPECT_EQ(report_input_to_json(back), j);
  EXPECT_EQ(back.models(), std::vector<std::string>{"m"});
  ASSERT_EQ(back.calib_sets().size(), 2u);
  EXPECT_EQ(back.calib_sets()[0].label, "web");  // statistics first, then results
  EXPECT_THROW(report_input_from_json(Json{{"format", "other"}}, "x"), FormatError);
}

TEST(ReportInput, MethodLabels) {
  MethodSettings s;
  s.w_bits = 8;
  s.a_bits = 8;
  s.a_granularity = "per_tensor_static";
  EXPECT_EQ(method_label("naive-w8a8", s.describe()), "naive W8A8 per-tensor-static");
  s.a_granularity = "per_token";
  EXPECT_EQ(method_label("naive-w8a8", s.describe()), "naive W8A8");
  EXPECT_EQ(s.describe_without("a"), "W8");
  MethodSettings w;
  w.w_bits = 4;
  w.group_size = -1;
  EXPECT_EQ(method_label("gptq", w.describe()), "GPTQ w4 per-channel");
  w.group_size = 128;
  w.kv_bits = 4;
  EXPECT_EQ(w.describe(), "w4g128 KV4");
  EXPECT_EQ(w.describe_without("kv"), "w4g128");
  EXPECT_EQ(method_label("float", MethodSettings{}.describe()), "float");
}

TEST(ReportInput, ValidateNamesTheRowAtFault) {
  ReportInput in;
  in.results.push_back(make_row("m", "web", "quality", "gptq", 4, "ppl:wt", 6));
  in.validate();
  auto fails = [&](ReportInput bad, const std::string& needle) {
    try {
      bad.validate();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const ArgError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  ReportInput a = in;
  a.results.push_back(make_row("m", "web", "content", "awq", 4, "ppl:wt", 6));
  fails(a, "in group 'content' here but in 'quality'");
  ReportInput b = in;
  b.results.push_back(make_row("m", "web", "quality", "float", -1, "ppl:wt", 5));
  fails(b, "float baseline has no calibration set");
  ReportInput c = in;
  c.results.push_back(in.results[0]);
  fails(c, "a second value");
  ReportInput d = in;
  d.results[0].eval = "ppl";
  fails(d, "expected METRIC:DATA");
  ReportInput e = in;
  e.results[0].value = NAN;
  fails(e, "not a finite number");
  ReportInput f = in;
  f.results[0].calib.group = "colour";
  fails(f, "unknown calibration-set group 'colour'");
}

TEST(ReportInput, LooseSpecs) {
  LooseSpec s = parse_loose_spec("llama-7b:fra_Latn=a/b=c.json", true, "--eval");
  EXPECT_EQ(s.model, "llama-7b");
  EXPECT_EQ(s.set, "fra_Latn");
  EXPECT_EQ(s.method, "");
  EXPECT_EQ(s.path, "a/b=c.json");
  s = parse_loose_spec("m:-:float=x.json", true, "--eval");
  EXPECT_EQ(s.set, "");
  EXPECT_EQ(s.method, "float");
  EXPECT_THROW(parse_loose_spec("m:s:x=y", false, "--stats"), ArgError);
  EXPECT_THROW(parse_loose_spec("m=y", false, "--stats"), ArgError);
  EXPECT_THROW(parse_loose_spec("m:s", true, "--eval"), ArgError);
  EXPECT_THROW(parse_loose_spec("m:-=y", false, "--stats"), ArgError);
  EXPECT_THROW(parse_loose_spec(":s=y", true, "--eval"), ArgError);
  EXPECT_EQ(data_label("../shared/data/wikitext-2-raw/wiki.test.raw"), "wikitext2");
  EXPECT_EQ(data_label("/x/tinystories_val.txt"), "tinystories");
  EXPECT_EQ(data_label("/x/flores200/devtest/fra_Latn.devtest"), "fra_Latn");
  EXPECT_EQ(data_label("/x/my_corpus.txt"), "my_corpus");
  EXPECT_EQ(group_of_builder("lang"), "language");
  EXPECT_EQ(group_of_builder("task"), "content");
  EXPECT_EQ(group_of_builder("punct"), "quality");
}

TEST(ReportInput, RowsFromResultsFiles) {
  const Json ppl = {{"evaluation", "ppl"},
                    {"data", {{"path", "/d/wiki.test.raw"}}},
                    {"metrics", {{"ppl", 7.25}, {"ppl_stderr", 0.125}, {"tokens", 100}}}};
  auto rows = rows_from_results(ppl, "ppl.json");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].eval, "ppl:wikitext2");
  EXPECT_EQ(rows[0].value, 7.25);
  EXPECT_EQ(rows[0].stderr_, 0.125);
  EXPECT_EQ(rows[0].source, "ppl.json");
  const Json tasks = {{"evaluation", "tasks"},
                      {"metrics",
                       {{"piqa.acc", 0.5}, {"piqa.acc_stderr", 0.05}, {"piqa.acc_norm", 0.4}, {"arc_easy.acc", 0.25},
                        {"arc_easy.acc_stderr", 0.04}}}};
  rows = rows_from_results(tasks, "t.json");
  ASSERT_EQ(rows.size(), 2u);  // acc only, one per task (nlohmann sorts keys)
  EXPECT_EQ(rows[0].eval, "acc:arc_easy");
  EXPECT_EQ(rows[0].value, 0.25);
  EXPECT_EQ(rows[1].eval, "acc:piqa");
  EXPECT_EQ(rows[1].stderr_, 0.05);
  const Json kld = {{"evaluation", "kld"},
                    {"data", {{"ref", "/r/ref.safetensors"}, {"data", "/d/tinystories_val.txt"}}},
                    {"metrics", {{"kld_mean", 0.0625}, {"kld_mean_stderr", 0.001}}}};
  rows = rows_from_results(kld, "k.json");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].eval, "kld:tinystories");
  EXPECT_EQ(rows[0].value, 0.0625);
  EXPECT_THROW(rows_from_results(Json{{"evaluation", "ppl"}, {"data", {{"path", "x"}}}, {"metrics", Json::object()}}, "e.json"),
               FormatError);
  EXPECT_THROW(rows_from_results(Json{{"evaluation", "bleu"}, {"metrics", Json::object()}}, "e.json"), FormatError);
}

TEST(ReportInput, MethodFromQuantizedFolder) {
  const fs::path dir = test::temp_path("report_input", "q");
  fs::create_directories(dir / "qstate");
  write_file_atomic((dir / "config.json").string(),
                    R"({"model_type": "llama", "calq_quant": {"method": "smoothquant", "settings":
                        {"smooth": true, "alpha": 0.5, "w_bits": 8, "a_bits": 8, "weights": "per_channel",
                         "activations": "per_token"}}})");
  write_file_atomic((dir / "qstate" / "state.json").string(), R"({"calib": {"manifest": {"builder": "lang"}}})");
  std::string builder;
  auto [method, s] = method_from_model(dir.string(), &builder);
  EXPECT_EQ(method, "smoothquant");
  EXPECT_EQ(s.w_bits, 8);
  EXPECT_EQ(s.a_bits, 8);
  EXPECT_EQ(s.alpha, 0.5);
  EXPECT_EQ(s.a_granularity, "per_token");
  EXPECT_EQ(builder, "lang");
  write_file_atomic((dir / "config.json").string(),
                    R"({"calq_quant": {"method": "gptq", "settings": {"bits": 3, "group_size": 128}}})");
  std::tie(method, s) = method_from_model(dir.string(), nullptr);
  EXPECT_EQ(method, "gptq");
  EXPECT_EQ(s.describe(), "w3g128");
  write_file_atomic((dir / "config.json").string(), R"({"model_type": "llama"})");
  EXPECT_EQ(method_from_model(dir.string(), nullptr).first, "float");
  EXPECT_EQ(method_from_model((dir / "missing").string(), nullptr).first, "");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace calq::report
