#include "export/quant_source.h"

#include <set>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "util/error.h"

namespace calq {

std::optional<QuantizedWeight> MemoryQuantSource::weight(const std::string& module) const {
  auto it = weights.find(module);
  if (it == weights.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> MemoryQuantSource::quantized_modules() const {
  std::vector<std::string> r;
  for (const auto& [n, _] : weights) r.push_back(n);
  return r;
}

std::optional<Tensor> MemoryQuantSource::replaced(const std::string& tensor) const {
  auto it = tensors.find(tensor);
  if (it == tensors.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> MemoryQuantSource::replaced_tensors() const {
  std::vector<std::string> r;
  for (const auto& [n, _] : tensors) r.push_back(n);
  return r;
}

namespace {

constexpr const char* kParts[] = {".q", ".scale", ".zero", ".g_idx"};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int meta_int(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) throw FormatError(f.path() + ": missing metadata '" + key + "'");
  try {
    size_t used = 0;
    const int v = std::stoi(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw FormatError(f.path() + ": metadata '" + key + "' = '" + it->second + "' is not an integer");
  }
}

bool meta_bool(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) return false;
  if (it->second == "true" || it->second == "1" || it->second == "True") return true;
  if (it->second == "false" || it->second == "0" || it->second == "False") return false;
  throw FormatError(f.path() + ": metadata '" + key + "' = '" + it->second + "' is not a boolean");
}

template <class T>
std::vector<T> copy_as(const SafetensorsFile& f, const std::string& name, DType want, const Shape& shape) {
  const Tensor t = f.get(name);
  if (t.dtype() != want || t.shape() != shape)
    throw FormatError(f.path() + ": tensor '" + name + "' is " + dtype_name(t.dtype()) + " " + shape_str(t.shape()) +
                      ", expected " + dtype_name(want) + " " + shape_str(shape));
  const T* p = t.data<T>();
  return std::vector<T>(p, p + t.numel());
}

// A QuantState directory read through its documented file layout.
class QuantStateDir final : public QuantSource {
 public:
  std::string dir, model;
  Json state;
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  std::map<std::string, size_t> module_file;  // quantized module -> file
  std::map<std::string, size_t> tensor_file;  // replaced tensor -> file

  std::string source_model() const override { return model; }
  Json info() const override { return state; }
  std::string describe() const override { return dir; }

  std::vector<std::string> quantized_modules() const override {
    std::vector<std::string> r;
    for (const auto& [m, _] : module_file) r.push_back(m);
    return r;
  }
  std::vector<std::string> replaced_tensors() const override {
    std::vector<std::string> r;
    for (const auto& [t, _] : tensor_file) r.push_back(t);
    return r;
  }
  std::optional<Tensor> replaced(const std::string& tensor) const override {
    auto it = tensor_file.find(tensor);
    if (it == tensor_file.end()) return std::nullopt;
    return files[it->second]->get(tensor);
  }

  std::optional<QuantizedWeight> weight(const std::string& m) const override {
    auto it = module_file.find(m);
    if (it == module_file.end()) return std::nullopt;
    const SafetensorsFile& f = *files[it->second];
    const TensorInfo* qi = f.find(m + ".q");
    const TensorInfo* si = f.find(m + ".scale");
    if (qi->shape.size() != 2 || !si || si->shape.size() != 2 || si->shape[0] != qi->shape[0])
      throw FormatError(f.path() + ": '" + m + "' needs q [out, in] and scale [out, G]");
    QuantizedWeight w;
    w.bits = meta_int(f, m + ".bits");
    w.group_size = meta_int(f, m + ".group_size");
    w.sym = meta_bool(f, m + ".sym");
    w.rows = qi->shape[0];
    w.cols = qi->shape[1];
    const int64_t ng = si->shape[1];
    w.q = copy_as<uint8_t>(f, m + ".q", DType::U8, {w.rows, w.cols});
    w.scale = copy_as<float>(f, m + ".scale", DType::F32, {w.rows, ng});
    w.zero = copy_as<float>(f, m + ".zero", DType::F32, {w.rows, ng});
    w.g_idx = copy_as<int32_t>(f, m + ".g_idx", DType::I32, {w.cols});
    return w;
  }

  void index(size_t k) {
    const SafetensorsFile& f = *files[k];
    std::set<std::string> parts;
    for (const auto& ti : f.tensors())
      if (ends_with(ti.name, ".q")) {
        const std::string m = ti.name.substr(0, ti.name.size() - 2);
        if (!module_file.emplace(m, k).second) throw FormatError(f.path() + ": module '" + m + "' appears in two files");
        for (const char* p : kParts) {
          if (!f.find(m + p)) throw FormatError(f.path() + ": quantized module '" + m + "' lacks tensor '" + m + p + "'");
          parts.insert(m + p);
        }
      }
    for (const auto& ti : f.tensors())
      if (!parts.count(ti.name) && !tensor_file.emplace(ti.name, k).second)
        throw FormatError(f.path() + ": tensor '" + ti.name + "' appears in two files");
  }
};

}  // namespace

std::unique_ptr<QuantSource> open_quant_state(const std::string& dir, bool require_complete) {
  auto q = std::make_unique<QuantStateDir>();
  q->dir = dir;
  const std::string sp = path_join(dir, "state.json");
  if (!file_exists(sp)) throw IoError(dir + ": no state.json (not a calq QuantState directory)");
  q->state = load_json_file(sp);
  if (json_get_or<std::string>(q->state, "format", "", sp) != "calq-qstate")
    throw FormatError(sp + ": field 'format' is not \"calq-qstate\"");
  if (json_get<int>(q->state, "version", sp) != 1) throw UnsupportedError(sp + ": unsupported QuantState version");
  q->model = json_get<std::string>(q->state, "source_model", sp);
  if (!file_exists(q->model) && file_exists(path_join(dir, q->model))) q->model = path_join(dir, q->model);
  const int num_layers = json_get<int>(q->state, "num_layers", sp);
  const auto done = json_get<std::vector<int>>(q->state, "layers_done", sp);
  std::set<int> done_set(done.begin(), done.end());
  for (int i : done_set) {
    if (i < 0 || i >= num_layers) throw FormatError(sp + ": layers_done entry " + std::to_string(i) + " out of range");
    q->files.push_back(SafetensorsFile::open(path_join(dir, "layer." + std::to_string(i) + ".safetensors")));
    q->index(q->files.size() - 1);
  }
  if (require_complete && int(done_set.size()) != num_layers)
    throw FormatError(sp + ": the quantization run is incomplete (" + std::to_string(done_set.size()) + " of " +
                      std::to_string(num_layers) + " layers done); resume `calq quantize` first");
  const std::string extra = path_join(dir, "extra.safetensors");
  if (file_exists(extra)) {
    q->files.push_back(SafetensorsFile::open(extra));
    q->index(q->files.size() - 1);
  }
  return q;
}

}  // namespace calq
