// Tensor: a dense, row-major, contiguous array with a dtype and shape.
// A Tensor either owns a 64-byte aligned buffer or views memory kept alive by an `owner`
// (for example a memory-mapped safetensors file): copying a Tensor is cheap and shares
// the storage. Read-only storage (mmap) refuses mutable access.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace calq {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
// The coordinates of flat (row-major) index `flat` in shape s, as "[i, j, ...]".
std::string index_str(const Shape& s, int64_t flat);

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(DType dtype, Shape shape);
  static Tensor zeros(DType dtype, Shape shape);
  // Views `data` (not copied); `owner` keeps it alive. Read-only views refuse mutable access.
  static Tensor view_of(const void* data, DType dtype, Shape shape, std::shared_ptr<const void> owner,
                        bool readonly);
  // Float32 tensor copied from a vector.
  static Tensor from_f32(const std::vector<float>& v, Shape shape);

  bool defined() const { return data_ != nullptr || !shape_.empty(); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return int(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  bool readonly() const { return readonly_; }

  const void* raw() const { return data_; }
  void* raw_mut();
  template <class T>
  const T* data() const { return static_cast<const T*>(data_); }
  template <class T>
  T* data_mut() { return static_cast<T*>(raw_mut()); }
  const float* f32() const;  // checks dtype == F32
  float* f32_mut();

  // Same storage, new shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // Rows [begin, end) of the first dimension, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // Deep copy into a fresh owned buffer (writable).
  Tensor clone() const;
  // Converted copy (float dtypes); returns *this unchanged when already `dtype`.
  Tensor to(DType dtype) const;

 private:
  std::shared_ptr<const void> owner_;
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Shape shape_;
  bool readonly_ = false;
};

// A writable float32 copy (a fresh owned buffer) of any float tensor.
Tensor f32_copy(const Tensor& t);

// Flat index of the first NaN/±inf of a float tensor, or -1 (find_non_finite of dtype.h).
int64_t find_non_finite(const Tensor& t);
// "NaN at [3, 17] of BF16 [64, 256]": the value at flat index `flat` and where it is.
std::string describe_non_finite(const Tensor& t, int64_t flat);

}  // namespace calq
