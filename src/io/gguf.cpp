#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "io/mapped_file.h"
#include "util/error.h"

namespace calq::gguf {

static_assert(std::endian::native == std::endian::little, "calq's GGUF io assumes a little-endian host");

namespace {

constexpr uint32_t kVersion = 3;
constexpr int kMaxDims = 4;                    // GGML_MAX_DIMS
constexpr size_t kMaxNameLen = 63;             // GGML_MAX_NAME (64) including the NUL, for writing
constexpr size_t kMaxReadNameLen = 1024;       // lenient when reading
constexpr size_t kMaxKeyLen = 65535;           // spec: keys are at most 2^16 - 1 bytes
constexpr int kMaxArrayDepth = 8;              // nested arrays (bounded recursion)
constexpr uint64_t kMaxArrayElements = 1ull << 24;  // total over the file
constexpr uint64_t kMaxNestedArrays = 1ull << 16;   // arrays inside arrays: a Value (160 bytes) each
constexpr uint64_t kMaxAlignment = 1ull << 24;
// Metadata entries: a KV takes 192 bytes for as few as 14 bytes of file, so their number is
// capped (llama.cpp files have tens); found by fuzz_gguf with -max_len=17000000 -malloc_limit_mb=64,
// where an 11 MB file claiming ~390k entries reserved 72 MB before reading one.
constexpr uint64_t kMaxKV = 1ull << 16;
constexpr uint64_t kTensorReserve = 4096;  // tensor infos are reserved up to this, then grow as read

bool valid_value_type(uint32_t t) { return t <= uint32_t(ValueType::F64); }

// Bounds-checked little-endian reader over the file image. A field's name is composed (field +
// suffix) only when an error is reported, so reading a million-element array allocates nothing
// per element.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t size, const std::string& what) : p_(p), size_(size), what_(what) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& field, const char* suffix = "") const {
    if (n > left())
      throw FormatError(what_ + ": truncated: " + field + suffix + " needs " + std::to_string(n) + " bytes at offset " +
                        std::to_string(pos_) + ", file has " + std::to_string(size_));
  }
  template <class T>
  T read(const std::string& field, const char* suffix = "") {
    need(sizeof(T), field, suffix);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  // The next n bytes, inside the mapping.
  std::string_view bytes(uint64_t n, const std::string& field) {
    need(n, field);
    const std::string_view s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }
  std::string_view str_view(const std::string& field, uint64_t max_len) {
    const uint64_t n = read<uint64_t>(field, " length");
    if (n > max_len)
      throw FormatError(what_ + ": " + field + " length " + std::to_string(n) + " exceeds the limit of " +
                        std::to_string(max_len));
    return bytes(n, field);
  }
  std::string str(const std::string& field, uint64_t max_len) { return std::string(str_view(field, max_len)); }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& what_;
};

struct ParseState {
  uint64_t array_elements = 0;
  uint64_t nested_arrays = 0;
};

Value read_value(Cursor& c, ValueType t, const std::string& at, ParseState& st, int depth);

// Arrays stay packed (io/gguf_value.h): fixed-size elements are copied as one block, string
// elements into one buffer; only arrays of arrays (which llama.cpp does not read) hold a Value per
// element, and there are at most kMaxNestedArrays of those.
Value read_array(Cursor& c, ValueType elem, uint64_t n, const std::string& at, ParseState& st, int depth) {
  if (const size_t es = scalar_size(elem)) {
    const std::string_view raw = c.bytes(n * es, at);  // n * es <= the bytes left: checked by the caller
    if (elem == ValueType::BOOL)
      for (size_t k = 0; k < raw.size(); ++k)
        if (uint8_t(raw[k]) > 1)
          throw FormatError(at + ": bool element " + std::to_string(k) + " = " + std::to_string(uint8_t(raw[k])) +
                            " is neither 0 nor 1");
    return Value::packed_array(elem, std::string(raw));
  }
  if (elem == ValueType::ARRAY && (st.nested_arrays += n) > kMaxNestedArrays)
    throw FormatError(at + ": more than " + std::to_string(kMaxNestedArrays) + " arrays inside arrays in the metadata");
  Value v = Value::empty_array(elem, size_t(n));
  if (elem == ValueType::STRING) {
    for (uint64_t k = 0; k < n; ++k) v.append_string(c.str_view(at, c.left()));
    return v;
  }
  for (uint64_t k = 0; k < n; ++k) v.append(read_value(c, elem, at, st, depth + 1));
  return v;
}

Value read_value(Cursor& c, ValueType t, const std::string& at, ParseState& st, int depth) {
  Value v;
  v.type = t;
  switch (t) {
    case ValueType::U8: v.u = c.read<uint8_t>(at); break;
    case ValueType::U16: v.u = c.read<uint16_t>(at); break;
    case ValueType::U32: v.u = c.read<uint32_t>(at); break;
    case ValueType::U64: v.u = c.read<uint64_t>(at); break;
    case ValueType::I8: v.i = c.read<int8_t>(at); break;
    case ValueType::I16: v.i = c.read<int16_t>(at); break;
    case ValueType::I32: v.i = c.read<int32_t>(at); break;
    case ValueType::I64: v.i = c.read<int64_t>(at); break;
    case ValueType::F32: v.f = c.read<float>(at); break;
    case ValueType::F64: v.f = c.read<double>(at); break;
    case ValueType::BOOL: {
      const uint8_t b = c.read<uint8_t>(at);
      if (b > 1) throw FormatError(at + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.b = b != 0;
      break;
    }
    case ValueType::STRING: v.s = c.str(at, c.left()); break;
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) throw FormatError(at + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      const uint32_t et = c.read<uint32_t>(at, " element type");
      if (!valid_value_type(et)) throw FormatError(at + ": unknown array element type " + std::to_string(et));
      const ValueType elem = ValueType(et);
      const uint64_t n = c.read<uint64_t>(at, " element count");
      const uint64_t min_size = elem == ValueType::STRING ? 8 : elem == ValueType::ARRAY ? 12 : scalar_size(elem);
      if (n > c.left() / min_size)
        throw FormatError(at + ": array of " + std::to_string(n) + " elements does not fit in the " +
                          std::to_string(c.left()) + " bytes left in the file");
      st.array_elements += n;
      if (st.array_elements > kMaxArrayElements)
        throw FormatError(at + ": more than " + std::to_string(kMaxArrayElements) + " array elements in the metadata");
      return read_array(c, elem, n, at, st, depth);
    }
  }
  return v;
}

uint64_t align_up(uint64_t x, uint64_t a) { return x + (a - x % a) % a; }

// --- serialization -----------------------------------------------------------------------------

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_str(std::string& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_value(std::string& out, const Value& v) {
  switch (v.type) {
    case ValueType::U8: put<uint8_t>(out, uint8_t(v.u)); break;
    case ValueType::U16: put<uint16_t>(out, uint16_t(v.u)); break;
    case ValueType::U32: put<uint32_t>(out, uint32_t(v.u)); break;
    case ValueType::U64: put<uint64_t>(out, v.u); break;
    case ValueType::I8: put<int8_t>(out, int8_t(v.i)); break;
    case ValueType::I16: put<int16_t>(out, int16_t(v.i)); break;
    case ValueType::I32: put<int32_t>(out, int32_t(v.i)); break;
    case ValueType::I64: put<int64_t>(out, v.i); break;
    case ValueType::F32: put<float>(out, float(v.f)); break;
    case ValueType::F64: put<double>(out, v.f); break;
    case ValueType::BOOL: put<uint8_t>(out, v.b ? 1 : 0); break;
    case ValueType::STRING: put_str(out, v.s); break;
    case ValueType::ARRAY:  // element types were checked when the array was built
      put<uint32_t>(out, uint32_t(v.elem));
      put<uint64_t>(out, v.size());
      if (v.elem == ValueType::STRING) {
        for (size_t k = 0; k < v.size(); ++k) put_str(out, v.str_at(k));
      } else if (v.elem == ValueType::ARRAY) {
        for (size_t k = 0; k < v.size(); ++k) put_value(out, v.at(k));
      } else {
        out += v.packed();
      }
      break;
  }
}

std::vector<int64_t> reversed(const Shape& s) { return std::vector<int64_t>(s.rbegin(), s.rend()); }

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}
Shape TensorInfo::shape() const { return Shape(ne.rbegin(), ne.rend()); }

// ---- parsing ----------------------------------------------------------------------------------

Header parse_header(const uint8_t* data, size_t size, const std::string& what) {
  Cursor c(data, size, what);
  c.need(4, "magic");
  if (std::memcmp(data, "GGUF", 4) != 0) throw FormatError(what + ": not a GGUF file (bad magic)");
  c.read<uint32_t>("magic");
  Header h;
  h.version = c.read<uint32_t>("version");
  if (h.version == 1) throw UnsupportedError(what + ": GGUF version 1 (32-bit lengths) is not supported; re-convert with a current llama.cpp");
  if (h.version != 2 && h.version != 3) {
    const uint32_t swapped = __builtin_bswap32(h.version);
    if (swapped == 2 || swapped == 3) throw UnsupportedError(what + ": big-endian GGUF files are not supported");
    throw FormatError(what + ": unknown GGUF version " + std::to_string(h.version));
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each entry takes at least 12 (kv) / 24 (tensor info) bytes: reject absurd counts before allocating.
  if (n_kv > c.left() / 12) throw FormatError(what + ": metadata count " + std::to_string(n_kv) + " exceeds the file size");
  if (n_tensors > c.left() / 24) throw FormatError(what + ": tensor count " + std::to_string(n_tensors) + " exceeds the file size");
  if (n_kv > kMaxKV)
    throw FormatError(what + ": metadata count " + std::to_string(n_kv) + " exceeds the limit of " + std::to_string(kMaxKV));

  ParseState st;
  std::set<std::string> keys;
  h.kv.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    KV kv;
    kv.key = c.str("metadata key #" + std::to_string(k), kMaxKeyLen);
    if (kv.key.empty()) throw FormatError(what + ": metadata key #" + std::to_string(k) + " is empty");
    if (!keys.insert(kv.key).second) throw FormatError(what + ": duplicate metadata key '" + kv.key + "'");
    const std::string at = what + ": metadata '" + kv.key + "'";
    const uint32_t t = c.read<uint32_t>(at + " type");
    if (!valid_value_type(t)) throw FormatError(at + ": unknown value type " + std::to_string(t));
    kv.value = read_value(c, ValueType(t), at, st, 0);
    if (kv.key == "general.alignment") {
      if (kv.value.type != ValueType::U32) throw FormatError(at + ": must be u32, not " + value_type_name(kv.value.type));
      const uint64_t a = kv.value.u;
      if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment)
        throw FormatError(at + ": alignment " + std::to_string(a) + " is not a power of two up to 2^24");
      h.alignment = a;
    }
    h.kv.push_back(std::move(kv));
  }

