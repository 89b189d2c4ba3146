#include "report/input.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

namespace calq::report {

const std::vector<std::string>& calib_groups() {
  static const std::vector<std::string> g = {"quality", "content", "language", "other"};
  return g;
}

void check_calib_group(const std::string& g, const std::string& what) {
  const auto& all = calib_groups();
  if (std::find(all.begin(), all.end(), g) == all.end())
    throw ArgError(what + ": unknown calibration-set group '" + g + "' (quality, content, language or other)");
}

namespace {

bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

std::string fmt_num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// Compact settings text: "w4g128" (weight-only), "W8A8" (weights and activations), "KV4",
// then non-default granularities and α. `skip` leaves out the bits of one axis.
std::string describe_settings(const MethodSettings& s, const std::string& skip) {
  std::string out;
  auto add = [&](const std::string& part) {
    if (part.empty()) return;
    if (!out.empty()) out += ' ';
    out += part;
  };
  std::string bits;
  if (s.a_bits > 0) {
    if (s.w_bits > 0 && skip != "w") bits += "W" + std::to_string(s.w_bits);
    if (skip != "a") bits += "A" + std::to_string(s.a_bits);
  } else if (s.w_bits > 0 && skip != "w") {
    bits += "w" + std::to_string(s.w_bits);
  }
  if (s.group_size > 0) bits += "g" + std::to_string(s.group_size);
  add(bits);
  if (s.kv_bits > 0 && skip != "kv") add("KV" + std::to_string(s.kv_bits));
  auto gran = [](std::string g, const char* dflt) {
    if (g == dflt) return std::string();
    std::replace(g.begin(), g.end(), '_', '-');
    return g;
  };
  if (s.group_size < 0) add("per-channel");
  add(gran(s.w_granularity, "per_channel"));
  add(gran(s.a_granularity, "per_token"));
  if (skip != "kv") add(gran(s.kv_granularity, ""));
  if (!std::isnan(s.alpha)) add("α" + fmt_num(s.alpha));
  return out;
}

}  // namespace

bool MethodSettings::operator==(const MethodSettings& o) const {
  return w_bits == o.w_bits && group_size == o.group_size && same_double(alpha, o.alpha) && a_bits == o.a_bits &&
         kv_bits == o.kv_bits && w_granularity == o.w_granularity && a_granularity == o.a_granularity &&
         kv_granularity == o.kv_granularity;
}

std::string MethodSettings::describe() const { return describe_settings(*this, ""); }
std::string MethodSettings::describe_without(const std::string& axis) const { return describe_settings(*this, axis); }

std::string method_display(const std::string& method) {
  if (method == "rtn") return "RTN";
  if (method == "gptq") return "GPTQ";
  if (method == "awq") return "AWQ";
  if (method == "smoothquant") return "SmoothQuant";
  if (method == "naive-w8a8") return "naive W8A8";
  return method;
}

std::string method_label(const std::string& method, const std::string& settings) {
  const std::string m = method_display(method);
  if (settings.empty()) return m;
  // "naive W8A8" with W8A8 settings says it once.
  if (settings.rfind("W8A8", 0) == 0 && m.size() >= 4 && m.compare(m.size() - 4, 4, "W8A8") == 0) {
    const std::string rest = settings.substr(4);
    return rest.empty() ? m : m + rest;
  }
  return m + " " + settings;
}

std::string ResultRow::method_key() const { return method_label(method, settings.describe()); }

std::vector<std::string> ReportInput::models() const {
  std::vector<std::string> out;
  auto add = [&](const std::string& m) {
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  };
  for (const auto& r : results) add(r.model);
  for (const auto& s : stats) add(s.model);
  return out;
}

std::vector<CalibRef> ReportInput::calib_sets() const {
  std::vector<CalibRef> out;
  auto add = [&](const CalibRef& c) {
    if (c.label.empty()) return;
    for (const auto& o : out)
      if (o.label == c.label) return;
    out.push_back(c);
  };
  for (const auto& s : stats) add(s.calib);
  for (const auto& r : results) add(r.calib);
  return out;
}

bool ReportInput::synthetic(const std::string& model) const {
  for (const auto& r : results)
    if (r.model == model && r.synthetic) return true;
  for (const auto& s : stats)
    if (s.model == model && s.synthetic) return true;
  return false;
}

std::pair<std::string, std::string> split_eval(const std::string& eval) {
  const size_t c = eval.find(':');
  if (c == std::string::npos || c == 0 || c + 1 == eval.size())
    throw ArgError("evaluation name '" + eval + "': expected METRIC:DATA, e.g. ppl:wikitext2 or acc:arc_challenge");
  return {eval.substr(0, c), eval.substr(c + 1)};
}

std::string metric_axis_label(const std::string& metric) {
  if (metric == "ppl") return "perplexity (lower is better)";
  if (metric == "kld") return "KL divergence to float, nats/token (lower is better)";
  if (metric == "acc") return "accuracy, fraction correct (higher is better)";
  if (metric == "acc_norm") return "length-normalized accuracy, fraction (higher is better)";
  return metric;
}

bool lower_is_better(const std::string& metric) { return metric != "acc" && metric != "acc_norm"; }

void ReportInput::validate() const {
  std::map<std::string, std::string> group_of;
  auto check_calib = [&](const CalibRef& c, const std::string& what) {
    check_calib_group(c.group, what);
    if (c.label.empty()) return;
    auto [it, fresh] = group_of.emplace(c.label, c.group);
    if (!fresh && it->second != c.group)
      throw ArgError(what + ": calibration set '" + c.label + "' is in group '" + c.group + "' here but in '" +
                     it->second + "' elsewhere");
  };
  std::set<std::tuple<std::string, std::string, std::string, std::string>> seen;
  for (size_t i = 0; i < results.size(); ++i) {
    const ResultRow& r = results[i];
    const std::string what = "result row " + std::to_string(i) + (r.source.empty() ? "" : " (" + r.source + ")");
    if (r.model.empty()) throw ArgError(what + ": empty model label");
    if (r.method.empty()) throw ArgError(what + ": empty method");
    split_eval(r.eval);
    check_calib(r.calib, what);
    if (r.is_float() && !r.calib.label.empty())
      throw ArgError(what + ": the float baseline has no calibration set (got '" + r.calib.label + "')");
    if (!std::isfinite(r.value)) throw ArgError(what + ": value of " + r.eval + " is not a finite number");
    if (!std::isnan(r.stderr_) && !(r.stderr_ >= 0 && std::isfinite(r.stderr_)))
      throw ArgError(what + ": stderr of " + r.eval + " must be finite and >= 0");
    if (!seen.emplace(r.model, r.calib.label, r.method_key(), r.eval).second)
      throw ArgError(what + ": a second value for model '" + r.model + "', set '" + r.calib.label + "', method '" +
                     r.method_key() + "', " + r.eval);
  }
  std::set<std::pair<std::string, std::string>> seen_stats;
  for (size_t i = 0; i < stats.size(); ++i) {
    const StatsInput& s = stats[i];
    const std::string what = "statistics input " + std::to_string(i) + " (" + s.path + ")";
    if (s.model.empty() || s.calib.label.empty()) throw ArgError(what + ": needs a model and a calibration-set label");
    if (s.path.empty()) throw ArgError(what + ": empty path");
    check_calib(s.calib, what);
    if (!seen_stats.emplace(s.model, s.calib.label).second)
      throw ArgError(what + ": a second statistics file for model '" + s.model + "', set '" + s.calib.label + "'");
  }
}

// ---- JSON --------------------------------------------------------------------------------

namespace {

Json num_or_null(double v) { return std::isnan(v) ? Json(nullptr) : Json(v); }

Json settings_json(const MethodSettings& s) {
  Json j = Json::object();
  if (s.w_bits > 0) j["w_bits"] = s.w_bits;
  if (s.group_size != 0) j["group_size"] = s.group_size;
  if (!std::isnan(s.alpha)) j["alpha"] = s.alpha;
  if (s.a_bits > 0) j["a_bits"] = s.a_bits;
  if (s.kv_bits > 0) j["kv_bits"] = s.kv_bits;
  if (!s.w_granularity.empty()) j["w_granularity"] = s.w_granularity;
  if (!s.a_granularity.empty()) j["a_granularity"] = s.a_granularity;
  if (!s.kv_granularity.empty()) j["kv_granularity"] = s.kv_granularity;
  return j;
}

MethodSettings settings_from(const Json& j, const std::string& what) {
  MethodSettings s;
  if (j.is_null()) return s;
  s.w_bits = json_get_or<int>(j, "w_bits", -1, what);
  s.group_size = json_get_or<int>(j, "group_size", 0, what);
  s.alpha = json_get_or<double>(j, "alpha", NAN, what);
  s.a_bits = json_get_or<int>(j, "a_bits", -1, what);
  s.kv_bits = json_get_or<int>(j, "kv_bits", -1, what);
  s.w_granularity = json_get_or<std::string>(j, "w_granularity", "", what);
  s.a_granularity = json_get_or<std::string>(j, "a_granularity", "", what);
  s.kv_granularity = json_get_or<std::string>(j, "kv_granularity", "", what);
  return s;
}

CalibRef calib_from(const Json& j, const std::string& what) {
  CalibRef c;
  if (!j.contains("calib") || j["calib"].is_null()) return c;
  c.label = json_get<std::string>(j["calib"], "label", what + ".calib");
  c.group = json_get_or<std::string>(j["calib"], "group", "other", what + ".calib");
  return c;
}

Json calib_json(const CalibRef& c) {
  if (c.label.empty()) return nullptr;
  return {{"label", c.label}, {"group", c.group}};
}

}  // namespace

MethodSettings method_settings_from_json(const Json& j, const std::string& what) { return settings_from(j, what); }

Json report_input_to_json(const ReportInput& in) {
  Json j = {{"format", "calq-report-input"}, {"version", 1}, {"title", in.title}};
  j["results"] = Json::array();
  for (const auto& r : in.results)
    j["results"].push_back({{"model", r.model},
                            {"synthetic", r.synthetic},
                            {"calib", calib_json(r.calib)},
                            {"method", r.method},
                            {"settings", settings_json(r.settings)},
                            {"eval", r.eval},
                            {"value", r.value},
                            {"stderr", num_or_null(r.stderr_)},
                            {"source", r.source}});
  j["stats"] = Json::array();
  for (const auto& s : in.stats)
    j["stats"].push_back({{"model", s.model}, {"synthetic", s.synthetic}, {"calib", calib_json(s.calib)}, {"path", s.path}});
  return j;
}

ReportInput report_input_from_json(const Json& j, const std::string& what) {
  if (json_get_or<std::string>(j, "format", "", what) != "calq-report-input")
    throw FormatError(what + ": not a report input (expected \"format\": \"calq-report-input\")");
  ReportInput in;
  in.title = json_get_or<std::string>(j, "title", in.title, what);
  const Json results = json_get_or<Json>(j, "results", Json::array(), what);
  const Json stats = json_get_or<Json>(j, "stats", Json::array(), what);
  if (!results.is_array() || !stats.is_array()) throw ConfigError(what + ": 'results' and 'stats' must be arrays");
  for (size_t i = 0; i < results.size(); ++i) {
    const Json& e = results[i];
    const std::string w = what + ": results[" + std::to_string(i) + "]";
    ResultRow r;
    r.model = json_get<std::string>(e, "model", w);
    r.synthetic = json_get_or<bool>(e, "synthetic", false, w);
    r.calib = calib_from(e, w);
    r.method = json_get<std::string>(e, "method", w);
    r.settings = settings_from(json_get_or<Json>(e, "settings", nullptr, w), w + ".settings");
    r.eval = json_get<std::string>(e, "eval", w);
    r.value = json_get<double>(e, "value", w);
    r.stderr_ = json_get_or<double>(e, "stderr", NAN, w);
    r.source = json_get_or<std::string>(e, "source", "", w);
    in.results.push_back(std::move(r));
  }
  for (size_t i = 0; i < stats.size(); ++i) {
    const Json& e = stats[i];
    const std::string w = what + ": stats[" + std::to_string(i) + "]";
    StatsInput s;
    s.model = json_get<std::string>(e, "model", w);
    s.synthetic = json_get_or<bool>(e, "synthetic", false, w);
    s.calib = calib_from(e, w);
    s.path = json_get<std::string>(e, "path", w);
    in.stats.push_back(std::move(s));
  }
  return in;
}

}  // namespace calq::report
