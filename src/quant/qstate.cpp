#include "quant/qstate.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "io/checkpoint.h"
#include "io/content_hash.h"
#include "io/mapped_file.h"
#include "util/error.h"

namespace calq {

namespace fs = std::filesystem;

int layer_of_name(const std::string& name) {
  size_t p;
  if (name.rfind("layers.", 0) == 0) {
    p = 7;
  } else {
    p = name.find(".layers.");
    if (p == std::string::npos) return -1;
    p += 8;
  }
  size_t e = p;
  while (e < name.size() && std::isdigit(static_cast<unsigned char>(name[e]))) ++e;
  if (e == p || e - p > 6) return -1;
  return std::stoi(name.substr(p, e - p));
}

namespace {

// The tensors and metadata entries of one quantized module (validates qw: ArgError).
void quantized_weight_entries(const std::string& m, const QuantizedWeight& qw, std::map<std::string, Tensor>& tensors,
                              std::map<std::string, std::string>& meta) {
  qw.validate("quantized weight '" + m + "'");
  const int64_t G = qw.n_groups();
  Tensor q = Tensor::empty(DType::U8, {qw.rows, qw.cols});
  std::memcpy(q.raw_mut(), qw.q.data(), qw.q.size());
  Tensor gi = Tensor::empty(DType::I32, {qw.cols});
  std::memcpy(gi.raw_mut(), qw.g_idx.data(), qw.g_idx.size() * 4);
  tensors[m + ".q"] = q;
  tensors[m + ".scale"] = Tensor::from_f32(qw.scale, {qw.rows, G});
  tensors[m + ".zero"] = Tensor::from_f32(qw.zero, {qw.rows, G});
  tensors[m + ".g_idx"] = gi;
  meta[m + ".bits"] = std::to_string(qw.bits);
  meta[m + ".group_size"] = std::to_string(qw.group_size);
  meta[m + ".sym"] = qw.sym ? "true" : "false";
}

// Layer-file metadata entry holding the run identity the file was written for.
constexpr const char* kRunKey = "calq.run";

// What every file of a state must agree on with state.json: the run's identity (method, settings,
// source, calibration, layer count, activation quantization). Stored in each layer file, whose
// content hash covers it, so a modified state.json is caught too.
std::string run_identity(const Json& info) {
  Json id = Json::object();
  for (const char* k : {"method", "settings", "source_sha256", "num_layers", "activation"})
    id[k] = info.value(k, Json());
  const Json calib = info.value("calib", Json());
  id["calib_sha256"] = calib.is_object() ? calib.value("sha256", Json()) : Json();
  return id.dump();
}

}  // namespace

void add_quantized_weight(SafetensorsWriter& w, const std::string& m, const QuantizedWeight& qw) {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
  quantized_weight_entries(m, qw, tensors, meta);
  for (const auto& [name, t] : tensors) w.add(name, t);
  for (const auto& [k, v] : meta) w.set_metadata(k, v);
}

namespace {

int meta_int(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) throw FormatError(f.path() + ": missing metadata '" + key + "'");
  try {
    size_t used = 0;
    const int v = std::stoi(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw FormatError(f.path() + ": metadata '" + key + "' is not an integer ('" + it->second + "')");
  }
}

Tensor need(const SafetensorsFile& f, const std::string& name, DType dt, const Shape& shape) {
  const TensorInfo* ti = f.find(name);
  if (!ti) throw FormatError(f.path() + ": missing tensor '" + name + "'");
  if (ti->dtype != dt || ti->shape != shape)
    throw FormatError(f.path() + ": tensor '" + name + "' is " + dtype_name(ti->dtype) + " " + shape_str(ti->shape) +
                      ", expected " + dtype_name(dt) + " " + shape_str(shape));
  return f.get(name);
}

// The suffixes of a quantized module's tensors in a layer file ("<m>.q", "<m>.scale", ...).
constexpr const char* kCodeSuffixes[] = {".q", ".scale", ".zero", ".g_idx", ".input_scale"};

// The module whose codes tensor `name` belongs to ("" for a replaced float tensor).
std::string coded_module(const SafetensorsFile& f, const std::string& name) {
  for (const char* sfx : kCodeSuffixes)
    if (name.ends_with(sfx)) {
      const std::string m = name.substr(0, name.size() - std::strlen(sfx));
      if (!m.empty() && f.find(m + ".q")) return m;
    }
  return "";
}

}  // namespace

QuantizedWeight read_quantized_weight(const SafetensorsFile& f, const std::string& m) {
  QuantizedWeight qw;
  qw.bits = meta_int(f, m + ".bits");
  qw.group_size = meta_int(f, m + ".group_size");
  auto it = f.metadata().find(m + ".sym");
  if (it == f.metadata().end() || (it->second != "true" && it->second != "false"))
    throw FormatError(f.path() + ": metadata '" + m + ".sym' must be \"true\" or \"false\"");
  qw.sym = it->second == "true";
  const TensorInfo* qi = f.find(m + ".q");
  if (!qi) throw FormatError(f.path() + ": missing tensor '" + m + ".q'");
  if (qi->shape.size() != 2) throw FormatError(f.path() + ": tensor '" + m + ".q' must be 2-D");
  qw.rows = qi->shape[0];
  qw.cols = qi->shape[1];
  if (qw.group_size == 0 || qw.group_size < -1 || qw.rows <= 0 || qw.cols <= 0)
    throw FormatError(f.path() + ": '" + m + "' has group_size " + std::to_string(qw.group_size) + " / empty shape");
  const int64_t G = qw.n_groups();
  const Tensor q = need(f, m + ".q", DType::U8, {qw.rows, qw.cols});
  const Tensor s = need(f, m + ".scale", DType::F32, {qw.rows, G});
  const Tensor z = need(f, m + ".zero", DType::F32, {qw.rows, G});
  const Tensor g = need(f, m + ".g_idx", DType::I32, {qw.cols});
  qw.q.assign(q.data<uint8_t>(), q.data<uint8_t>() + q.numel());
  qw.scale.assign(s.f32(), s.f32() + s.numel());
  qw.zero.assign(z.f32(), z.f32() + z.numel());
  qw.g_idx.assign(g.data<int32_t>(), g.data<int32_t>() + g.numel());
  const std::string bad = qw.problem();
  if (!bad.empty()) throw FormatError(f.path() + ": quantized weight '" + m + "': " + bad);
  return qw;
}

// ---- QuantState --------------------------------------------------------------------------

bool QuantState::exists(const std::string& dir) { return file_exists(path_join(dir, "state.json")); }

std::string QuantState::layer_path(int layer) const {
  return path_join(dir_, layer < 0 ? "extra.safetensors" : "layer." + std::to_string(layer) + ".safetensors");
}

void QuantState::write_info() const { write_file_atomic(path_join(dir_, "state.json"), info_.dump(1) + "\n"); }

QuantState QuantState::create(const std::string& dir, Json info) {
  if (!info.is_object()) throw ArgError("QuantState::create: info must be an object");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir + ": cannot create directory: " + ec.message());
  QuantState s;
  s.dir_ = dir;
  info["format"] = "calq-qstate";
  info["version"] = 1;
  info["layers_done"] = Json::array();
  info["quantized"] = Json::array();
  info["layer_sha256"] = Json::object();
  if (!info.contains("reports")) info["reports"] = Json::object();
  if (!info.contains("num_layers")) throw ArgError("QuantState::create: info needs num_layers");
  s.info_ = std::move(info);
  s.write_info();
  return s;
}

