// Loading GPTQ and AWQ checkpoint folders back: a TensorSource over the folder whose
// "<m>.weight" for a packed linear is the dequantized float32 weight
// (scale * (q - zero), exactly QuantizedWeight::dequantize()), so the generic Decoder runs the
// model unchanged. Every other tensor comes from the checkpoint as stored.
#pragma once
#include <memory>
#include <string>

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
  PackedCheckpointSource(std::shared_ptr<const Checkpoint> c, PackedFormat f) : c_(std::move(c)), f_(f) {}
  bool has(const std::string& name) const override;
  Tensor get(const std::string& name) const override;
  std::string describe() const override { return c_->dir(); }
  std::string where(const std::string& name) const override { return c_->where(name); }
  // Is `module` stored packed? Its codes, scales and zeros as read from the folder.
  bool is_packed(const std::string& module) const;
  QuantizedWeight quantized(const std::string& module) const;
  const PackedFormat& format() const { return f_; }

 private:
  std::shared_ptr<const Checkpoint> c_;
  PackedFormat f_;
};

// A GPTQ or AWQ folder as a Decoder with float32 weights.
std::unique_ptr<Decoder> load_packed_model(const std::string& dir, ComputeType compute = ComputeType::F32);

}  // namespace calq
