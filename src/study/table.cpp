#include "study/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "study/config.h"

namespace calq::study {

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string metric_of(const std::string& eval) { return eval.substr(0, eval.find(':')); }

// Shown values: perplexity as is, KLD as is, accuracy in %.
double shown(const std::string& metric, double v) { return metric == "acc" ? 100.0 * v : v; }

std::string value_text(const std::string& metric, double v) {
  if (metric == "ppl") return fmt("%.4f", v);
  if (metric == "kld") return fmt("%.5f", v);
  return fmt("%.2f", v);
}

// Change against float: % for perplexity, points for accuracy, the value itself for KLD.
std::string delta_text(const std::string& metric, double v, double f) {
  if (std::isnan(f)) return "";
  if (metric == "ppl") return fmt("%+.2f%%", 100.0 * (v - f) / f);
  if (metric == "acc") return fmt("%+.2f pt", v - f);
  return "";
}

std::string model_title(const ResultRecord& r) {
  if (!r.synthetic || r.model.find("synthetic") != std::string::npos) return r.model;
  return r.model + " (synthetic)";
}

std::string column(const ResultRecord& r, bool with_kv) {
  return with_kv && r.kv_label != "kv16" ? r.method_label + " " + r.kv_label : r.method_label;
}

std::string row_label(const ResultRecord& r) {
  std::string s = r.calib.empty() ? "-" : r.calib;
  if (r.seed >= 0) s += " s" + std::to_string(r.seed);
  return s;
}

bool wanted(const TableOptions& o, const std::string& eval) {
  if (o.metrics.empty()) return true;
  for (const auto& m : o.metrics)
    if (glob_match(m, eval)) return true;
  return false;
}

template <class T>
void add_unique(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The float baseline of (model, kv label, eval); NaN when absent. Uses the float model without KV
// quantization, the reference every change is measured against.
double float_value(const std::vector<ResultRecord>& rs, const std::string& model, const std::string& eval) {
  for (const auto& r : rs)
    if (r.model == model && r.method == "float" && r.kv_label == "kv16" && r.eval == eval) return shown(metric_of(eval), r.value);
  return NAN;
}

}  // namespace

std::vector<ResultRecord> result_records(const Store& s) {
  std::map<std::string, CellRow> cells;
  for (const CellRow& c : s.cells())
    if (c.status == "done") cells[c.cell] = c;
  std::map<std::tuple<std::string, std::string, std::string>, double> stderrs;
  std::vector<std::tuple<std::string, std::string, std::string, double>> vals;
  for (const MetricRow& m : s.metrics()) {
    if (!cells.count(m.cell)) continue;
    std::string name;
    if (m.metric == "ppl") name = "ppl:" + m.eval;
    else if (m.metric == "kld_mean") name = "kld:" + m.eval;
    else if (m.metric.size() > 4 && m.metric.ends_with(".acc")) name = "acc:" + m.metric.substr(0, m.metric.size() - 4);
    if (m.metric == "ppl_stderr") stderrs[{m.cell, m.eval, "ppl"}] = m.value;
    if (m.metric == "kld_mean_stderr") stderrs[{m.cell, m.eval, "kld"}] = m.value;
    if (m.metric.ends_with(".acc_stderr")) stderrs[{m.cell, m.eval, "acc:" + m.metric.substr(0, m.metric.size() - 11)}] = m.value;
    if (!name.empty()) vals.emplace_back(m.cell, m.eval, name, m.value);
  }
  std::vector<ResultRecord> out;
  for (const auto& [cell, eval, name, v] : vals) {
    const CellRow& c = cells.at(cell);
    ResultRecord r;
    r.cell = cell;
    r.model = c.model;
    r.synthetic = c.synthetic;
    r.calib = c.calib;
    r.calib_group = c.calib_group;
    r.method = c.method;
    r.method_label = c.method_label;
    r.kv_label = c.kv_label;
    r.seed = c.seed;
    r.eval = name;
    r.value = v;
    const Json res = s.cell_json(cell);
    r.settings = res.is_object() ? res.value("report_settings", Json::object()) : Json::object();
    const std::string key = name.starts_with("acc:") ? name : metric_of(name);
    if (auto it = stderrs.find({cell, eval, key}); it != stderrs.end()) r.stderr_ = it->second;
    out.push_back(r);
  }
  std::stable_sort(out.begin(), out.end(), [&](const ResultRecord& a, const ResultRecord& b) {
    return cells.at(a.cell).position < cells.at(b.cell).position;
  });
  return out;
}

std::string render_tables(const Store& s, const TableOptions& o) {
  const std::vector<ResultRecord> rs = result_records(s);
  std::vector<std::string> models, evals;
  std::set<std::string> kvs;
  for (const auto& r : rs) {
    add_unique(models, r.model);
    if (wanted(o, r.eval)) add_unique(evals, r.eval);
    kvs.insert(r.kv_label);
  }
  const bool with_kv = kvs.size() > 1 || (kvs.size() == 1 && *kvs.begin() != "kv16");
  std::string out;
  if (o.format == "csv") {
    out = "model,synthetic,eval,calib,calib_group,seed,method,method_label,kv,value,stderr,float_value,delta\n";
    for (const auto& r : rs) {
      if (!wanted(o, r.eval)) continue;
      const std::string m = metric_of(r.eval);
      const double v = shown(m, r.value), f = float_value(rs, r.model, r.eval);
      out += csv_field(r.model) + "," + (r.synthetic ? "1" : "0") + "," + csv_field(r.eval) + "," + csv_field(r.calib) +
             "," + csv_field(r.calib_group) + "," + (r.seed >= 0 ? std::to_string(r.seed) : "") + "," + r.method + "," +
             csv_field(r.method_label) + "," + r.kv_label + "," + fmt("%.10g", v) + "," +
             (r.stderr_ >= 0 ? fmt("%.10g", shown(m, r.stderr_)) : "") + "," + (std::isnan(f) ? "" : fmt("%.10g", f)) +
             "," + (std::isnan(f) ? "" : fmt("%.10g", v - f)) + "\n";
    }
    return out;
  }
  for (const auto& model : models) {
    for (const auto& eval : evals) {
      std::vector<std::string> cols, rows;
      std::map<std::pair<std::string, std::string>, double> cellv;
      const ResultRecord* any = nullptr;
      for (const auto& r : rs) {
        if (r.model != model || r.eval != eval || r.method == "float") continue;
        any = &r;
        add_unique(cols, column(r, with_kv));
        add_unique(rows, row_label(r));
        cellv[{row_label(r), column(r, with_kv)}] = r.value;
      }
      const double f = float_value(rs, model, eval);
      if (!any && std::isnan(f)) continue;
      const std::string m = metric_of(eval);
      const ResultRecord* title = any;
      for (const auto& r : rs)
        if (!title && r.model == model) title = &r;
      out += "### " + model_title(*title) + " — " + eval;
      if (!std::isnan(f)) out += " (float: " + value_text(m, f) + ")";
      out += "\n\n";
      if (cols.empty()) {
        out += "(no quantized cells)\n\n";
        continue;
      }
      out += "| calibration |";
      for (const auto& c : cols) out += " " + c + " |";
      out += "\n|---|";
      for (size_t i = 0; i < cols.size(); ++i) out += "---:|";
      out += "\n";
      for (const auto& row : rows) {
        out += "| " + row + " |";
        for (const auto& c : cols) {
          auto it = cellv.find({row, c});
          if (it == cellv.end()) {
            out += " |";
            continue;
          }
          const double v = shown(m, it->second);
          const std::string d = delta_text(m, v, f);
          out += " " + value_text(m, v) + (d.empty() ? "" : " (" + d + ")") + " |";
        }
        out += "\n";
      }
      out += "\n";
    }
  }
  if (o.robustness) out += render_robustness(s, o);
  return out;
}

std::string render_robustness(const Store& s, const TableOptions& o) {
  const std::vector<ResultRecord> rs = result_records(s);
  struct Acc {
    std::string model, eval, method;
    std::vector<double> v;
    bool synthetic = false;
  };
  std::vector<Acc> acc;
  std::set<std::string> kvs;
  for (const auto& r : rs) kvs.insert(r.kv_label);
  const bool with_kv = kvs.size() > 1 || (kvs.size() == 1 && *kvs.begin() != "kv16");
  for (const auto& r : rs) {
    if (r.method == "float" || r.calib.empty() || !wanted(o, r.eval)) continue;  // spreads are over calibration sets
    const std::string col = column(r, with_kv);
    auto it = std::find_if(acc.begin(), acc.end(),
                           [&](const Acc& a) { return a.model == r.model && a.eval == r.eval && a.method == col; });
    if (it == acc.end()) {
      acc.push_back({r.model, r.eval, col, {}, r.synthetic});
      it = acc.end() - 1;
    }
    it->v.push_back(shown(metric_of(r.eval), r.value));
  }
  std::string out;
  if (o.format == "csv") {
    out = "model,synthetic,eval,method,sets,float_value,min,max,spread,spread_vs_float\n";
  } else {
    out = "### Robustness: spread across calibration sets (max − min)\n\n"
          "| model | eval | method | sets | float | min | max | spread | spread vs float |\n"
          "|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  }
  for (const auto& a : acc) {
    const std::string m = metric_of(a.eval);
    const double lo = *std::min_element(a.v.begin(), a.v.end()), hi = *std::max_element(a.v.begin(), a.v.end());
    const double f = float_value(rs, a.model, a.eval);
    // Relative to float: % of the float perplexity; accuracy points are already relative; KLD's
    // float value is 0, so its spread stands alone.
    std::string rel;
    if (m == "ppl" && !std::isnan(f)) rel = fmt("%.2f%%", 100.0 * (hi - lo) / f);
    if (m == "acc") rel = fmt("%.2f pt", hi - lo);
    const std::string name = a.synthetic && a.model.find("synthetic") == std::string::npos ? a.model + " (synthetic)" : a.model;
    if (o.format == "csv") {
      out += csv_field(name) + "," + (a.synthetic ? "1" : "0") + "," + a.eval + "," + csv_field(a.method) + "," +
             std::to_string(a.v.size()) + "," + (std::isnan(f) ? "" : fmt("%.10g", f)) + "," + fmt("%.10g", lo) + "," +
             fmt("%.10g", hi) + "," + fmt("%.10g", hi - lo) + "," +
             (m == "ppl" && !std::isnan(f) ? fmt("%.10g", (hi - lo) / f) : m == "acc" ? fmt("%.10g", hi - lo) : "") + "\n";
    } else {
      out += "| " + name + " | " + a.eval + " | " + a.method + " | " + std::to_string(a.v.size()) + " | " +
             (std::isnan(f) ? "-" : value_text(m, f)) + " | " + value_text(m, lo) + " | " + value_text(m, hi) + " | " +
             value_text(m, hi - lo) + " | " + (rel.empty() ? "-" : rel) + " |\n";
    }
  }
  if (o.format != "csv") out += "\n";
  return out;
}

}  // namespace calq::study