QuantState QuantState::open(const std::string& dir) {
  const std::string path = path_join(dir, "state.json");
  if (!file_exists(path)) throw IoError(dir + ": no state.json (not a calq quantization state)");
  QuantState s;
  s.dir_ = dir;
  try {
    s.info_ = load_json_file(path);
  } catch (const FormatError& e) {
    throw FormatError(std::string(e.what()) + " (corrupt quantization state; delete " + dir + " to start over)");
  }
  const Json& j = s.info_;
  auto bad = [&](const std::string& why) {
    return FormatError(path + ": " + why + " (corrupt quantization state; delete " + dir + " to start over)");
  };
  if (!j.is_object()) throw bad("expected a JSON object");
  if (!j.contains("format") || j["format"] != "calq-qstate") throw bad("'format' is not \"calq-qstate\"");
  if (!j.contains("version") || j["version"] != 1) throw bad("unsupported 'version' (expected 1)");
  if (!j.contains("num_layers") || !j["num_layers"].is_number_integer() || j["num_layers"].get<int64_t>() < 0 ||
      j["num_layers"].get<int64_t>() > 100000)
    throw bad("'num_layers' must be a non-negative integer");
  if (!j.contains("method") || !j["method"].is_string()) throw bad("'method' must be a string");
  if (!j.contains("layers_done") || !j["layers_done"].is_array()) throw bad("'layers_done' must be an array");
  if (!j.contains("quantized") || !j["quantized"].is_array()) throw bad("'quantized' must be an array");
  if (!j.contains("layer_sha256") || !j["layer_sha256"].is_object())
    throw FormatError(path + ": no 'layer_sha256' (a state written before calq recorded content hashes; calq is "
                             "pre-1.0 and does not read it): delete " + dir + " and run calq quantize again");
  const int64_t L = j["num_layers"].get<int64_t>();
  for (const auto& v : j["layers_done"]) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= L)
      throw bad("'layers_done' entries must be layer indices below num_layers");
    const int i = v.get<int>();
    if (!file_exists(s.layer_path(i))) throw bad("layer " + std::to_string(i) + " is listed as done but " +
                                                 s.layer_path(i) + " is missing");
    s.file_for(i);  // validates the header and the content hash now rather than mid-run
  }
  s.file_for(-1);
  for (const auto& v : j["quantized"])
    if (!v.is_string()) throw bad("'quantized' entries must be module names");
  return s;
}

