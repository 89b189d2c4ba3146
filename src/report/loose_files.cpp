#include "report/loose_files.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "io/safetensors.h"

namespace calq::report {

namespace fs = std::filesystem;

LooseSpec parse_loose_spec(const std::string& spec, bool allow_method, const std::string& option) {
  const std::string form = allow_method ? "MODEL:SET[:METHOD]=FILE" : "MODEL:SET=FILE";
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq + 1 == spec.size())
    throw ArgError(option + " '" + spec + "': expected " + form + " (SET '-' for none)");
  std::vector<std::string> parts;
  const std::string labels = spec.substr(0, eq);
  for (size_t b = 0;;) {
    const size_t c = labels.find(':', b);
    parts.push_back(labels.substr(b, c == std::string::npos ? std::string::npos : c - b));
    if (c == std::string::npos) break;
    b = c + 1;
  }
  if (parts.size() < 2 || parts.size() > (allow_method ? 3u : 2u) || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty()))
    throw ArgError(option + " '" + spec + "': expected " + form + " (SET '-' for none)");
  LooseSpec s{parts[0], parts[1] == "-" ? "" : parts[1], parts.size() == 3 ? parts[2] : "", spec.substr(eq + 1)};
  if (!allow_method && s.set.empty()) throw ArgError(option + " '" + spec + "': statistics belong to a calibration set");
  return s;
}

std::string group_of_builder(const std::string& builder) {
  if (builder == "lang") return "language";
  if (builder == "task") return "content";
  if (builder == "text" || builder == "punct" || builder == "random-tokens") return "quality";
  if (builder == "mix") return "other";
  return "";
}

namespace {

bool is_flores_code(const std::string& s) {
  // xxx_Xxxx: ISO 639-3 language + ISO 15924 script, as FLORES-200 names its files.
  return s.size() == 8 && s[3] == '_' && std::all_of(s.begin(), s.begin() + 3, ::islower) && std::isupper(s[4]) &&
         std::all_of(s.begin() + 5, s.end(), ::islower);
}

std::string stats_builder(const std::string& path) {
  auto f = SafetensorsFile::open(path);
  auto it = f->metadata().find("stats");
  if (it == f->metadata().end()) throw FormatError(path + ": not a calq statistics file (no \"stats\" metadata)");
  const Json meta = parse_json(it->second, path + " metadata");
  const Json srcs = meta.value("sources", Json::array());
  if (srcs.is_array() && !srcs.empty() && srcs[0].contains("calib"))
    return srcs[0]["calib"].value("builder", std::string());
  return "";
}

}  // namespace

std::string data_label(const std::string& data_path) {
  const std::string name = fs::path(data_path).filename().string();
  if (name.rfind("wiki", 0) == 0) return "wikitext2";
  if (name.rfind("tinystories", 0) == 0) return "tinystories";
  if (name.rfind("c4", 0) == 0) return "c4";
  std::string stem = name.substr(0, name.find('.'));
  if (is_flores_code(stem)) return stem;
  return stem.empty() ? name : stem;
}

std::vector<ResultRow> rows_from_results(const Json& j, const std::string& what) {
  const std::string ev = json_get<std::string>(j, "evaluation", what);
  const Json metrics = json_get<Json>(j, "metrics", what);
  if (!metrics.is_object()) throw FormatError(what + ": 'metrics' is not an object");
  auto num = [&](const std::string& k) -> double {
    auto it = metrics.find(k);
    return it != metrics.end() && it->is_number() ? it->get<double>() : NAN;
  };
  auto row = [&](const std::string& eval, const std::string& key) {
    ResultRow r;
    r.eval = eval;
    r.value = num(key);
    r.stderr_ = num(key + "_stderr");
    r.source = what;
    if (std::isnan(r.value)) throw FormatError(what + ": metrics has no number '" + key + "'");
    return r;
  };
  const Json data = json_get_or<Json>(j, "data", Json::object(), what);
  std::vector<ResultRow> out;
  if (ev == "ppl") {
    out.push_back(row("ppl:" + data_label(json_get<std::string>(data, "path", what + ": data")), "ppl"));
  } else if (ev == "kld") {
    std::string src = data.value("data", std::string());
    if (src.empty()) src = data.value("path", std::string());
    if (src.empty()) src = data.value("ref", std::string());
    out.push_back(row("kld:" + data_label(src), "kld_mean"));
  } else if (ev == "tasks") {
    for (const auto& [k, v] : metrics.items()) {
      const size_t dot = k.rfind(".acc");
      if (dot != std::string::npos && dot + 4 == k.size()) out.push_back(row("acc:" + k.substr(0, dot), k));
    }
    if (out.empty()) throw FormatError(what + ": a tasks results file without any <task>.acc metric");
  } else {
    throw FormatError(what + ": unknown evaluation '" + ev + "' (ppl, kld or tasks)");
  }
  return out;
}

