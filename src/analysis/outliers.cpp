#include "analysis/outliers.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "analysis/table.h"
#include "util/error.h"

namespace calq {

double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + long(h), v.end());
  const double hi = v[h];
  if (v.size() % 2) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + long(h));
  return 0.5 * (lo + hi);
}

double hist_median(const std::array<double, kHistBins>& hist) {
  double total = 0;
  for (double h : hist) total += h;
  if (total <= 0) return 0.0;
  const double half = 0.5 * total;
  double cum = 0;
  for (int i = 0; i < kHistBins; ++i) {
    if (cum + hist[size_t(i)] >= half && hist[size_t(i)] > 0) {
      if (i == 0) return 0.0;
      const double lo = hist_bin_lower(i);
      if (i == kHistBins - 1) return lo;
      const double f = (half - cum) / hist[size_t(i)];  // position inside the octave [lo, 2 lo)
      return lo * std::exp2(f);
    }
    cum += hist[size_t(i)];
  }
  return 0.0;
}

std::vector<int> relative_outliers(const std::vector<float>& absmax, double k) {
  std::vector<double> v(absmax.begin(), absmax.end());
  const double med = median_of(v);
  std::vector<int> r;
  for (size_t c = 0; c < absmax.size(); ++c)
    if (absmax[c] > k * med && absmax[c] > 0) r.push_back(int(c));
  std::sort(r.begin(), r.end(), [&](int a, int b) { return absmax[size_t(a)] > absmax[size_t(b)]; });
  return r;
}

namespace {

TensorOutliers analyze_tensor(const TensorStats& t, const OutlierConfig& cfg) {
  TensorOutliers o;
  o.name = t.name;
  o.modules = t.modules;
  o.kind = t.kind;
  o.layer = t.layer;
  o.cols = t.cols;
  o.count = t.count;
  const std::vector<float> am = t.absmax_vec();
  for (size_t c = 0; c < am.size(); ++c)
    if (am[c] > o.absmax) {
      o.absmax = am[c];
      o.argmax_channel = int(c);
    }
  o.median_channel_absmax = median_of(std::vector<double>(am.begin(), am.end()));
  o.median_abs = hist_median(t.hist);
  o.kurtosis = t.kurtosis();
  o.share_ge[0] = t.share_ge(0);
  o.share_ge[1] = t.share_ge(1);
  o.relative = relative_outliers(am, cfg.rel_k);
  for (size_t c = 0; c < am.size(); ++c) {
    if (am[c] > cfg.massive_abs && am[c] > cfg.massive_ratio * o.median_abs) o.massive.push_back(int(c));
    if (t.count > 0 && t.ge[0][c] / t.count >= cfg.int8_token_share) o.int8_tokens.push_back(int(c));
  }
  std::sort(o.massive.begin(), o.massive.end(), [&](int a, int b) { return am[size_t(a)] > am[size_t(b)]; });
  o.top.assign(t.top.begin(), t.top.begin() + std::min<long>(long(t.top.size()), cfg.top));
  return o;
}

bool hidden_linear_input(const TensorOutliers& t, int64_t hidden) {
  return (t.kind == "attn_in" || t.kind == "mlp_in") && t.cols == hidden;
}

}  // namespace

OutlierReport analyze_outliers(const ActStats& s, const OutlierConfig& cfg) {
  if (!(cfg.rel_k > 0) || !(cfg.massive_ratio > 0) || cfg.int8_token_share < 0 || cfg.int8_token_share > 1 ||
      cfg.int8_layer_share < 0 || cfg.int8_layer_share > 1)
    throw ArgError("outliers: k and ratios must be positive, shares in [0, 1]");
  OutlierReport r;
  r.cfg = cfg;
  r.thresholds[0] = s.thresholds(0);
  r.thresholds[1] = s.thresholds(1);
  const Json& mdl = s.meta.at("model");
  r.num_layers = mdl.value("num_layers", 0);
  const int64_t hidden = mdl.value("hidden_size", int64_t(0));
  for (const auto& t : s.tensors) r.tensors.push_back(analyze_tensor(t, cfg));

  // LLM.int8: layers in which each hidden channel meets the token criterion.
  std::map<int, std::set<int>> layers_of;
  for (const auto& t : r.tensors)
    if (hidden_linear_input(t, hidden))
      for (int c : t.int8_tokens) layers_of[c].insert(t.layer);
  for (const auto& [c, ls] : layers_of)
    if (r.num_layers > 0 && double(ls.size()) >= cfg.int8_layer_share * r.num_layers)
      r.int8.push_back({c, int(ls.size())});

  std::map<std::string, std::map<int, int>> rel, mas;
  for (const auto& t : r.tensors) {
    for (int c : t.relative) ++rel[t.kind][c];
    for (int c : t.massive) ++mas[t.kind][c];
  }
  auto flatten = [](const std::map<std::string, std::map<int, int>>& m) {
    std::map<std::string, std::vector<std::pair<int, int>>> out;
    for (const auto& [k, chans] : m) {
      auto& v = out[k];
      for (const auto& [c, n] : chans) v.push_back({c, n});
      std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
    }
    return out;
  };
  r.relative_by_kind = flatten(rel);
  r.massive_by_kind = flatten(mas);
  return r;
}

// ---- output ------------------------------------------------------------------------------------

