#include "analysis/summary.h"

#include <cmath>

#include "analysis/outliers.h"
#include "analysis/table.h"

namespace calq {

namespace {
struct Row {
  double rms = 0;
  float absmax = 0;
  int argmax = -1;
};
Row row_of(const TensorStats& t) {
  Row r;
  double s2 = 0;
  for (double v : t.sum2) s2 += v;
  r.rms = t.values() > 0 ? std::sqrt(s2 / t.values()) : 0;
  for (int64_t c = 0; c < t.cols; ++c)
    if (t.absmax(c) > r.absmax) r.absmax = t.absmax(c), r.argmax = int(c);
  return r;
}
}  // namespace

Json stats_summary_json(const ActStats& s) {
  Json j = s.meta;
  j["tensors"] = Json::array();
  for (const auto& t : s.tensors) {
    const Row r = row_of(t);
    j["tensors"].push_back({{"name", t.name}, {"modules", t.modules}, {"kind", t.kind}, {"layer", t.layer},
                            {"cols", t.cols}, {"tokens", t.count}, {"mean", t.mean()}, {"rms", r.rms},
                            {"absmax", r.absmax}, {"argmax_channel", r.argmax}, {"kurtosis", t.kurtosis()},
                            {"median_abs", hist_median(t.hist)},
                            {"share_ge_" + fmt_g(s.thresholds(0)), t.share_ge(0)},
                            {"share_ge_" + fmt_g(s.thresholds(1)), t.share_ge(1)}});
  }
  j["snapshots"] = Json::array();
  for (const auto& sn : s.snapshots) j["snapshots"].push_back({{"samples", sn.samples}, {"tokens", sn.tokens}});
  return j;
}

std::string format_stats_summary(const ActStats& s) {
  TextTable tab({"tensor", "kind", "cols", "tokens", "rms", "absmax", "argmax", "kurtosis",
                 ">=" + fmt_g(s.thresholds(0)), ">=" + fmt_g(s.thresholds(1))});
  for (const auto& t : s.tensors) {
    const Row r = row_of(t);
    tab.add({t.name, t.kind, std::to_string(t.cols), fmt_g(t.count, 10), fmt_g(r.rms), fmt_g(r.absmax),
             std::to_string(r.argmax), fmt_f(t.kurtosis(), 1), fmt_pct(t.share_ge(0), 3), fmt_pct(t.share_ge(1), 3)});
  }
  return tab.str();
}

}  // namespace calq
