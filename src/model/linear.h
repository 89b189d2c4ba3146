// A linear layer as the decoder runs it: y = x Wᵀ + b, with W viewed from the checkpoint
// (any float dtype) until a method replaces it, and a lazily built packed copy for the GEMM.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "kernels/gemm.h"
#include "tensor/tensor.h"

namespace calq {

// Transforms a linear layer's input before the product (e.g. W8A8 per-token activation
// fake-quantization). Applied to a copy: the observed input is never modified.
class InputTransform {
 public:
  virtual ~InputTransform() = default;
  virtual void apply(float* x, int64_t rows, int64_t cols) const = 0;
  virtual std::string describe() const = 0;
};

struct Norm {
  Tensor weight;  // [n] F32
  Tensor bias;    // [n] F32 or undefined
};

class Linear {
 public:
  std::string name;  // HF module name
  int64_t in = 0, out = 0;
  Tensor bias;       // [out] F32 or undefined
  std::shared_ptr<const InputTransform> input_transform;

  const Tensor& weight() const { return weight_; }
  // Replaces W ([out, in], any float dtype) and drops the packed copy.
  void set_weight(Tensor w);
  // W as float32 (a view when already F32, else a converted copy).
  Tensor weight_f32() const;
  // Packed copy for `c`, built on first use (thread-safe).
  const PackedWeight& packed(ComputeType c) const;
  // Drops the packed copy (e.g. to save memory after a layer has been processed).
  void release_packed() const;

 private:
  Tensor weight_;
  mutable std::shared_ptr<PackedWeight> packed_;
  mutable std::mutex mu_;
};

// y [rows, out] = transform(x) [rows, in] · Wᵀ + b.
void linear_forward(const Linear& l, const float* x, int64_t rows, float* y, ComputeType c);

}  // namespace calq
