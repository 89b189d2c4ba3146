// calq compare A.safetensors B.safetensors [C ...] [--labels a,b,c] [--all-pairs] [--per-tensor]
//              [--k 8] [--tol 0.01] [--no-convergence] [--json OUT]
// How activation statistics differ between calibration sets (each file against the first, or all
// pairs), and how each file's statistics converged as samples were added (src/analysis/compare.h).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "analysis/compare.h"
#include "cmd_stats_common.h"
#include "command.h"

namespace calq::cli {
namespace {

struct CompareOpts {
  std::vector<std::string> files, labels;
  std::string json;
  bool all_pairs = false, per_tensor = false, no_conv = false;
  double k = 8.0, tol = 0.01;
};

int run(CompareOpts& o) {
  if (o.files.size() < 2 && o.no_conv) throw UsageError("compare: give at least two statistics files");
  if (!o.labels.empty() && o.labels.size() != o.files.size())
    throw UsageError("compare: --labels needs one label per file (" + std::to_string(o.files.size()) + ")");
  std::vector<ActStats> st;
  for (size_t i = 0; i < o.files.size(); ++i) {
    st.push_back(load_stats(o.files[i]));
    if (o.labels.size() <= i) o.labels.push_back(std::filesystem::path(o.files[i]).stem().string());
  }
  std::vector<StatsComparison> cs;
  for (size_t i = 0; i < st.size(); ++i)
    for (size_t j = i + 1; j < st.size(); ++j)
      if (i == 0 || o.all_pairs) cs.push_back(compare_stats(st[i], st[j], o.labels[i], o.labels[j], o.k));
  Json out = {{"files", o.files}, {"labels", o.labels}, {"rel_k", o.k}};
  out["comparisons"] = Json::array();
  if (!cs.empty()) std::printf("%s", format_comparisons(cs, o.per_tensor).c_str());
  for (const auto& c : cs) out["comparisons"].push_back(comparison_json(c));
  out["convergence"] = Json::object();
  if (!o.no_conv)
    for (size_t i = 0; i < st.size(); ++i) {
      const auto curve = convergence_curve(st[i], o.k);
      std::printf("\n%s", format_convergence(o.labels[i], curve, o.tol).c_str());
      out["convergence"][o.labels[i]] = {{"curve", convergence_json(curve)}, {"converged_at", converged_at(curve, o.tol)}};
    }
  if (!o.json.empty()) {
    write_json_atomic(o.json, out, 2);
    info("wrote " + o.json);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"compare"}, "Compare activation statistics of calibration sets; convergence curves", [](CLI::App& app) -> Runner {
  auto o = std::make_shared<CompareOpts>();
  app.add_option("stats", o->files, "statistics files from `calq stats` (the first is the baseline)")->required();
  app.add_option("--labels", o->labels, "a label per file (default: file names)")->delimiter(',');
  app.add_flag("--all-pairs", o->all_pairs, "compare every pair, not only against the first");
  app.add_flag("--per-tensor", o->per_tensor, "per-tensor tables");
  app.add_option("-k,--k", o->k, "relative outlier factor for the Jaccard overlap")->capture_default_str();
  app.add_option("--tol", o->tol, "convergence: mean relative RMS error tolerance")->capture_default_str();
  app.add_flag("--no-convergence", o->no_conv, "skip the convergence curves");
  app.add_option("--json", o->json, "write everything as JSON");
  return [o] { return run(*o); };
}});

}  // namespace
}  // namespace calq::cli