std::pair<std::string, MethodSettings> method_from_model(const std::string& model_dir, std::string* builder) {
  MethodSettings s;
  const fs::path cfg_path = fs::path(model_dir) / "config.json";
  if (!fs::is_regular_file(cfg_path)) return {"", s};
  const Json cfg = load_json_file(cfg_path.string());
  auto it = cfg.find("calq_quant");
  if (it == cfg.end() || !it->is_object()) return {"float", s};
  const std::string what = cfg_path.string() + ": calq_quant";
  const std::string method = json_get<std::string>(*it, "method", what);
  const Json st = json_get_or<Json>(*it, "settings", Json::object(), what);
  if (method == "smoothquant" || method == "naive-w8a8") {
    s.w_bits = json_get_or<int>(st, "w_bits", 8, what);
    s.a_bits = json_get_or<int>(st, "a_bits", 8, what);
    s.w_granularity = json_get_or<std::string>(st, "weights", "", what);
    s.a_granularity = json_get_or<std::string>(st, "activations", "", what);
    if (method == "smoothquant") s.alpha = json_get_or<double>(st, "alpha", NAN, what);
  } else {
    s.w_bits = json_get_or<int>(st, "bits", -1, what);
    s.group_size = json_get_or<int>(st, "group_size", 0, what);
    if (st.contains("fixed_alpha")) s.alpha = json_get<double>(st, "fixed_alpha", what);
  }
  if (builder) {
    const fs::path state = fs::path(model_dir) / "qstate" / "state.json";
    if (fs::is_regular_file(state)) {
      const Json sj = load_json_file(state.string());
      const Json calib = sj.value("calib", Json());
      if (calib.is_object() && calib.contains("manifest") && calib["manifest"].is_object())
        *builder = calib["manifest"].value("builder", std::string());
    }
  }
  return {method, s};
}

ReportInput build_report_input(const LooseFiles& lf) {
  ReportInput in;
  if (!lf.title.empty()) in.title = lf.title;
  std::map<std::string, std::string> group;  // explicit --set first, then what builders say
  for (const auto& g : lf.groups) {
    const size_t eq = g.find('=');
    if (eq == std::string::npos || eq == 0) throw ArgError("--set '" + g + "': expected SET=GROUP");
    check_calib_group(g.substr(eq + 1), "--set " + g);
    group[g.substr(0, eq)] = g.substr(eq + 1);
  }
  std::map<std::string, std::string> inferred;
  auto synthetic = [&](const std::string& m) {
    return std::find(lf.synthetic.begin(), lf.synthetic.end(), m) != lf.synthetic.end();
  };
  for (const auto& spec : lf.stats) {
    const LooseSpec s = parse_loose_spec(spec, false, "--stats");
    const std::string g = group_of_builder(stats_builder(s.path));
    if (!g.empty()) inferred.emplace(s.set, g);
    in.stats.push_back({s.model, synthetic(s.model), {s.set, ""}, s.path});
  }
  for (const auto& spec : lf.evals) {
    const LooseSpec s = parse_loose_spec(spec, true, "--eval");
    const Json j = load_json_file(s.path);
    std::vector<ResultRow> rows = rows_from_results(j, s.path);
    std::string builder;
    const std::string model_dir = j.contains("model") ? j["model"].value("path", std::string()) : "";
    auto [method, settings] = method_from_model(model_dir, &builder);
    if (!s.method.empty()) method = s.method;
    if (method.empty())
      throw ArgError("--eval " + spec + ": cannot tell the method (the evaluated model " + model_dir +
                     " is not readable from here): give it as MODEL:SET:METHOD=FILE");
    if (!s.set.empty() && !group_of_builder(builder).empty()) inferred.emplace(s.set, group_of_builder(builder));
    for (auto& r : rows) {
      r.model = s.model;
      r.synthetic = synthetic(s.model);
      r.calib.label = s.set;
      r.method = method;
      r.settings = settings;
      in.results.push_back(std::move(r));
    }
  }
  auto resolve = [&](CalibRef& c) {
    if (c.label.empty()) {
      c.group = "other";
      return;
    }
    if (auto it = group.find(c.label); it != group.end()) c.group = it->second;
    else if (auto jt = inferred.find(c.label); jt != inferred.end()) c.group = jt->second;
    else c.group = is_flores_code(c.label) ? "language" : "other";
  };
  for (auto& r : in.results) resolve(r.calib);
  for (auto& s : in.stats) resolve(s.calib);
  in.validate();
  return in;
}

}  // namespace calq::report
