// Element types and the one place where dtype conversion lives.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace calq {

enum class DType : uint8_t { F32, F16, BF16, F64, I8, U8, I16, I32, I64, BOOL };

size_t dtype_size(DType t);
// Name as written in safetensors headers ("F32", "BF16", ...).
const char* dtype_name(DType t);
// Parses a safetensors dtype name; returns false for unknown names.
bool dtype_from_name(const std::string& name, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round-to-nearest-even, NaN kept quiet (as torch does).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float f16_to_f32(uint16_t h);
// IEEE half, round-to-nearest-even, overflow to inf.
uint16_t f32_to_f16(float f);

// Converts n elements of a float-like dtype (F32/F16/BF16/F64) to float32.
void convert_to_f32(const void* src, DType t, float* dst, size_t n);
// Converts n float32 values to F32/F16/BF16/F64.
void convert_from_f32(const float* src, DType t, void* dst, size_t n);
bool is_float_dtype(DType t);

// Index of the first NaN or ±infinity among the n values at `data` of a float dtype (F32/F16/BF16/
// F64), or -1 when all are finite (always -1 for integer dtypes). An exponent-mask test on the
// stored bits, branch-free per block so that it vectorises, on one thread (see dtype.cpp): one
// read of the bytes, about as fast as memory delivers them (bench/bench_load.cpp measures it).
int64_t find_non_finite(const void* data, DType t, size_t n);
inline int64_t find_non_finite(const float* x, size_t n) { return find_non_finite(x, DType::F32, n); }
// "NaN", "+inf" or "-inf" for the value at index i (of a float dtype).
const char* non_finite_kind(const void* data, DType t, size_t i);

}  // namespace calq
