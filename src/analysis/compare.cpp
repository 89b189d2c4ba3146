#include "analysis/compare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "analysis/outliers.h"
#include "analysis/table.h"
#include "util/error.h"

namespace calq {

double cosine_similarity(const std::vector<double>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa == 0 && bb == 0) return 1.0;
  if (aa == 0 || bb == 0) return 0.0;
  return ab / std::sqrt(aa * bb);
}

namespace {

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    const double avg = 0.5 * double(i + j) + 1.0;  // average rank of a tie run
    for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = std::min(a.size(), b.size());
  if (n < 2) return 1.0;
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) ma += a[i], mb += b[i];
  ma /= double(n);
  mb /= double(n);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa == 0 && sbb == 0) return 1.0;
  if (saa == 0 || sbb == 0) return 0.0;
  return sab / std::sqrt(saa * sbb);
}

double norm2(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

float vmax(const std::vector<float>& v) { return v.empty() ? 0.0f : *std::max_element(v.begin(), v.end()); }

}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) { return pearson(ranks(a), ranks(b)); }

double jaccard(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> x = a, y = b, i, u;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(i));
  std::set_union(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(u));
  return u.empty() ? 1.0 : double(i.size()) / double(u.size());
}

StatsComparison compare_stats(const ActStats& a, const ActStats& b, const std::string& la, const std::string& lb,
                              double rel_k) {
  StatsComparison c;
  c.a = la;
  c.b = lb;
  std::map<std::string, StatsComparison::Summary> kinds;
  std::vector<std::string> kind_order;
  for (const auto& ta : a.tensors) {
    const TensorStats* tb = b.find(ta.name);
    if (!tb) continue;
    if (tb->cols != ta.cols)
      throw ArgError("compare: '" + ta.name + "' has " + std::to_string(ta.cols) + " channels in " + la + " but " +
                     std::to_string(tb->cols) + " in " + lb + " (different models?)");
    TensorComparison t;
    t.name = ta.name;
    t.kind = ta.kind;
    t.layer = ta.layer;
    t.cols = ta.cols;
    const auto ra = ta.rms_vec(), rb = tb->rms_vec();
    const auto ama = ta.absmax_vec(), amb = tb->absmax_vec();
    t.cos_rms = cosine_similarity(ra, rb);
    t.spearman_rms = spearman(ra, rb);
    t.cos_absmax = cosine_similarity(to_double(ama), to_double(amb));
    t.spearman_absmax = spearman(to_double(ama), to_double(amb));
    const auto oa = relative_outliers(ama, rel_k), ob = relative_outliers(amb, rel_k);
    t.outliers_a = int(oa.size());
    t.outliers_b = int(ob.size());
    t.jaccard_outliers = jaccard(oa, ob);
    const double xa = vmax(ama), xb = vmax(amb);
    t.absmax_change = xa > 0 ? xb / xa - 1.0 : 0.0;
    t.rms_change = norm2(ra) > 0 ? norm2(rb) / norm2(ra) - 1.0 : 0.0;
    t.kurtosis_a = ta.kurtosis();
    t.kurtosis_b = tb->kurtosis();
    for (auto* s : {&c.all, &kinds[t.kind]}) {
      s->tensors++;
      s->cos_rms += t.cos_rms;
      s->min_cos_rms = std::min(s->min_cos_rms, t.cos_rms);
      s->spearman_rms += t.spearman_rms;
      s->cos_absmax += t.cos_absmax;
      s->jaccard += t.jaccard_outliers;
      s->abs_absmax_change += std::fabs(t.absmax_change);
      s->mean_kurtosis_a += t.kurtosis_a;
      s->mean_kurtosis_b += t.kurtosis_b;
    }
    if (std::find(kind_order.begin(), kind_order.end(), t.kind) == kind_order.end()) kind_order.push_back(t.kind);
    c.tensors.push_back(t);
  }
  if (c.tensors.empty()) throw ArgError("compare: " + la + " and " + lb + " have no observed tensor in common");
  auto finish = [](StatsComparison::Summary& s) {
    const double n = s.tensors;
    for (double* v : {&s.cos_rms, &s.spearman_rms, &s.cos_absmax, &s.jaccard, &s.abs_absmax_change, &s.mean_kurtosis_a,
                      &s.mean_kurtosis_b})
      *v /= n;
  };
  finish(c.all);
  for (const auto& k : kind_order) {
    finish(kinds[k]);
    c.by_kind.push_back({k, kinds[k]});
  }
  return c;
}

