#include "formats/qstate_model.h"

#include <algorithm>
#include <cmath>

#include "formats/quantized_linears.h"
#include "util/error.h"

namespace calq {

bool is_qstate_folder(const std::string& dir) {
  const std::string p = path_join(dir, "state.json");
  if (!file_exists(p)) return false;
  const Json j = load_json_file(p);
  return j.is_object() && j.value("format", std::string()) == "calq-qstate";
}

QStateSource::QStateSource(QuantState qs, std::shared_ptr<const Checkpoint> source, const LoadOptions& o)
    : qs_(std::move(qs)), src_(std::move(source)), o_(o) {
  qs_.require_complete();
  act_ = qs_.info().value("activation", Json());
  if (!act_.is_null() && !act_.is_object()) throw FormatError(qs_.dir() + "/state.json: 'activation' must be an object");
}

namespace {
std::string module_of(const std::string& tensor) {
  return tensor.ends_with(".weight") ? tensor.substr(0, tensor.size() - 7) : std::string();
}
}  // namespace

bool QStateSource::has(const std::string& name) const { return src_->has(name) || qs_.replaced(name).has_value(); }

Tensor QStateSource::get(const std::string& name) const {
  if (auto t = qs_.replaced(name)) return *t;
  const std::string m = module_of(name);
  if (!m.empty())
    if (auto w = qs_.weight(m)) return w->dequantize();
  return src_->get(name);
}

std::shared_ptr<QuantPackedWeight> QStateSource::quantized_linear(const std::string& m, ComputeType c) const {
  if (o_.float_weights) return nullptr;
  const std::optional<QuantizedWeight> w = qs_.weight(m);
  if (!w) return nullptr;
  const std::string what = qs_.dir() + ": " + m;
  // The codes were copied out of the mapping (read_quantized_weight): drop its pages.
  qs_.release(m);
  if (act_.is_null()) return pack_quantized_weight(*w, c, o_.acts, what);
  const std::string where = qs_.dir() + "/state.json: activation";
  const auto modules = json_get<std::vector<std::string>>(act_, "modules", where);
  if (std::find(modules.begin(), modules.end(), m) == modules.end()) return pack_quantized_weight(*w, c, o_.acts, what);
  if (json_get<int>(act_, "bits", where) != 8) throw UnsupportedError(where + ": calq's kernels run 8-bit activations only");
  const std::string g = json_get<std::string>(act_, "granularity", where);
  W8A8Options opt;
  if (g == "per_token") {
    opt.act = W8A8Act::PerToken;
  } else if (g == "per_tensor_static") {
    opt.act = W8A8Act::PerTensorStatic;
    const std::optional<float> s = qs_.input_scale(m);
    if (!s || !(*s > 0.0f) || !std::isfinite(*s)) throw FormatError(what + ": missing or invalid static input scale");
    opt.static_scale = *s;
  } else {
    throw UnsupportedError(where + ": activation granularity '" + g + "'");
  }
  return pack_w8a8_weight(*w, opt, c, what);
}

std::unique_ptr<Decoder> load_qstate_model(const std::string& dir, ComputeType compute, const LoadOptions& o) {
  QuantState qs = QuantState::open(dir);
  const std::string src_dir = qs.source_model();
  auto ck = std::make_shared<const Checkpoint>(Checkpoint::open(src_dir));
  const ModelConfig cfg = ModelConfig::from_json(ck->config(), path_join(src_dir, "config.json"));
  return Decoder::from_source(cfg, std::make_shared<QStateSource>(std::move(qs), ck, o), compute);
}

}  // namespace calq
