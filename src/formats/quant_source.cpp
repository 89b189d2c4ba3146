#include "formats/quant_source.h"

#include <algorithm>
#include <cstring>

#include "io/checkpoint.h"
#include "quant/qstate.h"
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

std::vector<std::string> run_warnings(const QuantSource& q, const std::string& format) {
  std::vector<std::string> w;
  const Json info = q.info();
  if (info.is_object() && info.contains("activation") && !info["activation"].is_null())
    w.push_back(q.describe() + ": the run quantizes activations (" + info["activation"].dump() + "); " + format +
                " stores weights only, so the exported model runs with float activations");
  return w;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A QuantState directory (quant/qstate.h). The module and tensor names are listed once from the
// layer files' headers; codes and tensors are read from the state when an exporter asks for them.
class QuantStateSource final : public QuantSource {
 public:
  explicit QuantStateSource(QuantState s) : s_(std::move(s)) {}
  QuantState s_;
  std::string model;
  std::vector<std::string> modules, tensors;

  std::string source_model() const override { return model; }
  Json info() const override { return s_.info(); }
  std::string describe() const override { return s_.dir(); }
  std::optional<QuantizedWeight> weight(const std::string& m) const override { return s_.weight(m); }
  std::vector<std::string> quantized_modules() const override { return modules; }
  std::optional<Tensor> replaced(const std::string& t) const override { return s_.replaced(t); }
  std::vector<std::string> replaced_tensors() const override { return tensors; }

  void index(const std::string& path) {
    const auto f = SafetensorsFile::open(path);
    for (const auto& ti : f->tensors()) {
      if (ends_with(ti.name, ".q")) {
        modules.push_back(ti.name.substr(0, ti.name.size() - 2));
        continue;
      }
      bool part = false;
      for (const char* sfx : {".q", ".scale", ".zero", ".g_idx", ".input_scale"})
        if (ends_with(ti.name, sfx) && f->find(ti.name.substr(0, ti.name.size() - std::strlen(sfx)) + ".q")) part = true;
      if (!part) tensors.push_back(ti.name);
    }
  }
};

}  // namespace

std::unique_ptr<QuantSource> open_quant_state(const std::string& dir, bool require_complete) {
  QuantState s = QuantState::open(dir);
  const std::string sp = path_join(dir, "state.json");
  if (require_complete && !s.complete())
    throw FormatError(sp + ": the quantization run is incomplete (" + std::to_string(s.layers_done().size()) + " of " +
                      std::to_string(s.num_layers()) + " layers done); resume `calq quantize` first");
  auto q = std::make_unique<QuantStateSource>(std::move(s));
  q->model = json_get<std::string>(q->s_.info(), "source_model", sp);
  if (!file_exists(q->model) && file_exists(path_join(dir, q->model))) q->model = path_join(dir, q->model);
  for (int i : q->s_.layers_done()) q->index(path_join(dir, "layer." + std::to_string(i) + ".safetensors"));
  if (file_exists(path_join(dir, "extra.safetensors"))) q->index(path_join(dir, "extra.safetensors"));
  std::sort(q->modules.begin(), q->modules.end());
  std::sort(q->tensors.begin(), q->tensors.end());
  return q;
}

}  // namespace calq
