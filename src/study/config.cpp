#include "study/config.h"

#include <filesystem>
#include <sstream>
#include <toml++/toml.h>

#include "util/error.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace calq::study {

namespace fs = std::filesystem;

namespace {

// ---- TOML -> JSON ------------------------------------------------------------------------------

Json to_json(const toml::node& n, const std::string& where) {
  if (const auto* t = n.as_table()) {
    Json j = Json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = to_json(v, where + "." + std::string(k.str()));
    return j;
  }
  if (const auto* a = n.as_array()) {
    Json j = Json::array();
    for (const auto& v : *a) j.push_back(to_json(v, where + "[]"));
    return j;
  }
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* i = n.as_integer()) return i->get();
  if (const auto* f = n.as_floating_point()) return f->get();
  if (const auto* b = n.as_boolean()) return b->get();
  throw ConfigError(where + ": dates and times have no meaning in a study file");
}

Json parse_toml(const std::string& text, const std::string& what) {
  try {
    const toml::table t = toml::parse(text, what);
    return to_json(t, what);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << what << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw FormatError(m.str());
  }
}

// ---- typed access with the entry named in every error ------------------------------------------

struct Entry {
  const Json& j;
  std::string what;  // "FILE: [[methods]] #2"
  std::set<std::string> used;

