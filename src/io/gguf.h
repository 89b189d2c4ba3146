// GGUF v3 (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), the llama.cpp container:
//   "GGUF" magic, u32 version, u64 tensor_count, u64 kv_count,
//   kv_count × {string key, u32 value_type, value},
//   tensor_count × {string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset},
//   zero padding to `general.alignment` (u32, default 32), then the tensor data; every offset is
//   relative to the start of the data section and a multiple of the alignment.
// Strings are u64 length + bytes; arrays are u32 element type + u64 count + elements.
// ne[0] is the fastest-varying dimension: a row-major [rows, cols] matrix is stored as ne = {cols, rows}.
//
// Reading memory-maps the file; every count, length, type, shape and offset of the (untrusted)
// header is checked against the file size before it is used; metadata arrays stay packed
// (io/gguf_value.h), so parsing takes time and memory linear in the file size. Writing goes through
// a temporary name and a rename, so a GGUF file that exists is complete.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/ggml_quants.h"
#include "io/gguf_value.h"
#include "io/mapped_file.h"
#include "tensor/tensor.h"
#include "util/progress.h"

namespace calq::gguf {

struct KV {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  ggml::Type type = ggml::Type::F32;
  std::vector<int64_t> ne;  // ggml order: ne[0] fastest
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;
  int64_t numel() const;
  // Row-major shape (numpy/torch order): ne reversed.
  Shape shape() const;
};

struct Header {
  uint32_t version = 3;
  std::vector<KV> kv;               // in file order
  std::vector<TensorInfo> tensors;  // in file order of their infos
  uint64_t alignment = 32;
  uint64_t data_start = 0;          // absolute offset of the data section
};

// Validates and parses a GGUF image of `size` bytes; `what` names the file in error messages.
// Throws FormatError (UnsupportedError for version 1/2 and big-endian files). libFuzzer entry point.
Header parse_header(const uint8_t* data, size_t size, const std::string& what);

class File {
 public:
  static std::shared_ptr<File> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const Header& header() const { return h_; }
  const std::vector<KV>& kv() const { return h_.kv; }
  const std::vector<TensorInfo>& tensors() const { return h_.tensors; }
  uint64_t alignment() const { return h_.alignment; }

  const Value* find(const std::string& key) const;
  const TensorInfo* find_tensor(const std::string& name) const;
  // Typed getters: FormatError "<path>: metadata 'key' ..." when missing or of an incompatible
  // type. Integers of any width convert when the value fits; f32/f64 convert to each other.
  uint64_t get_uint(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;

  // Raw bytes of a tensor inside the mapping.
  const uint8_t* tensor_data(const TensorInfo& t) const;
  // A read-only view of an F32, F16 or BF16 tensor in row-major shape (ne reversed), sharing the
  // mapping; UnsupportedError for other types.
  Tensor view(const TensorInfo& t) const;
  // Drops the tensor's resident pages (MappedFile::release); views stay valid.
  void release(const TensorInfo& t) const;
  // Dequantized float32 copy in row-major shape (ne reversed). Throws UnsupportedError for types
  // calq cannot dequantize.
  Tensor to_f32(const std::string& name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  Header h_;
};

// Builds a GGUF v3 file. Keys keep their insertion order (set() on an existing key replaces the
// value in place); tensors are written in the order they are added, each aligned. Tensor bytes
// are produced when the file is written, one tensor at a time, so a whole model never has to sit
// in memory twice.
class Writer {
 public:
  explicit Writer(uint32_t alignment = 32);
  void set(const std::string& key, Value v);
  const Value* find(const std::string& key) const;
  // A tensor from raw bytes already in `type` layout; `ne` in ggml order.
  void add_raw(const std::string& name, ggml::Type type, std::vector<int64_t> ne, std::string bytes);
  // A tensor whose bytes `make` returns at write time (it must return exactly the type's size).
  void add_lazy(const std::string& name, ggml::Type type, std::vector<int64_t> ne,
                std::function<std::string()> make);
  // A row-major float tensor (any float dtype), quantized row by row to `type` with ggml's
  // reference quantizers at write time. 1-D tensors are one row.
  void add(const std::string& name, const Tensor& t, ggml::Type type);
  size_t tensor_count() const { return tensors_.size(); }

  std::string to_bytes() const;
  // Writes through `path.tmp` + rename; `progress`: tensors written so far.
  void write(const std::string& path, const ProgressFn& progress = {}) const;

 private:
  struct Pending {
    TensorInfo info;
    std::function<std::string()> make;
  };
  std::string header_bytes() const;
  template <class Sink>
  void emit(Sink& sink, const ProgressFn& progress) const;
  uint32_t alignment_;
  std::vector<KV> kv_;
  std::vector<Pending> tensors_;
};

// Quantizes a row-major float tensor to `type` (rows = all leading dimensions) with the reference
// quantizers; the bytes GGUF stores for it.
std::string quantize_tensor(const Tensor& t, ggml::Type type);
// Dequantizes `bytes` of a tensor of `type` with row-major `shape` to float32.
Tensor dequantize_tensor(const uint8_t* bytes, ggml::Type type, const Shape& shape);

}  // namespace calq::gguf