// ---- convergence -------------------------------------------------------------------------------

std::vector<ConvergencePoint> convergence_curve(const ActStats& s, double rel_k) {
  std::vector<ConvergencePoint> curve;
  const double total = s.meta.value("tokens", 0.0);
  std::vector<std::vector<double>> final_rms;
  std::vector<std::vector<float>> final_am;
  std::vector<std::vector<int>> final_out;
  for (const auto& t : s.tensors) {
    final_rms.push_back(t.rms_vec());
    final_am.push_back(t.absmax_vec());
    final_out.push_back(relative_outliers(final_am.back(), rel_k));
  }
  auto point = [&](int64_t samples, double tokens, const std::vector<std::vector<double>>* sum2,
                   const std::vector<std::vector<float>>* am) {
    ConvergencePoint p;
    p.samples = samples;
    p.tokens = tokens;
    const size_t n = s.tensors.size();
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> rms = final_rms[t];
      std::vector<float> a = final_am[t];
      if (sum2) {
        for (size_t c = 0; c < rms.size(); ++c) rms[c] = tokens > 0 ? std::sqrt((*sum2)[t][c] / tokens) : 0.0;
        a = (*am)[t];
      }
      const double cs = cosine_similarity(rms, final_rms[t]);
      std::vector<double> d(rms.size());
      for (size_t c = 0; c < rms.size(); ++c) d[c] = rms[c] - final_rms[t][c];
      const double fr = norm2(final_rms[t]);
      const double err = fr > 0 ? norm2(d) / fr : 0.0;
      p.mean_cos_rms += cs / double(n);
      p.min_cos_rms = std::min(p.min_cos_rms, cs);
      p.mean_rel_err_rms += err / double(n);
      p.max_rel_err_rms = std::max(p.max_rel_err_rms, err);
      const float fm = vmax(final_am[t]);
      p.mean_absmax_ratio += (fm > 0 ? vmax(a) / fm : 1.0) / double(n);
      p.mean_jaccard += jaccard(relative_outliers(a, rel_k), final_out[t]) / double(n);
    }
    curve.push_back(p);
  };
  for (const auto& sn : s.snapshots)
    if (sn.samples < s.meta.value("samples", int64_t(0))) point(sn.samples, sn.tokens, &sn.sum2, &sn.absmax);
  point(s.meta.value("samples", int64_t(0)), total, nullptr, nullptr);
  return curve;
}

int64_t converged_at(const std::vector<ConvergencePoint>& curve, double tol) {
  int64_t at = -1;
  for (auto it = curve.rbegin(); it != curve.rend(); ++it) {
    if (it->mean_rel_err_rms > tol) break;
    at = it->samples;
  }
  // The final point has error 0 by definition: it alone does not show convergence.
  return (curve.size() >= 2 && at == curve.back().samples) ? -1 : at;
}

// ---- output ------------------------------------------------------------------------------------

namespace {
Json summary_json(const StatsComparison::Summary& s) {
  return {{"tensors", s.tensors}, {"cos_rms", s.cos_rms}, {"min_cos_rms", s.min_cos_rms},
          {"spearman_rms", s.spearman_rms}, {"cos_absmax", s.cos_absmax}, {"jaccard_outliers", s.jaccard},
          {"mean_abs_absmax_change", s.abs_absmax_change}, {"mean_kurtosis_a", s.mean_kurtosis_a},
          {"mean_kurtosis_b", s.mean_kurtosis_b}};
}
}  // namespace

Json comparison_json(const StatsComparison& c) {
  Json j = {{"a", c.a}, {"b", c.b}, {"summary", summary_json(c.all)}};
  j["by_kind"] = Json::object();
  for (const auto& [k, s] : c.by_kind) j["by_kind"][k] = summary_json(s);
  j["tensors"] = Json::array();
  for (const auto& t : c.tensors)
    j["tensors"].push_back({{"name", t.name}, {"kind", t.kind}, {"layer", t.layer}, {"cols", t.cols},
                            {"cos_rms", t.cos_rms}, {"spearman_rms", t.spearman_rms}, {"cos_absmax", t.cos_absmax},
                            {"spearman_absmax", t.spearman_absmax}, {"jaccard_outliers", t.jaccard_outliers},
                            {"outliers_a", t.outliers_a}, {"outliers_b", t.outliers_b},
                            {"absmax_change", t.absmax_change}, {"rms_change", t.rms_change},
                            {"kurtosis_a", t.kurtosis_a}, {"kurtosis_b", t.kurtosis_b}});
  return j;
}