int QuantState::num_layers() const { return info_.at("num_layers").get<int>(); }

std::vector<int> QuantState::layers_done() const {
  std::vector<int> r;
  for (const auto& v : info_.at("layers_done")) r.push_back(v.get<int>());
  std::sort(r.begin(), r.end());
  return r;
}

bool QuantState::layer_done(int i) const {
  for (const auto& v : info_.at("layers_done"))
    if (v.get<int>() == i) return true;
  return false;
}

bool QuantState::complete() const { return int(layers_done().size()) == num_layers(); }

void QuantState::require_complete() const {
  if (!complete())
    throw FormatError(path_join(dir_, "state.json") + ": the quantization run is incomplete (" +
                      std::to_string(layers_done().size()) + " of " + std::to_string(num_layers()) +
                      " layers done); run `calq quantize` again to resume it");
}

std::string QuantState::source_model() const {
  const std::string m = json_get<std::string>(info_, "source_model", path_join(dir_, "state.json"));
  if (!file_exists(m) && file_exists(path_join(dir_, m))) return path_join(dir_, m);
  return m;
}

std::vector<std::shared_ptr<SafetensorsFile>> QuantState::finished_files() const {
  std::vector<std::shared_ptr<SafetensorsFile>> r;
  for (int i : layers_done())
    if (auto f = file_for(i)) r.push_back(f);
  if (auto f = file_for(-1)) r.push_back(f);
  return r;
}

std::vector<std::string> QuantState::quantized_modules() const {
  std::vector<std::string> r;
  for (const auto& f : finished_files())
    for (const auto& ti : f->tensors())
      if (ti.name.ends_with(".q")) r.push_back(ti.name.substr(0, ti.name.size() - 2));
  std::sort(r.begin(), r.end());
  return r;
}

std::vector<std::string> QuantState::replaced_tensors() const {
  std::vector<std::string> r;
  for (const auto& f : finished_files())
    for (const auto& ti : f->tensors())
      if (coded_module(*f, ti.name).empty()) r.push_back(ti.name);
  std::sort(r.begin(), r.end());
  return r;
}

void QuantState::verify_file(const SafetensorsFile& f, int layer) const {
  const std::string redo = "delete " + dir_ + " and run calq quantize again";
  const std::string hash = verify_content_sha256(f, redo);
  const Json& recorded = info_.at("layer_sha256");
  const std::string key = std::to_string(layer);
  if (!recorded.contains(key) || recorded[key] != hash)
    throw FormatError(f.path() + ": its content hash is not the one state.json records for it (a file of another run "
                      "or an older write); " + redo);
  auto it = f.metadata().find(kRunKey);
  if (it == f.metadata().end() || it->second != run_identity(info_))
    throw FormatError(path_join(dir_, "state.json") + ": the run's method, settings, source or calibration differ from "
                      "those " + f.path() + " was written for (state.json was modified); " + redo);
}

std::shared_ptr<SafetensorsFile> QuantState::file_for(int layer) const {
  std::lock_guard<std::mutex> lock(files_->mu);
  auto it = files_->open.find(layer);
  if (it != files_->open.end()) return it->second;
  const std::string p = layer_path(layer);
  if (!file_exists(p) || (layer >= 0 && !layer_done(layer))) return nullptr;
  auto f = SafetensorsFile::open(p);
  verify_file(*f, layer);
  // The content hash read every page: drop them (a 7B run's layer files are ~6.5 GB), weight()
  // maps back what it reads.
  for (const TensorInfo& t : f->tensors()) f->release(t.name);
  files_->open[layer] = f;
  return f;
}

