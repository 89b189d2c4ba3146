#include "quant/act_quant.h"

#include <cmath>

#include "quant/quantizer.h"
#include "util/error.h"

namespace calq {

const char* act_granularity_name(ActGranularity g) {
  switch (g) {
    case ActGranularity::None: return "none";
    case ActGranularity::PerToken: return "per_token";
    case ActGranularity::PerTensorStatic: return "per_tensor_static";
  }
  return "?";
}

ActGranularity parse_act_granularity(const std::string& s) {
  if (s == "none") return ActGranularity::None;
  if (s == "per_token" || s == "per-token" || s == "token") return ActGranularity::PerToken;
  if (s == "per_tensor_static" || s == "per-tensor-static" || s == "tensor-static" || s == "static")
    return ActGranularity::PerTensorStatic;
  throw ArgError("unknown activation granularity '" + s + "' (expected per_token or per_tensor_static)");
}

PerTokenActQuant::PerTokenActQuant(int bits) : bits_(bits) { check_bits(bits, "activation quantizer"); }

void PerTokenActQuant::apply(float* x, int64_t rows, int64_t cols) const { fake_quant_per_token(x, rows, cols, bits_); }

std::string PerTokenActQuant::describe() const { return "a" + std::to_string(bits_) + " per-token dynamic"; }

PerTensorStaticActQuant::PerTensorStaticActQuant(int bits, float scale) : bits_(bits), scale_(scale) {
  check_bits(bits, "activation quantizer");
  if (!(scale > 0.0f) || !std::isfinite(scale)) throw ArgError("static activation scale must be positive and finite");
}

void PerTensorStaticActQuant::apply(float* x, int64_t rows, int64_t cols) const {
  fake_quant_per_tensor_static(x, rows * cols, scale_, bits_);
}

std::string PerTensorStaticActQuant::describe() const {
  return "a" + std::to_string(bits_) + " per-tensor static (scale " + std::to_string(scale_) + ")";
}

int apply_calq_quant_config(Decoder& model, const std::string& what) {
  const Checkpoint* ck = model.checkpoint();
  if (!ck) return 0;
  const Json& cfg = ck->config();
  auto cq = cfg.find("calq_quant");
  if (cq == cfg.end() || cq->is_null()) return 0;
  const std::string where = what + "/config.json: calq_quant";
  if (!cq->is_object()) throw ConfigError(where + ": expected an object");
  auto act = cq->find("activation");
  if (act == cq->end() || act->is_null()) return 0;
  if (!act->is_object()) throw ConfigError(where + ".activation: expected an object");
  const int bits = json_get<int>(*act, "bits", where + ".activation");
  if (bits < 2 || bits > 8) throw ConfigError(where + ".activation: bits must be in 2..8");
  const ActGranularity g = [&] {
    try {
      return parse_act_granularity(json_get<std::string>(*act, "granularity", where + ".activation"));
    } catch (const ArgError& e) {
      throw ConfigError(where + ".activation: " + e.what());
    }
  }();
  const auto modules = json_get<std::vector<std::string>>(*act, "modules", where + ".activation");
  int n = 0;
  for (const auto& m : modules) {
    Linear* l = model.find_linear(m);
    if (!l) throw ConfigError(where + ".activation: no linear layer named '" + m + "'");
    if (g == ActGranularity::PerToken) {
      l->input_transform = std::make_shared<PerTokenActQuant>(bits);
    } else if (g == ActGranularity::PerTensorStatic) {
      const std::string name = m + ".input_scale";
      if (!ck->has(name)) throw FormatError(what + ": missing tensor '" + name + "' (per_tensor_static activations)");
      const Tensor t = ck->get(name).to(DType::F32);
      if (t.numel() != 1) throw FormatError(what + ": tensor '" + name + "' must have one element");
      const float s = t.f32()[0];
      if (!(s > 0.0f) || !std::isfinite(s)) throw FormatError(what + ": tensor '" + name + "' is not a positive scale");
      l->input_transform = std::make_shared<PerTensorStaticActQuant>(bits, s);
    } else {
      continue;
    }
    ++n;
  }
  return n;
}

}  // namespace calq
