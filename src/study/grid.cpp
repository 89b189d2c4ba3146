#include "study/grid.h"

#include <algorithm>
#include <filesystem>

#include "eval/identity.h"
#include "eval/task_data.h"
#include "study/keys.h"
#include "util/error.h"
#include "util/fs.h"

namespace calq::study {

namespace fs = std::filesystem;

const char* step_kind_name(StepKind k) {
  switch (k) {
    case StepKind::Model: return "model";
    case StepKind::Calib: return "calib";
    case StepKind::Stats: return "stats";
    case StepKind::KldRef: return "kld-ref";
    case StepKind::Quant: return "quant";
    case StepKind::Eval: return "eval";
  }
  return "?";
}

std::string Cell::label(const StudyConfig& c) const {
  std::string s = c.models[size_t(model)].label + " | " + (calib >= 0 ? c.calib[size_t(calib)].label : "-") + " | " +
                  c.methods[size_t(method)].label + " | " + c.kv[size_t(kv)].label;
  if (seeded) s += " | seed " + std::to_string(seed);
  return s;
}

const Step& Grid::step(const std::string& key) const {
  auto it = steps.find(key);
  if (it == steps.end()) throw ArgError("study: no step " + key);
  return it->second;
}

const Cell* Grid::cell(const std::string& key) const {
  for (const Cell& c : cells)
    if (c.key == key) return &c;
  return nullptr;
}

std::string artifact_dir(const StudyConfig& c, const Step& s) {
  return path_join(path_join(c.cache, step_kind_name(s.kind)), s.key);
}

namespace {

class Builder {
 public:
  Builder(const StudyConfig& c, Grid& g) : c_(c), g_(g) {}

  void run() {
    models();
    cells();
    order();
  }

 private:
  const StudyConfig& c_;
  Grid& g_;
  FileHashes files_;

  std::string add(Step s) {
    s.key = identity_key(s.identity);
    auto [it, fresh] = g_.steps.emplace(s.key, s);
    return it->first;
  }
  void used_by(const std::string& step, const std::string& cell) {
    auto& v = g_.steps.at(step).cells;
    if (std::find(v.begin(), v.end(), cell) == v.end()) v.push_back(cell);
  }

  std::string tokenizer_file(const std::string& dir) const {
    const std::string f = path_join(dir, "tokenizer.json");
    if (!file_exists(f)) throw ConfigError(c_.file + ": no tokenizer.json in " + dir);
    return f;
  }

  void models() {
    Inputs& in = g_.inputs;
    for (size_t i = 0; i < c_.models.size(); ++i) {
      const ModelEntry& m = c_.models[i];
      if (m.synthetic) {
        Json plan = nullptr;
        if (!m.outliers.act_scales.empty())
          plan = {{"act_scales_sha256", files_.sha256(m.outliers.act_scales)}};
        else if (!m.outliers.channels.empty())
          plan = {{"channels", m.outliers.channels}, {"factor", m.outliers.factor}};
        Step s;
        s.kind = StepKind::Model;
        s.model = int(i);
        s.label = "model " + m.label;
        s.identity = {{"kind", "synthetic-model"}, {"generator", 2}, {"preset", m.preset}, {"layers", m.layers}, {"seed", m.seed},
                      {"outliers", plan}, {"tokenizer_sha256", files_.sha256(tokenizer_file(m.tokenizer))},
                      {"config", synth_config_json(m.preset, m.layers)}};
        const std::string key = add(s);
        in.model_id.push_back("synthetic:" + key);
        in.tokenizer_sha.push_back(files_.sha256(tokenizer_file(m.tokenizer)));
        in.model_dir.push_back(artifact_dir(c_, g_.steps.at(key)));
      } else {
        if (!fs::is_directory(m.path)) throw ConfigError(c_.file + ": model '" + m.label + "': no folder " + m.path);
        in.model_id.push_back(eval::model_hash(m.path));
        in.tokenizer_sha.push_back(files_.sha256(tokenizer_file(m.path)));
        in.model_dir.push_back(m.path);
      }
    }
  }