  std::set<std::string> names;
  h.tensors.reserve(size_t(std::min(n_tensors, kTensorReserve)));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    ti.name = c.str("tensor name #" + std::to_string(k), kMaxReadNameLen);
    const std::string at = what + ": tensor '" + ti.name + "'";
    if (ti.name.empty()) throw FormatError(what + ": tensor #" + std::to_string(k) + " has an empty name");
    if (!names.insert(ti.name).second) throw FormatError(what + ": duplicate tensor name '" + ti.name + "'");
    const uint32_t nd = c.read<uint32_t>(at + " n_dims");
    if (nd > kMaxDims) throw FormatError(at + ": " + std::to_string(nd) + " dimensions (at most 4)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t v = c.read<uint64_t>(at + " dimension");
      if (v > uint64_t(INT64_MAX)) throw FormatError(at + ": dimension " + std::to_string(v) + " is too large");
      if (v != 0 && numel > uint64_t(INT64_MAX) / v) throw FormatError(at + ": element count overflows");
      numel *= v;
      ti.ne.push_back(int64_t(v));
    }
    const uint32_t type = c.read<uint32_t>(at + " type");
    const ggml::TypeTraits tr = ggml::type_traits(type);
    if (!tr.name) throw FormatError(at + ": unknown ggml type " + std::to_string(type));
    ti.type = ggml::Type(type);
    const int64_t ne0 = ti.ne.empty() ? 1 : ti.ne[0];
    if (ne0 % tr.block_size != 0)
      throw FormatError(at + ": row length " + std::to_string(ne0) + " is not a multiple of the " + tr.name +
                        " block size " + std::to_string(tr.block_size));
    const uint64_t blocks = numel / uint64_t(tr.block_size);
    if (blocks > UINT64_MAX / tr.type_size) throw FormatError(at + ": byte size overflows");
    ti.nbytes = blocks * tr.type_size;
    ti.offset = c.read<uint64_t>(at + " offset");
    if (ti.offset % h.alignment != 0)
      throw FormatError(at + ": offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " +
                        std::to_string(h.alignment));
    h.tensors.push_back(std::move(ti));
  }

  h.data_start = align_up(c.pos(), h.alignment);
  const uint64_t data_size = h.data_start <= size ? size - h.data_start : 0;
  for (const auto& ti : h.tensors) {
    // Empty tensors too: an offset past the end would make their data pointer meaningless.
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset || (ti.nbytes && h.data_start > size))
      throw FormatError(what + ": tensor '" + ti.name + "' (" + std::to_string(ti.nbytes) + " bytes at data offset " +
                        std::to_string(ti.offset) + ") extends beyond the end of the file (" + std::to_string(size) +
                        " bytes; truncated?)");
  }
  std::vector<const TensorInfo*> by_off;
  for (const auto& ti : h.tensors)
    if (ti.nbytes) by_off.push_back(&ti);
  std::sort(by_off.begin(), by_off.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_off.size(); ++k)
    if (by_off[k]->offset < by_off[k - 1]->offset + by_off[k - 1]->nbytes)
      throw FormatError(what + ": tensors '" + by_off[k - 1]->name + "' and '" + by_off[k]->name + "' overlap");
  return h;
}

