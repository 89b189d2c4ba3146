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

}  // namespace calq
