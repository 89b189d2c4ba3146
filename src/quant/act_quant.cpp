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
    case ActGranularity::PerTensor: return "per_tensor";
    case ActGranularity::PerChannel: return "per_channel";
  }
  return "?";
}

ActGranularity parse_act_granularity(const std::string& s) {
  if (s == "none") return ActGranularity::None;
  if (s == "per_token" || s == "per-token" || s == "token") return ActGranularity::PerToken;
  if (s == "per_tensor_static" || s == "per-tensor-static" || s == "tensor-static" || s == "static")
    return ActGranularity::PerTensorStatic;
  if (s == "per_tensor" || s == "per-tensor" || s == "tensor") return ActGranularity::PerTensor;
  if (s == "per_channel" || s == "per-channel" || s == "channel") return ActGranularity::PerChannel;
  throw ArgError("unknown activation granularity '" + s +
                 "' (expected per_token, per_tensor, per_channel or per_tensor_static)");
}

PerTensorActQuant::PerTensorActQuant(int bits) : bits_(bits) { check_bits(bits, "activation quantizer"); }
void PerTensorActQuant::apply(float* x, int64_t rows, int64_t cols) const {
  fake_quant_per_tensor_dynamic(x, rows * cols, bits_);
}
std::string PerTensorActQuant::describe() const { return "a" + std::to_string(bits_) + " per-tensor dynamic"; }

PerChannelActQuant::PerChannelActQuant(int bits) : bits_(bits) { check_bits(bits, "activation quantizer"); }
void PerChannelActQuant::apply(float* x, int64_t rows, int64_t cols) const {
  fake_quant_per_channel(x, rows, cols, bits_);
}
std::string PerChannelActQuant::describe() const { return "a" + std::to_string(bits_) + " per-channel dynamic"; }

std::shared_ptr<const InputTransform> make_dynamic_act_quant(ActGranularity g, int bits) {
  switch (g) {
    case ActGranularity::PerToken: return std::make_shared<PerTokenActQuant>(bits);
    case ActGranularity::PerTensor: return std::make_shared<PerTensorActQuant>(bits);
    case ActGranularity::PerChannel: return std::make_shared<PerChannelActQuant>(bits);
    default: return nullptr;
  }
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
