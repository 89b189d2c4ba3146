// A linear layer as the decoder runs it: y = x Wᵀ + b, with W viewed from the checkpoint
// (any float dtype) until a method replaces it, and a lazily built packed copy for the GEMM.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

struct FusedLinear;

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
  // Drops the packed copy and any fused copy this layer is part of (e.g. to save memory after a
  // layer has been processed).
  void release_packed() const;

 private:
  friend std::shared_ptr<const FusedLinear> fused_linear(const std::vector<const Linear*>& members, ComputeType c);
  Tensor weight_;
  uint64_t version_ = 0;  // changes on every set_weight()
  mutable std::shared_ptr<PackedWeight> packed_;
  mutable std::shared_ptr<const FusedLinear> fused_;
  mutable std::mutex mu_;
};

// Linears that read the same input (q|k|v, gate|up) run as ONE GEMM on their weights stacked by
// rows: output columns [0, out_0) belong to members[0], the next out_1 to members[1], and so on.
// Each member keeps its own weight and name; the fused packed copy is shared by the members and
// is dropped when any member's weight is replaced (set_weight) or released (release_packed).
struct FusedLinear {
  std::shared_ptr<PackedWeight> packed;
  std::vector<float> bias;  // concatenated biases (zeros for members without one); empty if none
  ComputeType compute = ComputeType::F32;
  int64_t out = 0;          // sum of the members' out
};
// The fused product for `members` (built on first use, thread-safe), or null when they cannot be
// fused: fewer than two members, an input_transform on any member, or differing input sizes.
std::shared_ptr<const FusedLinear> fused_linear(const std::vector<const Linear*>& members, ComputeType c);

// y [rows, out] = transform(x) [rows, in] · Wᵀ + b  (accumulate: y += ...).
void linear_forward(const Linear& l, const float* x, int64_t rows, float* y, ComputeType c, bool accumulate = false);

}  // namespace calq
