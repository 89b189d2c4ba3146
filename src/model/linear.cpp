#include "model/linear.h"

#include <cstring>
#include <vector>

#include "util/error.h"

namespace calq {

void Linear::set_weight(Tensor w) {
  if (w.ndim() != 2 || w.dim(0) != out || w.dim(1) != in)
    throw ArgError(name + ": weight shape " + shape_str(w.shape()) + " does not match [" + std::to_string(out) +
                   ", " + std::to_string(in) + "]");
  if (!is_float_dtype(w.dtype())) throw ArgError(name + ": weight must have a float dtype");
  std::lock_guard<std::mutex> lock(mu_);
  weight_ = std::move(w);
  packed_.reset();
}

Tensor Linear::weight_f32() const { return weight_.to(DType::F32); }

const PackedWeight& Linear::packed(ComputeType c) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!packed_ || packed_->compute() != c) {
    const Tensor w = weight_.to(DType::F32);
    packed_ = pack_weight(w.f32(), out, in, c);
  }
  return *packed_;
}

void Linear::release_packed() const {
  std::lock_guard<std::mutex> lock(mu_);
  packed_.reset();
}

void linear_forward(const Linear& l, const float* x, int64_t rows, float* y, ComputeType c) {
  const float* b = l.bias.defined() ? l.bias.f32() : nullptr;
  if (l.input_transform) {
    std::vector<float> xt(x, x + rows * l.in);
    l.input_transform->apply(xt.data(), rows, l.in);
    gemm_packed(xt.data(), rows, l.packed(c), b, y);
  } else {
    gemm_packed(x, rows, l.packed(c), b, y);
  }
}

}  // namespace calq