namespace {

Json top_json(const TopValue& v, const TopValueText& text) {
  Json j = {{"value", v.value}, {"sample", v.sample}, {"position", v.position}, {"token", v.token},
            {"channel", v.channel}};
  if (text && v.token >= 0) j["text"] = text(v);
  return j;
}

Json channel_counts_json(const std::map<std::string, std::vector<std::pair<int, int>>>& m) {
  Json j = Json::object();
  for (const auto& [kind, v] : m) {
    j[kind] = Json::array();
    for (const auto& [c, n] : v) j[kind].push_back({{"channel", c}, {"tensors", n}});
  }
  return j;
}

std::string kind_label(const std::string& k) {
  if (k == "attn_in") return "attn in (q/k/v)";
  if (k == "attn_out") return "attn out (o)";
  if (k == "mlp_in") return "mlp in (up/gate/fc1)";
  if (k == "mlp_out") return "mlp out (down/fc2)";
  return k;
}

}  // namespace

Json outlier_report_json(const OutlierReport& r, const TopValueText& text) {
  Json j;
  j["config"] = {{"rel_k", r.cfg.rel_k},
                 {"massive_abs", r.cfg.massive_abs},
                 {"massive_ratio", r.cfg.massive_ratio},
                 {"int8_threshold", r.thresholds[0]},
                 {"int8_token_share", r.cfg.int8_token_share},
                 {"int8_layer_share", r.cfg.int8_layer_share}};
  j["num_layers"] = r.num_layers;
  j["int8_channels"] = Json::array();
  for (const auto& c : r.int8) j["int8_channels"].push_back({{"channel", c.channel}, {"layers", c.layers}});
  j["relative_channels"] = channel_counts_json(r.relative_by_kind);
  j["massive_channels"] = channel_counts_json(r.massive_by_kind);
  j["tensors"] = Json::array();
  for (const auto& t : r.tensors) {
    Json tj = {{"name", t.name},
               {"modules", t.modules},
               {"kind", t.kind},
               {"layer", t.layer},
               {"cols", t.cols},
               {"tokens", t.count},
               {"absmax", t.absmax},
               {"argmax_channel", t.argmax_channel},
               {"median_channel_absmax", t.median_channel_absmax},
               {"absmax_over_median", t.ratio()},
               {"median_abs", t.median_abs},
               {"kurtosis", t.kurtosis},
               {"share_ge_" + fmt_g(r.thresholds[0]), t.share_ge[0]},
               {"share_ge_" + fmt_g(r.thresholds[1]), t.share_ge[1]},
               {"relative", t.relative},
               {"massive", t.massive},
               {"int8_token_channels", t.int8_tokens}};
    tj["top"] = Json::array();
    for (const auto& v : t.top) tj["top"].push_back(top_json(v, text));
    j["tensors"].push_back(tj);
  }
  return j;
}

std::string format_outlier_report(const OutlierReport& r, const TopValueText& text) {
  std::string out;
  out += "Per-layer activation outliers (relative: channel absmax > " + fmt_g(r.cfg.rel_k) +
         " x median channel absmax; massive: |x| > " + fmt_g(r.cfg.massive_abs) + " and > " +
         fmt_g(r.cfg.massive_ratio) + " x median |x|)\n\n";
  TextTable tab({"layer", "input", "absmax", "argmax", "med.ch.absmax", "ratio", "kurtosis",
                 ">=" + fmt_g(r.thresholds[0]), ">=" + fmt_g(r.thresholds[1]), "relative", "massive"});
  for (const auto& t : r.tensors)
    tab.add({t.layer < 0 ? "head" : std::to_string(t.layer), kind_label(t.kind), fmt_g(t.absmax), std::to_string(t.argmax_channel),
             fmt_g(t.median_channel_absmax), fmt_f(t.ratio(), 1), fmt_f(t.kurtosis, 1), fmt_pct(t.share_ge[0], 3),
             fmt_pct(t.share_ge[1], 3), fmt_list(t.relative), fmt_list(t.massive)});
  out += tab.str();

  out += "\nOutlier channels by input kind (channel: number of layers/tensors flagging it)\n";
  auto summary = [&](const std::string& label, const std::map<std::string, std::vector<std::pair<int, int>>>& m) {
    out += "  " + label + ":";
    if (m.empty()) out += " none";
    out += "\n";
    for (const auto& [kind, v] : m) {
      std::string line = "    " + kind_label(kind) + ": ";
      for (size_t i = 0; i < v.size() && i < 12; ++i)
        line += (i ? ", " : "") + std::to_string(v[i].first) + " (" + std::to_string(v[i].second) + ")";
      if (v.size() > 12) line += ", ... (" + std::to_string(v.size()) + " channels)";
      out += line + "\n";
    }
  };
  summary("relative", r.relative_by_kind);
  summary("massive", r.massive_by_kind);
  out += "  LLM.int8 (|x| >= " + fmt_g(r.thresholds[0]) + " in >= " + fmt_pct(r.cfg.int8_token_share, 0) +
         " of tokens in >= " + fmt_pct(r.cfg.int8_layer_share, 0) + " of " + std::to_string(r.num_layers) + " layers):";
  if (r.int8.empty()) out += " none";
  for (size_t i = 0; i < r.int8.size(); ++i)
    out += (i ? ", " : " ") + std::to_string(r.int8[i].channel) + " (" + std::to_string(r.int8[i].layers) + " layers)";
  out += "\n";

  out += "\nLargest values (per tensor, one row per token)\n\n";
  TextTable top({"tensor", "value", "channel", "sample", "pos", "token", "text"});
  for (const auto& t : r.tensors)
    for (const auto& v : t.top)
      top.add({t.name, fmt_g(v.value), std::to_string(v.channel), std::to_string(v.sample), std::to_string(v.position),
               std::to_string(v.token), text && v.token >= 0 ? printable(text(v), 60) : ""});
  out += top.str();
  return out;
}

}  // namespace calq