  // The model step a step reading model `m` depends on (synthetic models only).
  void model_dep(Step& s, int m) {
    if (c_.models[size_t(m)].synthetic) s.deps.push_back(g_.inputs.model_id[size_t(m)].substr(10));
  }

  Json spec_identity(const CalibSpec& s) {
    Json j = {{"builder", s.builder}, {"nsamples", s.nsamples}, {"seqlen", s.seqlen}, {"seed", s.seed},
              {"add_special_tokens", s.add_special_tokens}, {"mode", s.mode}};
    if (s.builder == "text")
      j.update({{"source_sha256", files_.sha256(s.source)}, {"field", s.field}, {"split", s.split}});
    if (s.builder == "task") {
      const std::string f = s.task.ends_with(".jsonl")
                                ? s.task
                                : path_join(path_join(path_join(c_.data_root, "data"), "tasks"), s.task + ".jsonl");
      j.update({{"task", fs::path(f).stem().string()}, {"task_sha256", files_.sha256(f)}});
    }
    if (s.builder == "lang") {
      const std::string f =
          path_join(path_join(path_join(path_join(c_.data_root, "data"), "flores200"), "devtest"), s.lang + ".devtest");
      if (!file_exists(f)) throw ConfigError(c_.file + ": FLORES-200 language '" + s.lang + "': no " + f);
      j.update({{"lang", s.lang}, {"lang_sha256", files_.sha256(f)}});
    }
    if (s.builder == "punct") j["charset"] = s.charset;
    if (s.builder == "random-tokens") j["vocab"] = s.vocab;
    if (s.builder == "mix") {
      Json parts = Json::array();
      for (const auto& p : s.parts) parts.push_back({{"weight", p.weight}, {"spec", spec_identity(p.spec)}});
      j["parts"] = parts;
    }
    return j;
  }

  std::string calib_step(int m, int ci, uint64_t seed) {
    Step s;
    s.kind = StepKind::Calib;
    s.model = m;
    s.calib = ci;
    s.seed = seed;
    CalibSpec spec = c_.calib[size_t(ci)].spec;
    spec.seed = seed;
    s.label = "calib " + c_.calib[size_t(ci)].label + " (" + c_.models[size_t(m)].label + " tokenizer, seed " +
              std::to_string(seed) + ")";
    // The set depends on the tokenizer, not on the model: models sharing one share their sets.
    s.identity = {{"kind", "calib"}, {"spec", spec_identity(spec)}, {"tokenizer_sha256", g_.inputs.tokenizer_sha[size_t(m)]}};
    return add(s);
  }

  std::string stats_step(int m, const std::string& calib) {
    Step s;
    s.kind = StepKind::Stats;
    s.model = m;
    s.calib = g_.steps.at(calib).calib;
    s.seed = g_.steps.at(calib).seed;
    s.label = "stats " + c_.models[size_t(m)].label + " " + c_.calib[size_t(s.calib)].label;
    s.identity = {{"kind", "stats"}, {"model", g_.inputs.model_id[size_t(m)]}, {"calib", calib}, {"batch", c_.stats_batch}};
    s.deps = {calib};
    model_dep(s, m);
    return add(s);
  }

  std::string quant_step(int m, int t, const std::string& calib) {
    const MethodEntry& me = c_.methods[size_t(t)];
    Step s;
    s.kind = StepKind::Quant;
    s.model = m;
    s.method = t;
    if (!calib.empty()) {
      s.calib = g_.steps.at(calib).calib;
      s.seed = g_.steps.at(calib).seed;
      s.deps.push_back(calib);
    }
    s.label = "quant " + c_.models[size_t(m)].label + " " + (calib.empty() ? "-" : c_.calib[size_t(s.calib)].label) +
              " " + me.label;
    s.identity = {{"kind", "quant"}, {"model", g_.inputs.model_id[size_t(m)]}, {"calib", calib.empty() ? Json() : Json(calib)},
                  {"method", me.options.to_json()}, {"batch", c_.quant_batch}};
    model_dep(s, m);
    return add(s);
  }