std::optional<QuantizedWeight> QuantState::weight(const std::string& module) const {
  auto f = file_for(layer_of_name(module));
  if (!f || !f->find(module + ".q")) return std::nullopt;
  return read_quantized_weight(*f, module);
}

void QuantState::release(const std::string& module) const {
  std::shared_ptr<SafetensorsFile> f;
  {
    std::lock_guard<std::mutex> lock(files_->mu);
    auto it = files_->open.find(layer_of_name(module));
    if (it == files_->open.end()) return;
    f = it->second;
  }
  for (const char* part : {".q", ".scale", ".zero", ".g_idx"}) f->release(module + part);
}

std::optional<Tensor> QuantState::replaced(const std::string& tensor) const {
  auto f = file_for(layer_of_name(tensor));
  if (!f) return std::nullopt;
  const TensorInfo* ti = f->find(tensor);
  if (!ti) return std::nullopt;
  if (ti->dtype != DType::F32) throw FormatError(f->path() + ": replaced tensor '" + tensor + "' must be F32");
  return f->get(tensor);
}

std::optional<float> QuantState::input_scale(const std::string& module) const {
  auto f = file_for(layer_of_name(module));
  if (!f || !f->find(module + ".input_scale")) return std::nullopt;
  const Tensor t = need(*f, module + ".input_scale", DType::F32, {1});
  const float v = t.f32()[0];
  if (!(v > 0.0f) || !std::isfinite(v)) throw FormatError(f->path() + ": '" + module + ".input_scale' is not positive");
  return v;
}

LayerResult QuantState::layer(int i) const {
  if (!layer_done(i)) throw FormatError(dir_ + ": layer " + std::to_string(i) + " is not finished");
  auto f = file_for(i);
  if (!f) throw FormatError(layer_path(i) + ": missing");
  LayerResult r;
  r.layer = i;
  std::set<std::string> modules;
  for (const auto& ti : f->tensors()) {
    const std::string m = coded_module(*f, ti.name);
    if (m.empty()) {
      if (auto t = replaced(ti.name)) r.replaced[ti.name] = *t;
    } else if (ti.name == m + ".q") {
      modules.insert(m);
    } else if (ti.name == m + ".input_scale") {
      r.input_scales[m] = *input_scale(m);
    }
  }
  for (const auto& m : modules) r.weights[m] = read_quantized_weight(*f, m);
  auto rep = info_.find("reports");
  if (rep != info_.end() && rep->is_object() && rep->contains(std::to_string(i))) r.report = (*rep)[std::to_string(i)];
  return r;
}

void QuantState::write_layer(const LayerResult& r) {
  if (r.layer < -1 || r.layer >= num_layers())
    throw ArgError("QuantState: layer " + std::to_string(r.layer) + " outside -1.." + std::to_string(num_layers() - 1));
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
  for (const auto& [m, qw] : r.weights) quantized_weight_entries(m, qw, tensors, meta);
  for (const auto& [name, t] : r.replaced) {
    if (t.dtype() != DType::F32) throw ArgError("QuantState: replaced tensor '" + name + "' must be F32");
    tensors[name] = t;
  }
  for (const auto& [m, s] : r.input_scales) tensors[m + ".input_scale"] = Tensor::from_f32({s}, {1});
  meta[kRunKey] = run_identity(info_);
  SafetensorsWriter w;
  const std::string hash = add_with_content_hash(w, tensors, meta);
  {
    std::lock_guard<std::mutex> lock(files_->mu);
    files_->open.erase(r.layer);  // a rewritten file must be re-mapped
  }
  w.write(layer_path(r.layer));
  info_["layer_sha256"][std::to_string(r.layer)] = hash;
  if (r.layer < 0) {  // extra.safetensors: not a layer of layers_done
    write_info();
    return;
  }
  if (!layer_done(r.layer)) info_["layers_done"].push_back(r.layer);
  std::set<std::string> q;
  for (const auto& v : info_["quantized"]) q.insert(v.get<std::string>());
  for (const auto& [m, _] : r.weights)
    if (q.insert(m).second) info_["quantized"].push_back(m);
  if (!info_.contains("reports") || !info_["reports"].is_object()) info_["reports"] = Json::object();
  info_["reports"][std::to_string(r.layer)] = r.report;
  write_info();
}

void QuantState::set_field(const std::string& key, const Json& value) {
  info_[key] = value;
  write_info();
}

}  // namespace calq