// ---- File -------------------------------------------------------------------------------------

std::shared_ptr<File> File::open(const std::string& path) {
  auto f = std::shared_ptr<File>(new File());
  f->file_ = MappedFile::open(path);
  f->h_ = parse_header(f->file_->data(), f->file_->size(), path);
  return f;
}

const Value* File::find(const std::string& key) const {
  for (const auto& kv : h_.kv)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  for (const auto& t : h_.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {
const Value& need_kv(const File& f, const std::string& key) {
  const Value* v = f.find(key);
  if (!v) throw FormatError(f.path() + ": missing metadata '" + key + "'");
  return *v;
}
[[noreturn]] void bad_type(const File& f, const std::string& key, const Value& v, const char* want) {
  throw FormatError(f.path() + ": metadata '" + key + "' is " + value_type_name(v.type) + ", expected " + want);
}
}  // namespace

uint64_t File::get_uint(const std::string& key) const {
  const Value& v = need_kv(*this, key);
  if (!v.is_integer()) bad_type(*this, key, v, "an integer");
  const bool is_signed = v.type == ValueType::I8 || v.type == ValueType::I16 || v.type == ValueType::I32 || v.type == ValueType::I64;
  if (is_signed) {
    if (v.i < 0) throw FormatError(path() + ": metadata '" + key + "' is negative (" + std::to_string(v.i) + ")");
    return uint64_t(v.i);
  }
  return v.u;
}

int64_t File::get_int(const std::string& key) const {
  const Value& v = need_kv(*this, key);
  if (!v.is_integer()) bad_type(*this, key, v, "an integer");
  const bool is_signed = v.type == ValueType::I8 || v.type == ValueType::I16 || v.type == ValueType::I32 || v.type == ValueType::I64;
  if (is_signed) return v.i;
  if (v.u > uint64_t(INT64_MAX)) throw FormatError(path() + ": metadata '" + key + "' is too large");
  return int64_t(v.u);
}

double File::get_float(const std::string& key) const {
  const Value& v = need_kv(*this, key);
  if (v.is_float()) return v.f;
  if (v.is_integer()) return double(get_int(key));
  bad_type(*this, key, v, "a number");
}

bool File::get_bool(const std::string& key) const {
  const Value& v = need_kv(*this, key);
  if (v.type != ValueType::BOOL) bad_type(*this, key, v, "a bool");
  return v.b;
}

std::string File::get_string(const std::string& key) const {
  const Value& v = need_kv(*this, key);
  if (v.type != ValueType::STRING) bad_type(*this, key, v, "a string");
  return v.s;
}

std::vector<std::string> File::get_string_array(const std::string& key) const {
  const Value& v = need_kv(*this, key);
  if (v.type != ValueType::ARRAY || v.elem != ValueType::STRING) bad_type(*this, key, v, "an array of strings");
  std::vector<std::string> r;
  r.reserve(v.size());
  for (size_t k = 0; k < v.size(); ++k) r.emplace_back(v.str_at(k));
  return r;
}

const uint8_t* File::tensor_data(const TensorInfo& t) const {
  if (t.nbytes == 0) return file_->data();  // data_start may lie past the end of a file without data
  return file_->data() + h_.data_start + t.offset;
}

Tensor File::view(const TensorInfo& t) const {
  DType d;
  switch (t.type) {
    case ggml::Type::F32: d = DType::F32; break;
    case ggml::Type::F16: d = DType::F16; break;
    case ggml::Type::BF16: d = DType::BF16; break;
    default: throw UnsupportedError(path() + ": tensor '" + t.name + "' of type " + ggml::type_name(t.type) + " is not a float tensor");
  }
  const uint8_t* p = tensor_data(t);
  Tensor v = Tensor::view_of(p, d, t.shape(), file_, /*readonly=*/true);
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(d) != 0) return v.clone();
  return v;
}

void File::release(const TensorInfo& t) const { file_->release(tensor_data(t), t.nbytes); }

Tensor File::to_f32(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw FormatError(path() + ": missing tensor '" + name + "'");
  if (!ggml::can_dequantize(t->type))
    throw UnsupportedError(path() + ": tensor '" + name + "' has type " + ggml::type_name(t->type) +
                           ", which calq cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)");
  return dequantize_tensor(tensor_data(*t), t->type, t->shape());
}

// ---- tensor conversion ------------------------------------------------------------------------

std::string quantize_tensor(const Tensor& t, ggml::Type type) {
  const int64_t cols = t.ndim() == 0 ? 1 : t.dim(-1);
  const int64_t rows = cols ? t.numel() / cols : 0;
  const size_t rs = ggml::row_size(type, cols);
  std::string out(size_t(rows) * rs, '\0');
  std::vector<float> row(static_cast<size_t>(cols));
  const size_t esize = dtype_size(t.dtype());
  if (!is_float_dtype(t.dtype())) throw ArgError(std::string("cannot quantize a tensor of dtype ") + dtype_name(t.dtype()));
  for (int64_t r = 0; r < rows; ++r) {
    convert_to_f32(static_cast<const uint8_t*>(t.raw()) + size_t(r * cols) * esize, t.dtype(), row.data(), size_t(cols));
    ggml::quantize_row(type, row.data(), out.data() + size_t(r) * rs, cols);
  }
  return out;
}

Tensor dequantize_tensor(const uint8_t* bytes, ggml::Type type, const Shape& shape) {
  Tensor out = Tensor::empty(DType::F32, shape);
  const int64_t cols = shape.empty() ? 1 : shape.back();
  const int64_t rows = cols ? out.numel() / cols : 0;
  const size_t rs = ggml::row_size(type, cols);
  float* y = out.f32_mut();
  for (int64_t r = 0; r < rows; ++r) ggml::dequantize_row(type, bytes + size_t(r) * rs, y + r * cols, cols);
  return out;
}

// ---- Writer -----------------------------------------------------------------------------------

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment % 8 != 0)
    throw ArgError("GGUF alignment must be a power of two and a multiple of 8");
  if (alignment != 32) set("general.alignment", Value::u32(alignment));
}

