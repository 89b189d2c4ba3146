// A linear layer as the decoder runs it: y = x Wᵀ + b. W is either a float tensor (viewed from the
// checkpoint, any float dtype, until a method replaces it) with a lazily built packed copy for the
// GEMM, or a quantized weight that runs as what it is (kernels/qgemm.h: GPTQ/AWQ/qstate codes, GGUF
// blocks, W8A8) and is dequantized only when a caller asks for the float weight.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/qgemm.h"
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

  // W [out, in]: the float tensor as stored, or for a quantized layer its exact dequantization
  // (float32, computed on each call), or the float tensor fetched again from its source after
  // drop_float_weight().
  Tensor weight() const;
  // Replaces W ([out, in], any float dtype) and drops the packed and quantized copies.
  void set_weight(Tensor w);
  // W as float32 (a view when already F32, else a converted copy).
  Tensor weight_f32() const;
  // Installs a quantized weight ([out, in]) that runs as it is; drops the float weight.
  void set_quantized(std::shared_ptr<QuantPackedWeight> w);
  // The quantized weight, or null for a float layer.
  std::shared_ptr<const QuantPackedWeight> quantized() const;
  // Where the float weight can be fetched again (e.g. a view into the mapped checkpoint), so that
  // drop_float_weight() loses nothing.
  void set_weight_source(std::function<Tensor()> fetch);
  // Forgets the float tensor once a packed copy exists (the packed copy is what runs; weight()
  // fetches it again from the source). False when there is no source or no packed copy.
  bool drop_float_weight();
  // Packed copy for `c`, built on first use (thread-safe). Quantized layers: the quantized weight,
  // run with compute type `c`.
  const PackedWeight& packed(ComputeType c) const;
  // Bytes of the weight copies this layer holds in memory (packed, quantized, owned float tensors;
  // not mapped views, not a fused copy: fused()).
  size_t resident_bytes() const;
  // The fused product this layer is part of now, if built (fused_linear builds it).
  std::shared_ptr<const FusedLinear> fused() const;
  // Drops the packed copy and any fused copy this layer is part of (e.g. to save memory after a
  // layer has been processed). A quantized weight stays: it is the layer's weight.
  void release_packed() const;

 private:
  friend std::shared_ptr<const FusedLinear> fused_linear(const std::vector<const Linear*>& members, ComputeType c);
  friend std::shared_ptr<const FusedLinear> fused_quantized_stack(const std::vector<const Linear*>& members, ComputeType c);
  static uint64_t next_version();
  Tensor weight_;
  std::function<Tensor()> fetch_;  // the float weight again, when weight_ was dropped
  // mutable: fused_linear may swap it for a view into a stacked copy of the same codes (the same
  // weight, logically const).
  mutable std::shared_ptr<QuantPackedWeight> quant_;
  uint64_t version_ = 0;  // changes on every set_weight()
  mutable std::shared_ptr<PackedWeight> packed_;
  mutable std::shared_ptr<const FusedLinear> fused_;
  mutable std::mutex mu_;
};

// Linears that read the same input (q|k|v, gate|up) run as ONE GEMM on their weights stacked by
// rows: output columns [0, out_0) belong to members[0], the next out_1 to members[1], and so on.
// Each member keeps its own name and weight; the fused copy is shared by the members and is
// dropped when any member's weight is replaced (set_weight) or released (release_packed).
//  * Float members: a packed copy of the stacked float weights (the members keep theirs).
//  * Quantized members (kernels/qgemm.h stack_quantized): the stacked codes are the ONLY copy;
//    each member's quantized() becomes a view into them (same results, bitwise), so fusing costs
//    no memory. The stacked product equals the members' products bitwise.
struct FusedLinear {
  std::shared_ptr<PackedWeight> packed;
  std::vector<float> bias;  // concatenated biases (zeros for members without one); empty if none
  ComputeType compute = ComputeType::F32;
  int64_t out = 0;          // sum of the members' out
  size_t own_bytes = 0;     // bytes held beyond the members' resident_bytes() (float: the copy)
};
// The fused product for `members` (built on first use, thread-safe), or null when they cannot be
// fused: fewer than two members, an input_transform on any member, differing input sizes, float
// and quantized members mixed, or quantized weights that do not stack (stack_quantized).
// A quantized member's weight object is replaced by its view when the stack is built: a caller
// must not hold a reference from packed() of a member across the first fused_linear call
// (Decoder::pack_weights builds the stacks at load).
std::shared_ptr<const FusedLinear> fused_linear(const std::vector<const Linear*>& members, ComputeType c);
// fused_linear for quantized members only (null for float ones): where a float model gains
// nothing from a stacked copy (gate|up, whose float path fuses through the GEMM epilogue).
std::shared_ptr<const FusedLinear> fused_quantized_linear(const std::vector<const Linear*>& members, ComputeType c);

// y [rows, out] = transform(x) [rows, in] · Wᵀ + b  (accumulate: y += ...).
void linear_forward(const Linear& l, const float* x, int64_t rows, float* y, ComputeType c, bool accumulate = false);

}  // namespace calq
