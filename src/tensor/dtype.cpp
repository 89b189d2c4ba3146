#include "tensor/dtype.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace calq {

namespace {
struct DTypeInfo {
  DType t;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kInfos[] = {
    {DType::F32, "F32", 4},  {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::F64, "F64", 8},  {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::I16, "I16", 2},  {DType::I32, "I32", 4}, {DType::I64, "I64", 8},
    {DType::BOOL, "BOOL", 1},
};
}  // namespace

size_t dtype_size(DType t) { return kInfos[static_cast<int>(t)].size; }
const char* dtype_name(DType t) { return kInfos[static_cast<int>(t)].name; }

bool dtype_from_name(const std::string& name, DType* out) {
  for (const auto& i : kInfos)
    if (name == i.name) {
      *out = i.t;
      return true;
    }
  return false;
}

bool is_float_dtype(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      exp = 113;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      u = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return sign | 0x7e00u;    // NaN
  if (absu >= 0x477ff000u) return sign | 0x7c00u;   // rounds to >= 65520: inf
  if (absu < 0x38800000u) {                          // subnormal half (or zero)
    if (absu < 0x33000000u) return sign;             // < 2^-25 rounds to 0
    const uint32_t exp = absu >> 23, mant = (absu & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;                // 14..24
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return sign | uint16_t(r);
  }
  uint32_t r = absu - 0x38000000u;  // rebias exponent 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);   // round to nearest even on the 13 dropped bits
  return sign | uint16_t(r >> 13);
}

void convert_to_f32(const void* src, DType t, float* dst, size_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::F64: {
      const auto* s = static_cast<const double*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]);
      return;
    }
    default:
      throw UnsupportedError(std::string("cannot convert dtype ") + dtype_name(t) + " to F32");
  }
}

void convert_from_f32(const float* src, DType t, void* dst, size_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::F64: {
      auto* d = static_cast<double*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = src[i];
      return;
    }
    default:
      throw UnsupportedError(std::string("cannot convert F32 to dtype ") + dtype_name(t));
  }
}

}  // namespace calq

namespace calq {

namespace {

// Exponent bits of each float format: all ones means NaN or ±infinity.
constexpr uint16_t kF16Exp = 0x7c00u, kBf16Exp = 0x7f80u;
constexpr uint32_t kF32Exp = 0x7f800000u;
constexpr uint64_t kF64Exp = 0x7ff0000000000000ull;

// Whether any of p[0..n) has an all-ones exponent. No early exit inside: the OR of compares
// vectorises (the common case is "all finite", which must read every value anyway).
template <class U>
bool block_has_non_finite(const U* p, size_t n, U mask) {
  unsigned bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= unsigned((p[i] & mask) == mask);
  return bad != 0;
}

template <class U>
int64_t first_non_finite(const U* p, size_t n, U mask) {
  // One thread, block by block: a single core already reads at memory speed here (bench_load:
  // 29 GB/s), while a parallel region waits for whichever thread a shared machine descheduled
  // (bench_load at load 10: 1.07 s with 2 threads against 0.08 s with 1).
  constexpr size_t kBlock = 8192;
  for (size_t b0 = 0; b0 < n; b0 += kBlock)
    if (block_has_non_finite(p + b0, std::min(kBlock, n - b0), mask))
      for (size_t i = b0;; ++i)
        if ((p[i] & mask) == mask) return int64_t(i);
  return -1;
}

}  // namespace

int64_t find_non_finite(const void* data, DType t, size_t n) {
  switch (t) {
    case DType::F32: return first_non_finite(static_cast<const uint32_t*>(data), n, kF32Exp);
    case DType::F16: return first_non_finite(static_cast<const uint16_t*>(data), n, kF16Exp);
    case DType::BF16: return first_non_finite(static_cast<const uint16_t*>(data), n, kBf16Exp);
    case DType::F64: return first_non_finite(static_cast<const uint64_t*>(data), n, kF64Exp);
    default: return -1;
  }
}

const char* non_finite_kind(const void* data, DType t, size_t i) {
  double v = 0;
  switch (t) {
    case DType::F32: v = static_cast<const float*>(data)[i]; break;
    case DType::F16: v = f16_to_f32(static_cast<const uint16_t*>(data)[i]); break;
    case DType::BF16: v = bf16_to_f32(static_cast<const uint16_t*>(data)[i]); break;
    case DType::F64: v = static_cast<const double*>(data)[i]; break;
    default: return "finite";
  }
  if (v != v) return "NaN";
  if (v == HUGE_VAL) return "+inf";
  if (v == -HUGE_VAL) return "-inf";
  return "finite";
}

}  // namespace calq