void Writer::set(const std::string& key, Value v) {
  if (key.empty() || key.size() > kMaxKeyLen) throw ArgError("invalid GGUF metadata key '" + key + "'");
  if (key == "general.alignment" && (v.type != ValueType::U32 || v.u != alignment_))
    throw ArgError("general.alignment is set by the Writer's constructor");
  for (auto& kv : kv_)
    if (kv.key == key) {
      kv.value = std::move(v);
      return;
    }
  kv_.push_back({key, std::move(v)});
}

const Value* Writer::find(const std::string& key) const {
  for (const auto& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

void Writer::add_lazy(const std::string& name, ggml::Type type, std::vector<int64_t> ne,
                      std::function<std::string()> make) {
  if (name.empty() || name.size() > kMaxNameLen)
    throw ArgError("GGUF tensor name '" + name + "' must have 1 to 63 bytes (ggml's GGML_MAX_NAME)");
  for (const auto& p : tensors_)
    if (p.info.name == name) throw ArgError("GGUF writer: duplicate tensor name '" + name + "'");
  if (ne.empty() || ne.size() > size_t(kMaxDims)) throw ArgError("GGUF tensor '" + name + "': 1 to 4 dimensions");
  TensorInfo ti;
  ti.name = name;
  ti.type = type;
  ti.ne = std::move(ne);
  try {
    ti.nbytes = ggml::row_size(type, ti.ne[0]) * uint64_t(ti.numel() / std::max<int64_t>(ti.ne[0], 1));
  } catch (const Error& e) {
    throw ArgError("GGUF tensor '" + name + "': " + e.what());
  }
  if (ti.ne[0] == 0) ti.nbytes = 0;
  tensors_.push_back({std::move(ti), std::move(make)});
}

void Writer::add_raw(const std::string& name, ggml::Type type, std::vector<int64_t> ne, std::string bytes) {
  auto shared = std::make_shared<std::string>(std::move(bytes));
  add_lazy(name, type, std::move(ne), [shared] { return *shared; });
}

void Writer::add(const std::string& name, const Tensor& t, ggml::Type type) {
  std::vector<int64_t> ne = t.ndim() == 0 ? std::vector<int64_t>{1} : reversed(t.shape());
  add_lazy(name, type, std::move(ne), [t, type] { return quantize_tensor(t, type); });
}

std::string Writer::header_bytes() const {
  std::string out = "GGUF";
  put<uint32_t>(out, kVersion);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_.size());
  for (const auto& kv : kv_) {
    put_str(out, kv.key);
    put<uint32_t>(out, uint32_t(kv.value.type));
    put_value(out, kv.value);
  }
  uint64_t off = 0;
  for (const auto& p : tensors_) {
    put_str(out, p.info.name);
    put<uint32_t>(out, uint32_t(p.info.ne.size()));
    for (int64_t d : p.info.ne) put<uint64_t>(out, uint64_t(d));
    put<uint32_t>(out, uint32_t(p.info.type));
    put<uint64_t>(out, off);
    off = align_up(off + p.info.nbytes, alignment_);
  }
  out.append(size_t(align_up(out.size(), alignment_) - out.size()), '\0');
  return out;
}

template <class Sink>
void Writer::emit(Sink& sink, const ProgressFn& progress) const {
  const std::string hdr = header_bytes();
  sink(hdr.data(), hdr.size());
  int64_t done = 0;
  const std::string pad(alignment_, '\0');
  for (const auto& p : tensors_) {
    const std::string bytes = p.make();
    if (bytes.size() != p.info.nbytes)
      throw ArgError("GGUF tensor '" + p.info.name + "': produced " + std::to_string(bytes.size()) + " bytes, its " +
                     ggml::type_name(p.info.type) + " shape needs " + std::to_string(p.info.nbytes));
    sink(bytes.data(), bytes.size());
    sink(pad.data(), size_t(align_up(bytes.size(), alignment_) - bytes.size()));
    report_progress(progress, ++done, int64_t(tensors_.size()), "tensors");
  }
  report_progress(progress, done, int64_t(tensors_.size()), "tensors", "", true);
}

std::string Writer::to_bytes() const {
  std::string out;
  auto sink = [&](const char* p, size_t n) { out.append(p, n); };
  emit(sink, {});
  return out;
}

void Writer::write(const std::string& path, const ProgressFn& progress) const {
  AtomicFile f(path);
  auto sink = [&](const char* p, size_t n) { f.write(p, n); };
  emit(sink, progress);
  f.commit();
}

}  // namespace calq::gguf