  Json window_identity(const eval::WindowSpec& w) {
    return {{"data_sha256", files_.sha256(w.data)}, {"text_mode", w.text_mode}, {"field", w.field},
            {"protocol", w.protocol}, {"ctx", w.ctx}, {"chunks", w.chunks}, {"batch", w.batch}};
  }

  std::string kldref_step(int m, int e) {
    const EvalEntry& ev = c_.evals[size_t(e)];
    Step s;
    s.kind = StepKind::KldRef;
    s.model = m;
    s.eval = e;
    s.label = "kld-ref " + c_.models[size_t(m)].label + " " + ev.label;
    s.identity = {{"kind", "kld-ref"}, {"model", g_.inputs.model_id[size_t(m)]}, {"windows", window_identity(ev.w)}, {"k", ev.k}};
    model_dep(s, m);
    return add(s);
  }

  // One evaluation of the float model (quant "") or of a quantized one.
  std::string eval_step(int m, int e, int kv, const std::string& quant) {
    const EvalEntry& ev = c_.evals[size_t(e)];
    Step s;
    s.kind = StepKind::Eval;
    s.model = m;
    s.eval = e;
    s.kv = kv;
    Json id = {{"kind", "eval-" + ev.kind}, {"model", quant.empty() ? Json(g_.inputs.model_id[size_t(m)]) : Json(quant)},
               {"kv", eval::kv_quant_json(c_.kv[size_t(kv)].kv)}, {"compute", c_.models[size_t(m)].compute}};
    if (ev.kind == "ppl") id["windows"] = window_identity(ev.w);
    if (ev.kind == "kld") {
      const std::string ref = kldref_step(m, e);
      id["reference"] = ref;
      id["batch"] = ev.w.batch;
      s.deps.push_back(ref);
    }
    if (ev.kind == "tasks") {
      Json files = Json::object();
      for (const auto& t : ev.tasks) {
        const std::string name = eval::canonical_task_name(t);
        files[name] = files_.sha256(path_join(ev.task_dir, eval::task_file_name(name)));
      }
      id.update({{"tasks", files}, {"limit", ev.limit}});
    }
    s.identity = id;
    if (!quant.empty()) {
      s.deps.push_back(quant);
    } else {
      model_dep(s, m);
    }
    s.label = "eval " + ev.kind + ":" + ev.label + " " + c_.models[size_t(m)].label +
              (quant.empty() ? " float" : " " + g_.steps.at(quant).label.substr(6)) + " " + c_.kv[size_t(kv)].label;
    return add(s);
  }

  bool selected(const std::map<std::string, std::string>& labels) const {
    auto matches = [&](const Rule& r) {
      for (const auto& [k, pat] : r.match)
        if (!glob_match(pat, labels.at(k))) return false;
      return true;
    };
    for (const Rule& r : c_.exclude)
      if (matches(r)) return false;
    if (c_.include.empty()) return true;
    for (const Rule& r : c_.include)
      if (matches(r)) return true;
    return false;
  }

