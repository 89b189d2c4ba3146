// Loading GPTQ and AWQ checkpoint folders back: a TensorSource over the folder whose packed
// linears run as quantized weights (quantized_linear(): the codes, scales and zero points
// unpacked and packed for calq's kernels, kernels/qgemm.h; the mapped pages of qweight, qzeros,
// scales and g_idx dropped afterwards). "<m>.weight" of a packed linear reads as the dequantized
// float32 weight (scale * (q - zero), exactly QuantizedWeight::dequantize()): what
// LoadOptions::float_weights loads. Every other tensor comes from the checkpoint as stored.
#pragma once
#include <memory>
#include <string>

#include "formats/loader.h"
#include "formats/packing.h"
#include "model/decoder.h"

namespace calq {

struct PackedFormat {
  enum class Kind { Gptq, Awq } kind = Kind::Gptq;
  int bits = 4;
  int group_size = 128;
  bool sym = false;
  GptqZeroFormat zeros = GptqZeroFormat::V1;
  // From config.json's quantization_config; UnsupportedError for settings calq cannot read
  // (AWQ versions other than gemm, GPTQ bits other than 2/3/4/8, ...).
  static PackedFormat from_config(const Json& quantization_config, const std::string& what);
};

class PackedCheckpointSource final : public TensorSource {
 public:
  PackedCheckpointSource(std::shared_ptr<const Checkpoint> c, PackedFormat f, const LoadOptions& o = {})
      : c_(std::move(c)), f_(f), o_(o) {}
  bool has(const std::string& name) const override;
  Tensor get(const std::string& name) const override;
  std::string describe() const override { return c_->dir(); }
  // Null with LoadOptions::float_weights (get() then dequantizes) and for unpacked linears.
  std::shared_ptr<QuantPackedWeight> quantized_linear(const std::string& module, ComputeType c) const override;
  void release(const std::string& name) const override { c_->release(name); }
  std::string where(const std::string& name) const override { return c_->where(name); }
  // Is `module` stored packed? Its codes, scales and zeros as read from the folder.
  bool is_packed(const std::string& module) const;
  QuantizedWeight quantized(const std::string& module) const;
  const PackedFormat& format() const { return f_; }

 private:
  std::shared_ptr<const Checkpoint> c_;
  PackedFormat f_;
  LoadOptions o_;
};

// A GPTQ or AWQ folder as a Decoder with quantized linears (float32 ones with o.float_weights).
std::unique_ptr<Decoder> load_packed_model(const std::string& dir, ComputeType compute = ComputeType::F32,
                                           const LoadOptions& o = {});

}  // namespace calq
