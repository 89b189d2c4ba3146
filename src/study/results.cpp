#include "study/results.h"

#include <algorithm>
#include <filesystem>

#include "io/mapped_file.h"
#include "study/machine.h"
#include "util/error.h"

namespace calq::study {

namespace fs = std::filesystem;

std::string cells_dir(const StudyConfig& c) { return path_join(path_join(c.out, "results"), "cells"); }
std::string steps_dir(const StudyConfig& c) { return path_join(path_join(c.out, "results"), "steps"); }

Json report_settings(const MethodEntry& m, const KvEntry& kv) {
  Json j = Json::object();
  if (!m.is_float) {
    const Json o = m.options.to_json();
    const std::string name = o.at("method").get<std::string>();
    j["w_bits"] = o.at("bits");
    if (name == "smoothquant" || name == "naive-w8a8") {
      j["a_bits"] = o.at("a_bits");
      j["a_granularity"] = o.at("act");
      j["w_granularity"] = o.at("per_tensor").get<bool>() ? "per_tensor" : "per_channel";
      if (o.contains("alpha")) j["alpha"] = o.at("alpha");
    } else {
      j["group_size"] = o.value("per_tensor", false) ? -1 : o.at("group_size").get<int>();
      if (o.value("per_tensor", false)) j["w_granularity"] = "per_tensor";
    }
  }
  if (kv.kv.enabled()) {
    j["kv_bits"] = kv.kv.bits;
    j["kv_granularity"] = kv.kv.group > 0 ? "per_group_" + std::to_string(kv.kv.group) : "per_head";
  }
  return j;
}

CellRow planned_row(const StudyConfig& c, const Grid& g, const Cell& cell) {
  const MethodEntry& me = c.methods[size_t(cell.method)];
  CellRow r;
  r.cell = cell.key;
  r.position = cell.position;
  r.label = cell.label(c);
  r.model = c.models[size_t(cell.model)].label;
  r.synthetic = c.models[size_t(cell.model)].synthetic;
  r.calib = cell.calib >= 0 ? c.calib[size_t(cell.calib)].label : "";
  r.calib_group = cell.calib >= 0 ? c.calib[size_t(cell.calib)].group : "";
  r.seed = cell.seeded ? int64_t(cell.seed) : -1;
  r.method = me.is_float ? "float" : me.options.to_json().at("method").get<std::string>();
  r.method_label = me.label;
  r.settings = me.is_float ? Json::object() : me.options.to_json();
  r.kv = eval::kv_quant_json(c.kv[size_t(cell.kv)].kv);
  r.kv_label = c.kv[size_t(cell.kv)].label;
  r.status = "pending";
  return r;
}

Json cell_result(const StudyConfig& c, const Grid& g, const Cell& cell, const std::map<std::string, Json>& records,
                 const std::string& error) {
  const CellRow p = planned_row(c, g, cell);
  const MethodEntry& me = c.methods[size_t(cell.method)];
  Json artifacts = {{"quant", cell.quant.empty() ? Json() : Json(cell.quant)}};
  Json inputs = {{"model_id", g.inputs.model_id[size_t(cell.model)]},
                 {"tokenizer_sha256", g.inputs.tokenizer_sha[size_t(cell.model)]}};
  double seconds = 0, peak = 0;
  auto account = [&](const std::string& key) {
    auto it = records.find(key);
    if (it == records.end() || it->second.is_null()) return;
    seconds += it->second.value("seconds", 0.0);
    peak = std::max(peak, it->second.value("peak_rss_mb", 0.0));
  };
  if (!cell.quant.empty()) {
    account(cell.quant);
    for (const auto& d : g.step(cell.quant).deps) {
      const Step& s = g.step(d);
      if (s.kind != StepKind::Calib) continue;
      artifacts["calib"] = d;
      auto it = records.find(d);
      if (it != records.end() && !it->second.is_null())
        inputs["calib_token_sha256"] = it->second.at("manifest").value("token_sha256", std::string());
      for (const auto& [k, st] : g.steps)
        if (st.kind == StepKind::Stats && std::find(st.deps.begin(), st.deps.end(), d) != st.deps.end() &&
            st.model == cell.model)
          artifacts["stats"] = k;
    }
  }
  Json evals = Json::object(), eval_keys = Json::object();
  for (const auto& key : cell.evals) {
    const Step& s = g.step(key);
    const std::string label = c.evals[size_t(s.eval)].label;
    eval_keys[label] = key;
    account(key);
    auto it = records.find(key);
    if (it == records.end() || it->second.is_null() || !it->second.contains("result")) continue;
    const Json& res = it->second.at("result");
    evals[label] = {{"kind", c.evals[size_t(s.eval)].kind}, {"key", key}, {"metrics", res.value("metrics", Json::object())},
                    {"data", res.value("data", Json())}, {"settings", res.value("settings", Json())},
                    {"seconds", it->second.value("seconds", 0.0)}};
    for (const auto& d : s.deps)
      if (g.step(d).kind == StepKind::KldRef) artifacts["kld_ref"][label] = d;
  }
  artifacts["evals"] = eval_keys;
  return {{"format", "calq-study-cell"},
          {"version", 1},
          {"study", c.name},
          {"cell", cell.key},
          {"position", cell.position},
          {"label", p.label},
          {"model", p.model},
          {"synthetic", p.synthetic},
          {"calib", cell.calib >= 0 ? Json(p.calib) : Json()},
          {"calib_group", cell.calib >= 0 ? Json(p.calib_group) : Json()},
          {"seed", cell.seeded ? Json(cell.seed) : Json()},
          {"method", p.method},
          {"method_label", p.method_label},
          {"settings", p.settings},
          {"report_settings", report_settings(me, c.kv[size_t(cell.kv)])},
          {"kv", p.kv},
          {"kv_label", p.kv_label},
          {"status", error.empty() ? "done" : "failed"},
          {"error", error},
          {"identity", cell.identity},
          {"inputs", inputs},
          {"artifacts", artifacts},
          {"evals", evals},
          {"seconds", seconds},
          {"peak_rss_mb", peak},
          {"finished_utc", utc_now()},
          {"calq_version", CALQ_VERSION},
          {"machine", machine_json()}};
}

namespace {
void write_in(const std::string& dir, const std::string& name, const Json& j) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir + ": cannot create folder (" + ec.message() + ")");
  write_json_atomic(path_join(dir, name + ".json"), j, 1);
}
}  // namespace