  void add_cell(int m, int t, int ci, uint64_t seed, bool seeded, int kv) {
    const MethodEntry& me = c_.methods[size_t(t)];
    const std::map<std::string, std::string> labels = {
        {"model", c_.models[size_t(m)].label}, {"calib", ci >= 0 ? c_.calib[size_t(ci)].label : "-"},
        {"group", ci >= 0 ? c_.calib[size_t(ci)].group : "-"}, {"method", me.label},
        {"kv", c_.kv[size_t(kv)].label}, {"seed", seeded ? std::to_string(seed) : "-"}};
    if (!selected(labels)) return;
    Cell cell;
    cell.model = m;
    cell.method = t;
    cell.calib = ci;
    cell.seed = seed;
    cell.seeded = seeded;
    cell.kv = kv;
    cell.position = int(g_.cells.size());
    std::string calib;
    if (ci >= 0) calib = calib_step(m, ci, seed);
    cell.identity = {{"model", g_.inputs.model_id[size_t(m)]}, {"calib", calib.empty() ? Json() : Json(calib)},
                     {"method", me.is_float ? Json("float") : me.options.to_json()},
                     {"kv", eval::kv_quant_json(c_.kv[size_t(kv)].kv)}};
    cell.key = identity_key(cell.identity);
    if (!me.is_float) cell.quant = quant_step(m, t, calib);
    for (size_t e = 0; e < c_.evals.size(); ++e) {
      // The float model against its own reference is KLD 0 by definition: not evaluated.
      if (me.is_float && c_.evals[e].kind == "kld" && !c_.kv[size_t(kv)].kv.enabled()) continue;
      cell.evals.push_back(eval_step(m, int(e), kv, cell.quant));
    }
    std::vector<std::string> mine = cell.evals;
    if (!cell.quant.empty()) mine.push_back(cell.quant);
    if (!calib.empty()) {
      mine.push_back(calib);
      if (c_.stats) mine.push_back(stats_step(m, calib));
    }
    // Everything a cell needs, transitively, knows the cell (reference counts for `keep`).
    for (size_t i = 0; i < mine.size(); ++i) {
      used_by(mine[i], cell.key);
      for (const auto& d : g_.steps.at(mine[i]).deps)
        if (std::find(mine.begin(), mine.end(), d) == mine.end()) mine.push_back(d);
    }
    for (const Cell& other : g_.cells)
      if (other.key == cell.key) throw ConfigError(c_.file + ": two cells are the same run: " + cell.label(c_));
    g_.cells.push_back(cell);
  }

  void cells() {
    for (size_t m = 0; m < c_.models.size(); ++m)
      for (size_t t = 0; t < c_.methods.size(); ++t) {
        const MethodEntry& me = c_.methods[t];
        for (size_t kv = 0; kv < c_.kv.size(); ++kv) {
          if (!me.needs_calibration()) {
            add_cell(int(m), int(t), -1, 0, false, int(kv));
            continue;
          }
          for (size_t ci = 0; ci < c_.calib.size(); ++ci) {
            const CalibEntry& ce = c_.calib[ci];
            if (ce.fixed_seed) {
              add_cell(int(m), int(t), int(ci), ce.spec.seed, false, int(kv));
            } else {
              for (uint64_t seed : c_.seeds) add_cell(int(m), int(t), int(ci), seed, c_.seeds.size() > 1, int(kv));
            }
          }
        }
      }
    if (g_.cells.empty()) throw ConfigError(c_.file + ": the include/exclude rules leave no cell");
  }

  // Kinds in dependency order, then the grid's cell order.
  void order() {
    std::map<std::string, int> position;
    for (const Cell& c : g_.cells) position[c.key] = c.position;
    std::map<std::string, int> first;
    for (const auto& [k, s] : g_.steps) {
      int f = int(g_.cells.size());
      for (const auto& c : s.cells) f = std::min(f, position[c]);
      first[k] = f;
      g_.order.push_back(k);
    }
    std::stable_sort(g_.order.begin(), g_.order.end(), [&](const std::string& a, const std::string& b) {
      const Step& x = g_.steps.at(a);
      const Step& y = g_.steps.at(b);
      if (x.kind != y.kind) return int(x.kind) < int(y.kind);
      return first[a] < first[b];
    });
  }
};

}  // namespace

Grid build_grid(const StudyConfig& c) {
  Grid g;
  Builder(c, g).run();
  return g;
}

}  // namespace calq::study
