#include "io/gguf_value.h"

#include <bit>
#include <cstring>

#include "util/error.h"

namespace calq::gguf {

static_assert(std::endian::native == std::endian::little, "packed GGUF arrays are little-endian");

const char* value_type_name(ValueType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(t) <= 12 ? names[uint32_t(t)] : "unknown";
}

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

namespace {

template <class T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
void store(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  std::string out(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

[[noreturn]] void mismatch(ValueType elem, ValueType got) {
  throw ArgError(std::string("GGUF array of ") + value_type_name(elem) + " cannot hold a " + value_type_name(got));
}

}  // namespace

// ---- scalars ------------------------------------------------------------------------------------

Value Value::uint_of(ValueType t, uint64_t v) {
  Value r;
  r.type = t;
  r.u = v;
  return r;
}
Value Value::int_of(ValueType t, int64_t v) {
  Value r;
  r.type = t;
  r.i = v;
  return r;
}
Value Value::f32(float v) {
  Value r;
  r.type = ValueType::F32;
  r.f = v;
  return r;
}
Value Value::f64(double v) {
  Value r;
  r.type = ValueType::F64;
  r.f = v;
  return r;
}
Value Value::boolean(bool v) {
  Value r;
  r.type = ValueType::BOOL;
  r.b = v;
  return r;
}
Value Value::str(std::string v) {
  Value r;
  r.type = ValueType::STRING;
  r.s = std::move(v);
  return r;
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::U8: case ValueType::U16: case ValueType::U32: case ValueType::U64:
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64:
      return true;
    default:
      return false;
  }
}

// ---- arrays -------------------------------------------------------------------------------------

Value Value::empty_array(ValueType elem, size_t expected) {
  if (uint32_t(elem) > uint32_t(ValueType::F64)) throw ArgError("unknown GGUF array element type");
  Value r;
  r.type = ValueType::ARRAY;
  r.elem = elem;
  if (elem == ValueType::STRING) r.ends_.reserve(expected);
  if (elem == ValueType::ARRAY) r.items_.reserve(expected);
  return r;
}

Value Value::packed_array(ValueType elem, std::string bytes) {
  const size_t es = scalar_size(elem);
  if (es == 0) throw ArgError(std::string("packed GGUF array of ") + value_type_name(elem));
  if (bytes.size() % es != 0) throw ArgError("packed GGUF array: size is not a multiple of the element size");
  if (elem == ValueType::BOOL)
    for (char c : bytes)
      if (c != 0 && c != 1) throw ArgError("packed GGUF bool array: a value is neither 0 nor 1");
  Value r = empty_array(elem);
  r.bytes_ = std::move(bytes);
  return r;
}

void Value::append(Value item) {
  if (type != ValueType::ARRAY) throw ArgError("GGUF: append to a value that is not an array");
  if (item.type != elem) mismatch(elem, item.type);
  switch (elem) {
    case ValueType::U8: store<uint8_t>(bytes_, uint8_t(item.u)); break;
    case ValueType::U16: store<uint16_t>(bytes_, uint16_t(item.u)); break;
    case ValueType::U32: store<uint32_t>(bytes_, uint32_t(item.u)); break;
    case ValueType::U64: store<uint64_t>(bytes_, item.u); break;
    case ValueType::I8: store<int8_t>(bytes_, int8_t(item.i)); break;
    case ValueType::I16: store<int16_t>(bytes_, int16_t(item.i)); break;
    case ValueType::I32: store<int32_t>(bytes_, int32_t(item.i)); break;
    case ValueType::I64: store<int64_t>(bytes_, item.i); break;
    case ValueType::F32: store<float>(bytes_, float(item.f)); break;
    case ValueType::F64: store<double>(bytes_, item.f); break;
    case ValueType::BOOL: store<uint8_t>(bytes_, item.b ? 1 : 0); break;
    case ValueType::STRING: append_string(item.s); break;
    case ValueType::ARRAY: items_.push_back(std::move(item)); break;
  }
}

void Value::append_string(std::string_view s) {
  if (type != ValueType::ARRAY || elem != ValueType::STRING) mismatch(elem, ValueType::STRING);
  bytes_.append(s);
  ends_.push_back(bytes_.size());
}

Value Value::array(ValueType elem, const std::vector<Value>& items) {
  Value r = empty_array(elem);
  for (const Value& v : items) r.append(v);
  return r;
}
Value Value::str_array(const std::vector<std::string>& v) {
  Value r = empty_array(ValueType::STRING, v.size());
  for (const auto& s : v) r.append_string(s);
  return r;
}
Value Value::f32_array(const std::vector<float>& v) { return packed_array(ValueType::F32, bytes_of(v)); }
Value Value::i32_array(const std::vector<int32_t>& v) { return packed_array(ValueType::I32, bytes_of(v)); }

size_t Value::size() const {
  if (type != ValueType::ARRAY) return 0;
  if (elem == ValueType::STRING) return ends_.size();
  if (elem == ValueType::ARRAY) return items_.size();
  return bytes_.size() / scalar_size(elem);
}

void Value::check_index(size_t k) const {
  if (type != ValueType::ARRAY) throw ArgError(std::string("GGUF value of type ") + value_type_name(type) + " is not an array");
  if (k >= size())
    throw ArgError("GGUF array index " + std::to_string(k) + " out of range (" + std::to_string(size()) + " elements)");
}

std::string_view Value::str_at(size_t k) const {
  check_index(k);
  if (elem != ValueType::STRING) throw ArgError(std::string("GGUF array of ") + value_type_name(elem) + " holds no strings");
  const uint64_t begin = k == 0 ? 0 : ends_[k - 1];
  return std::string_view(bytes_).substr(size_t(begin), size_t(ends_[k] - begin));
}

Value Value::at(size_t k) const {
  check_index(k);
  const char* p = bytes_.data() + k * scalar_size(elem);
  switch (elem) {
    case ValueType::U8: return u8(load<uint8_t>(p));
    case ValueType::U16: return u16(load<uint16_t>(p));
    case ValueType::U32: return u32(load<uint32_t>(p));
    case ValueType::U64: return u64(load<uint64_t>(p));
    case ValueType::I8: return i8(load<int8_t>(p));
    case ValueType::I16: return i16(load<int16_t>(p));
    case ValueType::I32: return i32(load<int32_t>(p));
    case ValueType::I64: return i64(load<int64_t>(p));
    case ValueType::F32: return f32(load<float>(p));
    case ValueType::F64: return f64(load<double>(p));
    case ValueType::BOOL: return boolean(load<uint8_t>(p) != 0);
    case ValueType::STRING: return str(std::string(str_at(k)));
    case ValueType::ARRAY: return items_[k];
  }
  throw ArgError("unknown GGUF array element type");
}

}  // namespace calq::gguf
