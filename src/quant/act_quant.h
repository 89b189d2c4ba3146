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

// per_token: one scale per row (token) of each call, SmoothQuant's default;
// per_tensor: one scale per call (dynamic), qllm-eval's per_tensor;
// per_channel: one scale per input channel over the rows of each call (dynamic; an evaluation
//   window per call at batch 1), the qllm-eval-style axis beside the two;
// per_tensor_static: one calibrated scale per linear (SmoothQuant O3).
enum class ActGranularity { None, PerToken, PerTensorStatic, PerTensor, PerChannel };
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

class PerTensorActQuant final : public InputTransform {
 public:
  explicit PerTensorActQuant(int bits);
  void apply(float* x, int64_t rows, int64_t cols) const override;
  std::string describe() const override;

 private:
  int bits_;
};

class PerChannelActQuant final : public InputTransform {
 public:
  explicit PerChannelActQuant(int bits);
  void apply(float* x, int64_t rows, int64_t cols) const override;
  std::string describe() const override;

 private:
  int bits_;
};

// The run-time transform of a dynamic granularity (per_token, per_tensor, per_channel), null for
// the others (none; per_tensor_static needs its calibrated scale).
std::shared_ptr<const InputTransform> make_dynamic_act_quant(ActGranularity g, int bits);

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