void write_cell_result(const StudyConfig& c, const Json& r) { write_in(cells_dir(c), r.at("cell").get<std::string>(), r); }
void write_step_result(const StudyConfig& c, const Json& r) { write_in(steps_dir(c), r.at("key").get<std::string>(), r); }

StepRow step_row(const Json& r) {
  StepRow s;
  s.key = r.value("key", std::string());
  s.kind = r.value("kind", std::string());
  s.label = r.value("label", std::string());
  s.status = r.value("status", std::string("done"));
  s.error = r.value("error", std::string());
  s.seconds = r.value("seconds", 0.0);
  s.peak_rss_mb = r.value("peak_rss_mb", 0.0);
  s.cost = r.value("cost", Json());
  s.finished_utc = r.value("finished_utc", std::string());
  s.machine = r.value("machine", Json());
  return s;
}

int collect_results(const StudyConfig& c, const Grid& g, Store& store) {
  int n = 0;
  for (const Cell& cell : g.cells) {
    const std::string f = path_join(cells_dir(c), cell.key + ".json");
    if (!file_exists(f)) continue;
    const Json r = load_json_file(f);
    if (store.cell_json(cell.key) == r) continue;
    store.put_cell(r);
    ++n;
  }
  for (const auto& [key, s] : g.steps) {
    const std::string f = path_join(steps_dir(c), key + ".json");
    if (file_exists(f)) store.put_step(step_row(load_json_file(f)));
  }
  return n;
}

}  // namespace calq::study
