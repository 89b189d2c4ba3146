// safetensors (https://huggingface.co/docs/safetensors): 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Reading memory-maps the file; every offset, shape and
// dtype in the (untrusted) header is checked against the file before any byte is touched.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "tensor/tensor.h"
#include "util/progress.h"

namespace calq {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the start of the data section
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in file order of their data
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // absolute offset of the data section
};

// Validates and parses the header of a safetensors image of `size` bytes. `what` names the file
// in error messages. Throws FormatError. (This is the libFuzzer entry point.)
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what);

class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(const std::string& name) const;
  // A read-only view into the mapping (copied only when misaligned for its dtype).
  Tensor get(const std::string& name) const;
  // Drops the tensor's resident pages (MappedFile::release); views stay valid.
  void release(const std::string& name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

// Collects tensors and writes one safetensors file atomically (temp name, then rename).
// Tensors are either given (add) or produced one at a time while the file is written (add_lazy:
// dtype and shape declared up front, so huge files never sit in memory twice).
class SafetensorsWriter {
 public:
  using Producer = std::function<Tensor()>;
  void add(const std::string& name, const Tensor& t);
  void add_lazy(const std::string& name, DType dtype, Shape shape, Producer make);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  // `progress`: MiB written so far.
  void write(const std::string& path, const ProgressFn& progress = {}) const;
  // The file image as bytes (small files and tests).
  std::string to_bytes() const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    Tensor tensor;  // given, or
    Producer make;  // produced at write time
    size_t bytes() const { return size_t(shape_numel(shape)) * dtype_size(dtype); }
  };
  std::string header_json() const;
  // Calls `sink(data, n)` with the whole file image, in order.
  void emit(const std::function<void(const void*, size_t)>& sink, const ProgressFn& progress) const;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace calq