  bool has(const std::string& k) const { return j.contains(k); }
  template <class T>
  T get(const std::string& k) {
    used.insert(k);
    return json_get<T>(j, k, what);
  }
  template <class T>
  T get_or(const std::string& k, T fallback) {
    used.insert(k);
    return json_get_or<T>(j, k, fallback, what);
  }
  // Every key must have been read: a typo is an error, not a silently ignored setting.
  void finish() const {
    for (const auto& [k, v] : j.items())
      if (!used.count(k)) throw ConfigError(what + ": unknown key '" + k + "'");
  }
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

struct Paths {
  std::string dir, data;
  // "{data}/x" -> data pack; relative -> beside the study file; absolute as is.
  std::string resolve(const std::string& p) const {
    if (p.empty()) return p;
    const std::string s = replace_all(p, "{data}", data);
    if (fs::path(s).is_absolute()) return fs::path(s).lexically_normal().string();
    return (fs::path(dir) / s).lexically_normal().string();
  }
};

std::vector<Json> table_array(const Json& root, const std::string& key, const std::string& what) {
  std::vector<Json> out;
  if (!root.contains(key)) return out;
  const Json& a = root[key];
  if (!a.is_array()) throw ConfigError(what + ": '" + key + "' must be an array of tables ([[" + key + "]])");
  for (const Json& e : a) {
    if (!e.is_object()) throw ConfigError(what + ": every [[" + key + "]] entry must be a table");
    out.push_back(e);
  }
  return out;
}

// The product of the array-valued keys of `j` (one variant per combination, in key then value
// order): {bits = [3, 4], group_size = 128} -> {bits = 3, ...}, {bits = 4, ...}.
std::vector<Json> expand_lists(const Json& j, const std::set<std::string>& scalar_arrays = {}) {
  std::vector<Json> out = {Json::object()};
  for (const auto& [k, v] : j.items()) {
    std::vector<Json> next;
    const bool list = v.is_array() && !scalar_arrays.count(k);
    for (const Json& base : out) {
      if (list) {
        for (const Json& x : v) {
          Json b = base;
          b[k] = x;
          next.push_back(b);
        }
      } else {
        Json b = base;
        b[k] = v;
        next.push_back(b);
      }
    }
    out = std::move(next);
  }
  return out;
}

std::string fill_template(std::string label, const Json& settings) {
  for (const auto& [k, v] : settings.items()) {
    std::string val = v.is_string() ? v.get<std::string>() : v.dump();
    label = replace_all(label, "{" + k + "}", val);
  }
  return label;
}

std::string num(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

// ---- sections ----------------------------------------------------------------------------------

ModelEntry parse_model(const Json& j, const std::string& what, const Paths& p) {
  Entry e{j, what, {}};
  ModelEntry m;
  m.label = e.get<std::string>("label");
  m.compute = e.get_or<std::string>("dtype", "f32");
  if (m.compute != "f32" && m.compute != "bf16") throw ConfigError(what + ": dtype must be f32 or bf16");
  if (e.has("synthetic")) {
    m.synthetic = true;
    m.preset = e.get<std::string>("synthetic");
    m.layers = e.get_or<int>("layers", 0);
    m.seed = e.get_or<uint64_t>("seed", 0);
    m.tokenizer = p.resolve(e.get<std::string>("tokenizer"));
    m.outliers.act_scales = p.resolve(e.get_or<std::string>("outliers", ""));
    m.outliers.channels = e.get_or<std::vector<int64_t>>("outlier_channels", {});
    m.outliers.factor = e.get_or<double>("outlier_factor", 20.0);
    if (e.has("path")) throw ConfigError(what + ": a synthetic model has no path (it is built into the cache)");
    synth_config(m.preset, m.layers);  // the preset exists
  } else {
    m.path = p.resolve(e.get<std::string>("path"));
  }
  e.finish();
  return m;
}

CalibEntry parse_calib(const Json& j, const Json& defaults, const std::string& what, const Paths& p,
                       const std::string& data_root) {
  Json merged = defaults;
  for (const auto& [k, v] : j.items()) merged[k] = v;
  Entry e{merged, what, {}};
  CalibEntry c;
  c.label = e.get<std::string>("label");
  c.group = e.get_or<std::string>("group", "other");
  static const std::set<std::string> groups = {"quality", "content", "language", "other"};
  if (!groups.count(c.group)) throw ConfigError(what + ": group must be quality, content, language or other");
  CalibSpec& s = c.spec;
  s.builder = e.get<std::string>("builder");
  s.nsamples = e.get_or<int64_t>("n", s.nsamples);
  s.seqlen = e.get_or<int64_t>("seqlen", s.seqlen);
  if (e.has("seed")) {
    c.fixed_seed = true;
    s.seed = e.get<uint64_t>("seed");
  }
  s.add_special_tokens = e.get_or<bool>("special_tokens", true);
  s.mode = e.get_or<std::string>("mode", "");
  s.source = p.resolve(e.get_or<std::string>("source", ""));
  s.field = e.get_or<std::string>("field", "text");
  s.split = e.get_or<std::string>("split", "auto");
  s.task = e.get_or<std::string>("task", "");
  if (s.task.ends_with(".jsonl")) s.task = p.resolve(s.task);
  s.lang = e.get_or<std::string>("lang", "");
  s.charset = e.get_or<std::string>("charset", "");
  s.vocab = e.get_or<int64_t>("vocab", 0);
  s.data_root = data_root;
  for (const auto& part : e.get_or<std::vector<std::string>>("parts", {})) s.parts.push_back(parse_mix_part(part, s));
  for (auto& part : s.parts)
    if (!part.spec.source.empty()) part.spec.source = p.resolve(part.spec.source);
  static const std::set<std::string> builders = {"text", "punct", "random-tokens", "task", "lang", "mix"};
  if (!builders.count(s.builder))
    throw ConfigError(what + ": builder must be text, punct, random-tokens, task, lang or mix (got '" + s.builder + "')");
  if (s.builder == "text" && s.source.empty()) throw ConfigError(what + ": the text builder needs 'source'");
  if (s.builder == "mix" && s.parts.empty()) throw ConfigError(what + ": the mix builder needs 'parts'");
  if (s.nsamples < 1 || s.seqlen < 2) throw ConfigError(what + ": n must be >= 1 and seqlen >= 2");
  e.finish();
  return c;
}

std::string default_method_label(const MethodOptions& o) {
  const Json j = o.to_json();
  const std::string m = j.at("method").get<std::string>();
  if (m == "smoothquant" || m == "naive-w8a8") {
    std::string l = (m == "smoothquant" ? "sq" : "naive") + std::string("-w") + std::to_string(j.at("bits").get<int>()) +
                    "a" + std::to_string(j.at("a_bits").get<int>());
    const std::string act = j.at("act").get<std::string>();
    if (act != "per_token") l += "-" + act;
    if (j.at("per_tensor").get<bool>()) l += "-wtensor";
    if (m == "smoothquant" && o.alpha != 0.5) l += "-a" + num(o.alpha);
    return l;
  }
  std::string l = m + "-w" + std::to_string(j.at("bits").get<int>());
  const int g = j.value("group_size", 128);
  if (j.value("per_tensor", false)) {
    l += "-tensor";
  } else if (g > 0) {
    l += "g" + std::to_string(g);
  }
  if (j.value("sym", false)) l += "-sym";
  if (j.value("desc_act", false)) l += "-act";
  return l;
}

std::vector<MethodEntry> parse_methods(const Json& j, const std::string& what) {
  Json settings = j;
  std::string label_template;
  if (settings.contains("label")) {
    if (!settings["label"].is_string()) throw ConfigError(what + ": label must be a string");
    label_template = settings["label"].get<std::string>();
    settings.erase("label");
  }
  if (!settings.contains("method")) throw ConfigError(what + ": missing field 'method'");
  std::vector<MethodEntry> out;
  for (const Json& v : expand_lists(settings)) {
    MethodEntry m;
    if (v.at("method") == "float") {
      if (v.size() != 1) throw ConfigError(what + ": the float baseline takes no settings");
      m.is_float = true;
      m.label = label_template.empty() ? "float" : label_template;
      out.push_back(m);
      continue;
    }
    m.options = MethodOptions::from_json(v, what);
    try {
      m.options.to_method();
    } catch (const ArgError& e) {
      throw ConfigError(what + ": " + e.what());
    }
    m.label = label_template.empty() ? default_method_label(m.options) : fill_template(label_template, v);
    out.push_back(m);
  }
  return out;
}

EvalEntry parse_eval(const Json& j, const std::string& what, const Paths& p, const std::string& data_root) {
  Entry e{j, what, {}};
  EvalEntry v;
  v.kind = e.get<std::string>("kind");
  if (v.kind == "ppl" || v.kind == "kld") {
    v.w.data = p.resolve(e.get<std::string>("data"));
    v.w.text_mode = e.get_or<std::string>("text_mode", "auto");
    v.w.field = e.get_or<std::string>("field", "text");
    v.w.protocol = e.get_or<std::string>("protocol", "gptq");
    v.w.ctx = e.get_or<int64_t>("ctx", 0);
    v.w.chunks = e.get_or<int64_t>("chunks", 0);
    v.w.batch = e.get_or<int64_t>("batch", 1);
    if (v.kind == "kld") v.k = e.get_or<int>("k", 32);
    v.label = e.get_or<std::string>("label", fs::path(v.w.data).stem().string());
  } else if (v.kind == "tasks") {
    v.tasks = e.get<std::vector<std::string>>("tasks");
    if (v.tasks.empty()) throw ConfigError(what + ": tasks must name at least one task");
    v.limit = e.get_or<int64_t>("limit", 0);
    v.task_dir = p.resolve(e.get_or<std::string>("task_dir", ""));
    if (v.task_dir.empty()) v.task_dir = path_join(path_join(data_root, "data"), "tasks");
    v.label = e.get_or<std::string>("label", "tasks");
  } else {
    throw ConfigError(what + ": kind must be ppl, kld or tasks (got '" + v.kind + "')");
  }
  e.finish();
  return v;
}

std::vector<KvEntry> parse_kv(const Json& j, const std::string& what) {
  std::vector<KvEntry> out;
  for (const Json& v : expand_lists(j)) {
    Entry e{v, what, {}};
    KvEntry k;
    k.kv.bits = e.get_or<int>("bits", 16);
    k.kv.group = e.get_or<int>("group", 0);
    k.kv.sym = e.get_or<bool>("sym", false);
    try {
      k.kv.validate();
    } catch (const ArgError& err) {
      throw ConfigError(what + ": " + err.what());
    }
    k.label = e.get_or<std::string>("label", "");
    if (k.label.empty()) {
      k.label = "kv" + std::to_string(k.kv.bits);
      if (k.kv.enabled() && k.kv.group > 0) k.label += "g" + std::to_string(k.kv.group);
      if (k.kv.enabled() && k.kv.sym) k.label += "-sym";
    } else {
      k.label = fill_template(k.label, v);
    }
    e.finish();
    out.push_back(k);
  }
  return out;
}

Rule parse_rule(const Json& j, const std::string& what) {
  static const std::set<std::string> keys = {"model", "calib", "group", "method", "kv", "seed"};
  Rule r;
  for (const auto& [k, v] : j.items()) {
    if (!keys.count(k)) throw ConfigError(what + ": rules match on model, calib, group, method, kv or seed, not '" + k + "'");
    r.match[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (r.match.empty()) throw ConfigError(what + ": an empty rule would match every cell");
  return r;
}

template <class T>
void check_unique(const std::vector<T>& v, const std::string& what, const std::string& section) {
  std::set<std::string> seen;
  for (const auto& x : v) {
    if (x.label.empty()) throw ConfigError(what + ": a " + section + " entry has an empty label");
    if (!seen.insert(x.label).second)
      throw ConfigError(what + ": two " + section + " entries are labelled '" + x.label +
                        "' (give each a label; a label template such as \"gptq-w{bits}g{group_size}\" names variants)");
  }
}

}  // namespace

bool MethodEntry::needs_calibration() const {
  return !is_float && options.method != "rtn";
}

const std::vector<std::string>& artifact_kinds() {
  static const std::vector<std::string> k = {"model", "calib", "stats", "kld-ref", "quant", "eval"};
  return k;
}

bool glob_match(const std::string& pat, const std::string& s) {
  // Iterative * / ? matching with one backtrack point (linear in practice, no recursion).
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == s[t])) {
      ++p, ++t;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

StudyConfig parse_study_config(const std::string& text, const std::string& what, const std::string& dir,
                               const std::string& data_root, const std::string& out) {
  const Json root = parse_toml(text, what);
  static const std::set<std::string> sections = {"study", "models", "calibration", "calibration_defaults", "methods",
                                                 "evaluations", "kv", "include", "exclude"};
  for (const auto& [k, v] : root.items())
    if (!sections.count(k)) throw ConfigError(what + ": unknown section '" + k + "'");
  StudyConfig c;
  c.dir = dir;
  c.data_root = data_root;
  const Paths p{dir, data_root};
  const Json study = root.value("study", Json::object());
  Entry s{study, what + ": [study]", {}};
  c.name = s.get<std::string>("name");
  c.out = out.empty() ? p.resolve(s.get_or<std::string>("out", "study-" + c.name)) : out;
  if (!out.empty()) s.used.insert("out");
  c.cache = p.resolve(s.get_or<std::string>("cache", ""));
  if (c.cache.empty()) c.cache = path_join(c.out, "cache");
  c.seeds = s.get_or<std::vector<uint64_t>>("seeds", {0});
  if (c.seeds.empty()) throw ConfigError(what + ": [study] seeds must name at least one seed");
  c.stats = s.get_or<bool>("stats", true);
  c.quant_batch = s.get_or<int64_t>("quant_batch", 8);
  c.stats_batch = s.get_or<int64_t>("stats_batch", 8);
  const auto keep = s.get_or<std::vector<std::string>>("keep", {"all"});
  for (const auto& k : keep) {
    if (k == "all") {
      c.keep.insert(artifact_kinds().begin(), artifact_kinds().end());
    } else if (k == "results") {
      c.keep.insert("eval");
    } else if (std::find(artifact_kinds().begin(), artifact_kinds().end(), k) != artifact_kinds().end()) {
      c.keep.insert(k);
    } else {
      throw ConfigError(what + ": [study] keep: unknown artifact kind '" + k +
                        "' (all, results, model, calib, stats, kld-ref, quant, eval)");
    }
  }
  c.keep.insert("eval");  // results are the study's output
  s.finish();

  int i = 0;
  for (const Json& m : table_array(root, "models", what))
    c.models.push_back(parse_model(m, what + ": [[models]] #" + std::to_string(++i), p));
  const Json defaults = root.value("calibration_defaults", Json::object());
  i = 0;
  for (const Json& m : table_array(root, "calibration", what))
    c.calib.push_back(parse_calib(m, defaults, what + ": [[calibration]] #" + std::to_string(++i), p, data_root));
  i = 0;
  for (const Json& m : table_array(root, "methods", what))
    for (auto& x : parse_methods(m, what + ": [[methods]] #" + std::to_string(++i))) c.methods.push_back(x);
  i = 0;
  for (const Json& m : table_array(root, "evaluations", what))
    c.evals.push_back(parse_eval(m, what + ": [[evaluations]] #" + std::to_string(++i), p, data_root));
  i = 0;
  for (const Json& m : table_array(root, "kv", what))
    for (auto& x : parse_kv(m, what + ": [[kv]] #" + std::to_string(++i))) c.kv.push_back(x);
  if (c.kv.empty()) c.kv.push_back(KvEntry{"kv16", KvQuant{}});
  i = 0;
  for (const Json& r : table_array(root, "include", what)) c.include.push_back(parse_rule(r, what + ": [[include]] #" + std::to_string(++i)));
  i = 0;
  for (const Json& r : table_array(root, "exclude", what)) c.exclude.push_back(parse_rule(r, what + ": [[exclude]] #" + std::to_string(++i)));

  if (c.models.empty()) throw ConfigError(what + ": no [[models]]");
  if (c.methods.empty()) throw ConfigError(what + ": no [[methods]]");
  if (c.evals.empty()) throw ConfigError(what + ": no [[evaluations]]");
  check_unique(c.models, what, "[[models]]");
  check_unique(c.calib, what, "[[calibration]]");
  check_unique(c.methods, what, "[[methods]]");
  check_unique(c.evals, what, "[[evaluations]]");
  check_unique(c.kv, what, "[[kv]]");
  for (const auto& m : c.methods)
    if (m.needs_calibration() && c.calib.empty())
      throw ConfigError(what + ": method '" + m.label + "' needs calibration data but there is no [[calibration]]");
  return c;
}

StudyConfig load_study_config(const std::string& path, const std::string& data_root, const std::string& out) {
  const std::string text = read_file(path);
  const std::string dir = fs::absolute(fs::path(path)).parent_path().lexically_normal().string();
  StudyConfig c = parse_study_config(text, path, dir, data_root, out);
  c.file = path;
  c.sha256 = sha256_hex(text);
  return c;
}

}  // namespace calq::study