Json convergence_json(const std::vector<ConvergencePoint>& curve) {
  Json j = Json::array();
  for (const auto& p : curve)
    j.push_back({{"samples", p.samples}, {"tokens", p.tokens}, {"mean_cos_rms", p.mean_cos_rms},
                 {"min_cos_rms", p.min_cos_rms}, {"mean_rel_err_rms", p.mean_rel_err_rms},
                 {"max_rel_err_rms", p.max_rel_err_rms}, {"mean_absmax_ratio", p.mean_absmax_ratio},
                 {"mean_jaccard_outliers", p.mean_jaccard}});
  return j;
}

std::string format_comparisons(const std::vector<StatsComparison>& cs, bool per_tensor) {
  std::string out = "Per-channel scale agreement (means over tensors; rms = sqrt(mean x^2) per channel)\n\n";
  TextTable sum({"A", "B", "cos(rms)", "min cos", "spearman", "cos(absmax)", "jaccard(outl)", "|d absmax|",
                 "kurt A", "kurt B"});
  for (const auto& c : cs)
    sum.add({c.a, c.b, fmt_f(c.all.cos_rms, 4), fmt_f(c.all.min_cos_rms, 4), fmt_f(c.all.spearman_rms, 3),
             fmt_f(c.all.cos_absmax, 4), fmt_f(c.all.jaccard, 2), fmt_pct(c.all.abs_absmax_change, 1),
             fmt_f(c.all.mean_kurtosis_a, 1), fmt_f(c.all.mean_kurtosis_b, 1)});
  out += sum.str();
  out += "\nBy input kind\n\n";
  TextTable kind({"A", "B", "input", "cos(rms)", "spearman", "jaccard(outl)", "|d absmax|", "kurt A", "kurt B"});
  for (const auto& c : cs)
    for (const auto& [k, s] : c.by_kind)
      kind.add({c.a, c.b, k, fmt_f(s.cos_rms, 4), fmt_f(s.spearman_rms, 3), fmt_f(s.jaccard, 2),
                fmt_pct(s.abs_absmax_change, 1), fmt_f(s.mean_kurtosis_a, 1), fmt_f(s.mean_kurtosis_b, 1)});
  out += kind.str();
  if (per_tensor)
    for (const auto& c : cs) {
      out += "\n" + c.a + " vs " + c.b + "\n\n";
      TextTable t({"tensor", "cos(rms)", "spearman", "cos(absmax)", "outl A", "outl B", "jaccard", "d absmax",
                   "d rms"});
      for (const auto& x : c.tensors)
        t.add({x.name, fmt_f(x.cos_rms, 4), fmt_f(x.spearman_rms, 3), fmt_f(x.cos_absmax, 4),
               std::to_string(x.outliers_a), std::to_string(x.outliers_b), fmt_f(x.jaccard_outliers, 2),
               (x.absmax_change >= 0 ? "+" : "") + fmt_pct(x.absmax_change, 1),
               (x.rms_change >= 0 ? "+" : "") + fmt_pct(x.rms_change, 1)});
      out += t.str();
    }
  return out;
}

std::string format_convergence(const std::string& label, const std::vector<ConvergencePoint>& curve, double tol) {
  std::string out = "Convergence of " + label + " (statistics after n samples vs all samples)\n\n";
  TextTable t({"samples", "tokens", "cos(rms)", "min cos", "rel.err rms", "max rel.err", "absmax/final",
               "jaccard(outl)"});
  for (const auto& p : curve)
    t.add({std::to_string(p.samples), fmt_g(p.tokens, 8), fmt_f(p.mean_cos_rms, 5), fmt_f(p.min_cos_rms, 5),
           fmt_pct(p.mean_rel_err_rms, 2), fmt_pct(p.max_rel_err_rms, 2), fmt_f(p.mean_absmax_ratio, 3),
           fmt_f(p.mean_jaccard, 2)});
  out += t.str();
  const int64_t at = converged_at(curve, tol);
  out += at < 0 ? "mean relative RMS error does not settle below " + fmt_pct(tol, 1) +
                      " before the end: more samples would still change the statistics\n"
                : "mean relative RMS error <= " + fmt_pct(tol, 1) + " from " + std::to_string(at) + " samples on\n";
  return out;
}

}  // namespace calq
