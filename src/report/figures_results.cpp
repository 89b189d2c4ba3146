// Figures and tables from result rows: calibration-set figures per group, the robustness
// overview, metric vs bits, pivot tables (see report/figures.h).
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "report/figures.h"
#include "report/palette.h"

namespace calq::report {

namespace {

template <class T>
void add_unique(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

std::string fmt4(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// Calibration-set labels in the report's order (ReportInput::calib_sets).
void order_sets(const ReportInput& in, std::vector<std::string>& sets) {
  std::vector<std::string> order{""};  // no calibration set first
  for (const auto& c : in.calib_sets()) order.push_back(c.label);
  auto pos = [&](const std::string& s) { return std::find(order.begin(), order.end(), s) - order.begin(); };
  std::stable_sort(sets.begin(), sets.end(), [&](const auto& a, const auto& b) { return pos(a) < pos(b); });
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? NAN : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The float baseline of (model, eval), NaN when absent: the float model with a full-precision KV
// cache (a float row with KV bits is a point of the KV axis).
double float_value(const ReportInput& in, const std::string& model, const std::string& eval) {
  for (const auto& r : in.results)
    if (r.model == model && r.eval == eval && r.is_float() && r.settings.kv_bits <= 0) return r.value;
  return NAN;
}

// How a value compares with the float baseline: relative change in % for ppl/kld-like metrics,
// a difference in percentage points for accuracies. NaN when there is no usable baseline.
double delta_vs_float(const std::string& metric, double v, double f) {
  if (std::isnan(f)) return NAN;
  if (!lower_is_better(metric)) return 100.0 * (v - f);
  return f != 0 ? 100.0 * (v / f - 1.0) : NAN;
}
std::string delta_label(const std::string& metric) {
  return lower_is_better(metric) ? "change vs float (%)" : "change vs float (percentage points)";
}

// Log scale when the values span more than a factor of 20 (and are all positive).
bool wants_log(const std::vector<double>& v) {
  double lo = INFINITY, hi = 0;
  for (double x : v) {
    if (!(x > 0)) return false;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  return !v.empty() && hi / lo > 20;
}

// Series style of each method key: the method's colour; variants of one method (other bits,
// group size, ...) differ in point type and dash.
struct MethodStyle {
  std::string color;
  int point = 7, dash = 1;
};
// Methods in a fixed order (float, RTN, GPTQ, AWQ, SmoothQuant, naive W8A8, others), variants
// of a method by their label.
int method_rank(const std::string& m) {
  static const std::vector<std::string> order = {"float", "rtn", "gptq", "awq", "smoothquant", "naive-w8a8"};
  return int(std::find(order.begin(), order.end(), m) - order.begin());
}
void order_methods(std::vector<std::pair<std::string, std::string>>& keys) {
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    const int ra = method_rank(a.second), rb = method_rank(b.second);
    return ra != rb ? ra < rb : a.first < b.first;
  });
}

std::map<std::string, MethodStyle> method_styles(std::vector<std::pair<std::string, std::string>>& keys) {
  order_methods(keys);
  static const int points[] = {7, 5, 9, 13, 11, 15};
  std::map<std::string, int> variants;
  std::map<std::string, MethodStyle> out;
  for (const auto& [key, method] : keys) {
    if (out.count(key)) continue;
    const int v = variants[method]++;
    out[key] = {method_color(method), points[v % 6], 1 + v % 4};
  }
  return out;
}

// Panel title of an evaluation: "ppl:wikitext2" -> "perplexity, wikitext2".
std::string eval_title(const std::string& eval) {
  const auto [metric, data] = split_eval(eval);
  const std::string m = metric == "ppl"   ? "perplexity"
                        : metric == "kld" ? "KL divergence to float"
                        : metric == "acc" ? "accuracy"
                                          : metric;
  return m + ", " + data;
}

std::string settings_cell(int v) { return v > 0 ? std::to_string(v) : ""; }

std::vector<std::string> row_csv(const ResultRow& r, double f, double d) {
  return {r.model,
          r.calib.label,
          r.calib.group,
          r.method,
          r.method_key(),
          settings_cell(r.settings.w_bits),
          r.settings.group_size ? std::to_string(r.settings.group_size) : "",
          std::isnan(r.settings.alpha) ? "" : fmt_exact(r.settings.alpha),
          settings_cell(r.settings.a_bits),
          settings_cell(r.settings.kv_bits),
          r.eval,
          fmt_exact(r.value),
          std::isnan(r.stderr_) ? "" : fmt_exact(r.stderr_),
          std::isnan(f) ? "" : fmt_exact(f),
          std::isnan(d) ? "" : fmt_exact(d),
          r.source};
}
const std::vector<std::string>& row_csv_header() {
  static const std::vector<std::string> h = {"model", "calib_set", "calib_group", "method", "method_key", "w_bits",
                                             "group_size", "alpha", "a_bits", "kv_bits", "eval", "value", "stderr",
                                             "float_value", "delta_vs_float", "source"};
  return h;
}

std::string group_title(const std::string& g) {
  if (g == "quality") return "data quality (text vs nonsense)";
  if (g == "content") return "content (task data)";
  if (g == "language") return "language";
  return "other calibration sets";
}

// ---- calibration-set figures ----------------------------------------------------------------

std::optional<Figure> group_figure(const ReportInput& in, const std::string& model, const std::string& group) {
  std::vector<const ResultRow*> rows;
  std::vector<std::string> evals, sets;
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& r : in.results)
    if (r.model == model && !r.is_float() && r.calib.group == group && !r.calib.label.empty()) {
      rows.push_back(&r);
      add_unique(evals, r.eval);
      add_unique(sets, r.calib.label);
      add_unique(keys, {r.method_key(), r.method});
    }
  if (rows.empty()) return std::nullopt;
  order_sets(in, sets);
  const auto styles = method_styles(keys);
  Figure f;
  f.id = "calib-" + slug(group) + "-" + slug(model);
  f.title = model + ": " + group_title(group);
  f.caption = "Each method's result per calibration set (points, ±1 standard error where known) beside the "
              "float model (dashed line). Flat rows of points mean the calibration set does not matter.";
  f.columns = evals.size() > 1 ? 2 : 1;
  f.data.header = row_csv_header();
  for (const auto& eval : evals) {
    const auto [metric, data] = split_eval(eval);
    Panel p;
    p.title = eval_title(eval);
    p.x.label = "calibration set";
    p.x.categories = sets;
    p.y.label = metric_axis_label(metric);
    const double fv = float_value(in, model, eval);
    std::vector<double> all;
    if (!std::isnan(fv)) {
      p.hlines.push_back({"float " + fmt4(fv), "#000000", fv, 2});
      all.push_back(fv);
    }
    const double n = double(keys.size()), width = std::min(0.18, 0.72 / n);
    for (size_t k = 0; k < keys.size(); ++k) {
      Series s;
      s.name = keys[k].first;
      s.color = styles.at(keys[k].first).color;
      s.point = styles.at(keys[k].first).point;
      s.lines = false;
      bool bars = false;
      for (const ResultRow* r : rows)
        if (r->eval == eval && r->method_key() == keys[k].first) bars |= !std::isnan(r->stderr_);
      for (size_t si = 0; si < sets.size(); ++si)
        for (const ResultRow* r : rows)
          if (r->eval == eval && r->method_key() == keys[k].first && r->calib.label == sets[si]) {
            s.x.push_back(double(si) + (double(k) - (n - 1) / 2) * width);
            s.y.push_back(r->value);
            all.push_back(r->value);
            if (bars) {
              const double e = std::isnan(r->stderr_) ? 0 : r->stderr_;
              s.lo.push_back(r->value - e);
              s.hi.push_back(r->value + e);
            }
            f.data.rows.push_back(row_csv(*r, fv, delta_vs_float(metric, r->value, fv)));
          }
      if (!s.y.empty()) p.series.push_back(std::move(s));
    }
    p.y.log = wants_log(all);
    f.panels.push_back(std::move(p));
  }
  return f;
}

// ---- robustness overview --------------------------------------------------------------------

std::optional<Figure> robustness_figure(const ReportInput& in) {
  const auto models = in.models();
  std::vector<std::string> evals;
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& r : in.results)
    if (!r.is_float() && !r.calib.label.empty()) {
      add_unique(evals, r.eval);
      add_unique(keys, {r.method_key(), r.method});
    }
  if (evals.empty()) return std::nullopt;
  const auto styles = method_styles(keys);
  Figure f;
  f.id = "robustness";
  f.title = "Robustness: spread across calibration sets, all models";
  f.caption = "Per model and method: the median over calibration sets (marker) and the range from the worst to "
              "the best set (bar), as the change against the model's float baseline where there is one. A short "
              "bar means the method is robust to the choice of calibration data. Methods without calibration "
              "(RTN) are not shown.";
  f.columns = 1;  // full width: every model's label stays readable beside the others
  f.data.header = {"eval", "model", "method_key", "sets", "float_value", "unit", "min", "median", "max", "spread"};
  // A synthetic model is marked unless its label says so already.
  auto tick = [&](const std::string& m) {
    return m + (in.synthetic(m) && m.find("synthetic") == std::string::npos ? " (synthetic)" : "");
  };
  std::vector<std::string> shown_models;
  for (const auto& m : models)
    for (const auto& r : in.results)
      if (r.model == m && !r.is_float() && !r.calib.label.empty()) {
        add_unique(shown_models, tick(m));
        break;
      }
  for (const auto& eval : evals) {
    const auto [metric, data] = split_eval(eval);
    Panel p;
    p.title = eval_title(eval);
    p.x.label = "model";
    p.x.categories = shown_models;
    const double n = double(keys.size()), width = std::min(0.18, 0.72 / n);
    bool any_delta = false, any_raw = false;
    std::vector<Series> series(keys.size());
    for (size_t k = 0; k < keys.size(); ++k) {
      Series& s = series[k];
      s.name = keys[k].first;
      s.color = styles.at(keys[k].first).color;
      s.point = styles.at(keys[k].first).point;
      s.lines = false;
      size_t mi = 0;
      for (const auto& m : models) {
        const double fv = float_value(in, m, eval);
        std::vector<double> v;
        for (const auto& r : in.results)
          if (r.model == m && r.eval == eval && r.method_key() == keys[k].first && !r.calib.label.empty()) {
            const double d = delta_vs_float(metric, r.value, fv);
            v.push_back(std::isnan(d) ? r.value : d);
            (std::isnan(d) ? any_raw : any_delta) = true;
          }
        const bool shown = std::find(shown_models.begin(), shown_models.end(), tick(m)) != shown_models.end();
        if (!v.empty()) {
          const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
          const double med = median(v);
          s.x.push_back(double(mi) + (double(k) - (n - 1) / 2) * width);
          s.y.push_back(med);
          s.lo.push_back(lo);
          s.hi.push_back(hi);
          f.data.rows.push_back({eval, m, keys[k].first, std::to_string(v.size()), std::isnan(fv) ? "" : fmt_exact(fv),
                                 std::isnan(delta_vs_float(metric, 1.0, fv)) ? "value" : delta_label(metric),
                                 fmt_exact(lo), fmt_exact(med), fmt_exact(hi), fmt_exact(hi - lo)});
        }
        if (shown) ++mi;
      }
    }
    for (auto& s : series)
      if (!s.y.empty()) p.series.push_back(std::move(s));
    p.y.label = any_delta && !any_raw ? metric + ": " + delta_label(metric) : metric_axis_label(metric);
    if (any_delta && !any_raw) p.hlines.push_back({"float (0)", "#000000", 0.0, 2});
    f.panels.push_back(std::move(p));
  }
  return f;
}

// ---- metric vs bits --------------------------------------------------------------------------

// Full precision on the KV axis: a row without KV quantization is its method's point at 16 bits
// (qllm-eval's KV16), drawn only beside rows that quantize the KV cache.
constexpr int kKvOffBits = 16;

int axis_bits(const ResultRow& r, const std::string& axis) {
  const auto& s = r.settings;
  if (axis == "kv") return s.kv_bits > 0 ? s.kv_bits : kKvOffBits;
  if (axis == "a") return s.kv_bits > 0 ? -1 : s.a_bits;
  return s.a_bits > 0 || s.kv_bits > 0 ? -1 : s.w_bits;  // weight-only rows
}

std::optional<Figure> bits_figure(const ReportInput& in, const std::string& model, const std::string& axis) {
  std::vector<const ResultRow*> rows;
  std::vector<std::string> evals;
  std::vector<std::pair<std::string, std::string>> keys;
  auto key_of = [&](const ResultRow& r) { return method_label(r.method, r.settings.describe_without(axis)); };
  // The KV axis includes the float model (its KV cache quantized, and at 16 bits) and exists only
  // when some row of the model quantizes the KV cache.
  const bool kv = axis == "kv";
  if (kv && std::none_of(in.results.begin(), in.results.end(),
                         [&](const ResultRow& r) { return r.model == model && r.settings.kv_bits > 0; }))
    return std::nullopt;
  for (const auto& r : in.results)
    if (r.model == model && (kv || !r.is_float()) && axis_bits(r, axis) > 0) {
      rows.push_back(&r);
      add_unique(evals, r.eval);
      add_unique(keys, {key_of(r), r.method});
    }
  if (rows.empty()) return std::nullopt;
  const auto styles = method_styles(keys);
  const std::string axis_name = axis == "w" ? "weight" : axis == "a" ? "activation" : "KV-cache";
  Figure f;
  f.id = "bits-" + axis + "-" + slug(model);
  f.title = model + ": metric vs " + axis_name + " bits";
  f.caption = "Each method along the " + axis_name +
              "-bits axis (qllm-eval's W/A/KV axes): the median over calibration sets, with the range over sets "
              "as a bar when there are several; the dashed line is the float model.";
  if (kv) f.caption += " At 16 bits the KV cache is not quantized; the float model is a series of its own.";
  f.columns = evals.size() > 1 ? 2 : 1;
  f.data.header = {"model", "axis", "eval", "series", "bits", "sets", "median", "min", "max", "float_value"};
  for (const auto& eval : evals) {
    const auto [metric, data] = split_eval(eval);
    Panel p;
    p.title = eval_title(eval);
    p.x.label = axis_name + " bits";
    p.y.label = metric_axis_label(metric);
    const double fv = float_value(in, model, eval);
    std::vector<double> all;
    if (!std::isnan(fv)) {
      p.hlines.push_back({"float " + fmt4(fv), "#000000", fv, 2});
      all.push_back(fv);
    }
    int bmin = 99, bmax = 0;
    // Methods at one bit width are shifted a little sideways so that their bars do not hide each other.
    size_t k = 0;
    const double dodge = keys.size() > 1 ? std::min(0.12, 0.6 / double(keys.size())) : 0.0;
    for (const auto& [key, method] : keys) {
      const double shift = (double(k++) - (double(keys.size()) - 1) / 2) * dodge;
      Series s;
      s.name = key;
      s.color = styles.at(key).color;
      s.point = styles.at(key).point;
      s.dash = styles.at(key).dash;
      std::map<int, std::vector<double>> by_bits;
      for (const ResultRow* r : rows)
        if (r->eval == eval && key_of(*r) == key) by_bits[axis_bits(*r, axis)].push_back(r->value);
      for (const auto& [bits, v] : by_bits) {
        const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
        s.x.push_back(bits + shift);
        s.y.push_back(median(v));
        s.lo.push_back(lo);
        s.hi.push_back(hi);
        all.insert(all.end(), v.begin(), v.end());
        bmin = std::min(bmin, bits);
        bmax = std::max(bmax, bits);
        f.data.rows.push_back({model, axis, eval, key, std::to_string(bits), std::to_string(v.size()),
                               fmt_exact(median(v)), fmt_exact(lo), fmt_exact(hi), std::isnan(fv) ? "" : fmt_exact(fv)});
      }
      if (!s.y.empty()) p.series.push_back(std::move(s));
    }
    p.x.min = bmin - 1;
    p.x.max = bmax + 1;
    p.x.step = 1;
    p.y.log = wants_log(all);
    f.panels.push_back(std::move(p));
  }
  return f;
}

// ---- pivot tables ----------------------------------------------------------------------------

PageTable pivot_table(const ReportInput& in, const std::string& model, const std::string& eval) {
  const auto [metric, data] = split_eval(eval);
  std::vector<std::string> sets{""};
  std::vector<std::pair<std::string, std::string>> method_keys;
  for (const auto& r : in.results)
    if (r.model == model && r.eval == eval) {
      if (!r.calib.label.empty()) add_unique(sets, r.calib.label);
      add_unique(method_keys, {r.method_key(), r.method});
    }
  order_methods(method_keys);
  std::vector<std::string> keys;
  for (const auto& k : method_keys) keys.push_back(k.first);
  order_sets(in, sets);  // "" (none) stays first
  const double fv = float_value(in, model, eval);
  PageTable t;
  t.id = "table-" + slug(model) + "-" + slug(eval);
  t.caption = model + ", " + eval + ": " + metric_axis_label(metric) + "; in brackets the " + delta_label(metric) +
              ". Columns: calibration sets (\"none\": no calibration).";
  t.table.header = {"method"};
  for (const auto& s : sets) t.table.header.push_back(s.empty() ? "none" : s);
  for (const auto& key : keys) {
    std::vector<std::string> row{key};
    for (const auto& s : sets) {
      std::string cell;
      for (const auto& r : in.results)
        if (r.model == model && r.eval == eval && r.method_key() == key && r.calib.label == s) {
          const double d = delta_vs_float(metric, r.value, fv);
          char b[64];
          std::snprintf(b, sizeof b, "%.4g", r.value);
          cell = b;
          if (!std::isnan(d) && !r.is_float()) {
            std::snprintf(b, sizeof b, " (%+.2f)", d);
            cell += b;
          }
        }
      row.push_back(cell);
    }
    t.table.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace

std::vector<Section> results_sections(const ReportInput& in, const FigureOptions&) {
  std::vector<Section> out;
  const auto models = in.models();

  Section rob{"robustness", "Robustness overview", "", {}, {}, {}};
  rob.intro = "The paper's headline: how much each method's quality moves when the calibration set changes, for "
              "every model side by side.";
  if (auto f = robustness_figure(in)) rob.figures.push_back(std::move(*f));
  else rob.omitted.push_back({"robustness overview", "no quantized results with a calibration set"});
  out.push_back(std::move(rob));

  Section cal{"calibration", "Quality, content and language of the calibration set", "", {}, {}, {}};
  cal.intro = "Per model and group of calibration sets: each method's perplexity / divergence / accuracy per set, "
              "next to the float baseline.";
  for (const auto& m : models)
    for (const auto& g : calib_groups()) {
      if (auto f = group_figure(in, m, g)) cal.figures.push_back(std::move(*f));
      else if (g != "other") cal.omitted.push_back({m + ": " + group_title(g), "no quantized results calibrated on a set of this group"});
    }
  out.push_back(std::move(cal));

  Section bits{"bits", "Metric vs bits (W, A, KV)", "", {}, {}, {}};
  bits.intro = "qllm-eval's axes: weight-only, weight-activation and KV-cache quantization at several bit widths.";
  for (const auto& m : models)
    for (const std::string axis : {"w", "a", "kv"}) {
      if (auto f = bits_figure(in, m, axis)) bits.figures.push_back(std::move(*f));
      else bits.omitted.push_back({m + ": " + (axis == "w" ? "weight" : axis == "a" ? "activation" : "KV-cache") + " bits",
                                   "no results quantize this axis"});
    }
  out.push_back(std::move(bits));

  Section tables{"tables", "Tables", "", {}, {}, {}};
  tables.intro = "Every result: rows are methods with their settings, columns calibration sets.";
  for (const auto& m : models) {
    std::vector<std::string> evals;
    for (const auto& r : in.results)
      if (r.model == m) add_unique(evals, r.eval);
    for (const auto& e : evals) tables.tables.push_back(pivot_table(in, m, e));
  }
  if (tables.tables.empty()) tables.omitted.push_back({"tables", "no result rows"});
  out.push_back(std::move(tables));
  return out;
}

std::string slug(const std::string& label) {
  std::string s;
  for (unsigned char c : label) {
    if (std::isalnum(c)) s += char(std::tolower(c));
    else if (!s.empty() && s.back() != '-') s += '-';
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s.empty() ? "x" : s;
}

}  // namespace calq::report
