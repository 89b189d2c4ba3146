#include "tensor/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "util/error.h"

namespace calq {

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string index_str(const Shape& s, int64_t flat) {
  Shape idx(s.size());
  for (size_t k = s.size(); k-- > 0;) {
    const int64_t d = std::max<int64_t>(s[k], 1);
    idx[k] = flat % d;
    flat /= d;
  }
  return shape_str(idx);
}

int64_t find_non_finite(const Tensor& t) {
  return is_float_dtype(t.dtype()) ? find_non_finite(t.raw(), t.dtype(), size_t(t.numel())) : -1;
}

std::string describe_non_finite(const Tensor& t, int64_t flat) {
  return std::string(non_finite_kind(t.raw(), t.dtype(), size_t(flat))) + " at " + index_str(t.shape(), flat) +
         " of " + dtype_name(t.dtype()) + " " + shape_str(t.shape());
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  for (int64_t d : shape)
    if (d < 0) throw ArgError("negative dimension in shape " + shape_str(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  const size_t bytes = (t.nbytes() + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes ? bytes : 64);
  if (!p) throw Error("out of memory allocating tensor of shape " + shape_str(t.shape_));
  t.owner_ = std::shared_ptr<void>(p, std::free);
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::view_of(const void* data, DType dtype, Shape shape, std::shared_ptr<const void> owner,
                       bool readonly) {
  Tensor t;
  t.owner_ = std::move(owner);
  t.data_ = const_cast<void*>(data);
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.readonly_ = readonly;
  return t;
}

Tensor Tensor::from_f32(const std::vector<float>& v, Shape shape) {
  if (shape_numel(shape) != int64_t(v.size()))
    throw ArgError("from_f32: " + std::to_string(v.size()) + " values do not fill shape " + shape_str(shape));
  Tensor t = empty(DType::F32, std::move(shape));
  std::memcpy(t.data_, v.data(), v.size() * 4);
  return t;
}

void* Tensor::raw_mut() {
  if (readonly_) throw Error("tensor storage is read-only (memory-mapped); clone() it first");
  return data_;
}

const float* Tensor::f32() const {
  if (dtype_ != DType::F32) throw ArgError(std::string("expected an F32 tensor, got ") + dtype_name(dtype_));
  return static_cast<const float*>(data_);
}

float* Tensor::f32_mut() {
  if (dtype_ != DType::F32) throw ArgError(std::string("expected an F32 tensor, got ") + dtype_name(dtype_));
  return static_cast<float*>(raw_mut());
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel())
    throw ArgError("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  if (shape_.empty() || begin < 0 || end < begin || end > shape_[0])
    throw ArgError("slice_rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of range for " +
                   shape_str(shape_));
  const size_t row_bytes = shape_[0] ? nbytes() / size_t(shape_[0]) : 0;
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + size_t(begin) * row_bytes;
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(dtype, shape_);
  if (dtype == DType::F32) {
    convert_to_f32(data_, dtype_, static_cast<float*>(t.data_), size_t(numel()));
  } else if (dtype_ == DType::F32) {
    convert_from_f32(static_cast<const float*>(data_), dtype, t.data_, size_t(numel()));
  } else {
    return to(DType::F32).to(dtype);
  }
  return t;
}

Tensor f32_copy(const Tensor& t) { return t.dtype() == DType::F32 ? t.clone() : t.to(DType::F32).clone(); }

}  // namespace calq
