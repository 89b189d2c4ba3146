// GGUF metadata values (io/gguf.h has the container). Arrays are stored compactly whatever their
// length: a u8 array of n elements takes n bytes, as in the file, so reading an untrusted file
// costs memory linear in its size (a variant per element cost ~100 bytes per element).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace calq::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);
// Bytes of one element of a fixed-size type (integers, floats, bool); 0 for STRING and ARRAY.
size_t scalar_size(ValueType t);

// One metadata value. Scalars live in the member matching their type class: unsigned integers in
// `u`, signed in `i`, floats in `f`, bools in `b`; strings in `s`. An array has size() elements of
// type `elem` (nested arrays allowed), read with at(k); its storage is private and packed: scalar
// elements as their little-endian bytes, strings as one buffer plus end offsets, arrays as Values.
struct Value {
  ValueType type = ValueType::U32;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  ValueType elem = ValueType::U32;

  static Value u8(uint8_t v) { return uint_of(ValueType::U8, v); }
  static Value u16(uint16_t v) { return uint_of(ValueType::U16, v); }
  static Value u32(uint32_t v) { return uint_of(ValueType::U32, v); }
  static Value u64(uint64_t v) { return uint_of(ValueType::U64, v); }
  static Value i8(int8_t v) { return int_of(ValueType::I8, v); }
  static Value i16(int16_t v) { return int_of(ValueType::I16, v); }
  static Value i32(int32_t v) { return int_of(ValueType::I32, v); }
  static Value i64(int64_t v) { return int_of(ValueType::I64, v); }
  static Value f32(float v);
  static Value f64(double v);
  static Value boolean(bool v);
  static Value str(std::string v);
  // Array of `elem`; ArgError when an item's type is not `elem`.
  static Value array(ValueType elem, const std::vector<Value>& items);
  static Value str_array(const std::vector<std::string>& v);
  static Value f32_array(const std::vector<float>& v);
  static Value i32_array(const std::vector<int32_t>& v);
  // Array of a fixed-size `elem` from its elements' packed little-endian bytes (the file layout);
  // ArgError unless the size is a multiple of the element size and bools are 0 or 1.
  static Value packed_array(ValueType elem, std::string bytes);
  // An empty array of `elem` that append() fills, with room for `expected` string or array elements.
  static Value empty_array(ValueType elem, size_t expected = 0);
  // Appends an element of type `elem` (ArgError otherwise); append_string for STRING arrays.
  void append(Value item);
  void append_string(std::string_view s);

  bool is_integer() const;  // any of the 8 integer types
  bool is_float() const { return type == ValueType::F32 || type == ValueType::F64; }

  // Array access (ArgError on a scalar or an index out of range).
  size_t size() const;                       // 0 for a scalar
  Value at(size_t k) const;                  // element k as a Value (a copy)
  std::string_view str_at(size_t k) const;   // element k of a STRING array, without a copy
  const std::string& packed() const { return bytes_; }  // the elements of a fixed-size array

 private:
  static Value uint_of(ValueType t, uint64_t v);
  static Value int_of(ValueType t, int64_t v);
  void check_index(size_t k) const;

  std::string bytes_;            // fixed-size elements, packed; or the bytes of all string elements
  std::vector<uint64_t> ends_;   // STRING arrays: end of element k in bytes_
  std::vector<Value> items_;     // ARRAY arrays
};

}  // namespace calq::gguf
