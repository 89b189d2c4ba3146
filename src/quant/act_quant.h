// W8A8 activation fake-quantization at run time: InputTransforms that quantize a linear layer's
// input before the product (SmoothQuant fake_quant.py W8A8Linear: act_quant "per_token"; and the
// per-tensor static variant with a calibrated scale, SmoothQuant's O3 setting), and how a
// fake-quant checkpoint carries them so that loading it re-applies activation quantization
// (formats/fakequant.h apply_calq_quant_config).
//
// config.json of a fake-quant checkpoint written by `calq quantize`:
//   "calq_quant": {"method": ..., "settings": {...},
//                  "activation": {"bits": 8, "granularity": "per_token" | "per_tensor_static",
//                                 "modules": [HF module names whose inputs are quantized]}}
// per_tensor_static reads the scale of each module from the tensor "<module>.input_scale"
// (F32 [1]) in the checkpoint.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/linear.h"
#include "util/json.h"

namespace calq {

enum class ActGranularity { None, PerToken, PerTensorStatic };
const char* act_granularity_name(ActGranularity g);
ActGranularity parse_act_granularity(const std::string& s);  // ArgError on unknown names

class PerTokenActQuant final : public InputTransform {
 public:
  explicit PerTokenActQuant(int bits);
  void apply(float* x, int64_t rows, int64_t cols) const override;
  std::string describe() const override;
  int bits() const { return bits_; }

 private:
  int bits_;
};

class PerTensorStaticActQuant final : public InputTransform {
 public:
  PerTensorStaticActQuant(int bits, float scale);
  void apply(float* x, int64_t rows, int64_t cols) const override;
  std::string describe() const override;
  float scale() const { return scale_; }

 private:
  int bits_;
  float scale_;
};

}  // namespace calq
