#include "io/ggml_quants.h"

// The references must round exactly like ggml's C code: no fused multiply-add contraction.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "tensor/dtype.h"
#include "util/error.h"

namespace calq::ggml {

namespace {

struct Entry {
  uint32_t id;
  TypeTraits t;
};
// Block sizes and bytes per block from ggml's type_traits (ggml.c) and the block structs in
// ggml-common.h; every type is listed so that the GGUF reader can bounds-check any tensor.
constexpr Entry kTypes[] = {
    {0, {"F32", 1, 4}},        {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},     {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},     {9, {"Q8_1", 32, 36}},      {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}},  {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},  {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}},
    {17, {"IQ2_XS", 256, 74}}, {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},
    {20, {"IQ4_NL", 32, 18}},  {21, {"IQ3_S", 256, 110}},  {22, {"IQ2_S", 256, 82}},
    {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},        {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},       {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},
    {29, {"IQ1_M", 256, 56}},  {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},
    {35, {"TQ2_0", 256, 66}},  {39, {"MXFP4", 32, 17}},
};

float fp16(uint16_t h) { return f16_to_f32(h); }

void check_blocks(Type t, int64_t n) {
  const TypeTraits tr = type_traits(uint32_t(t));
  if (!tr.name) throw UnsupportedError("unknown ggml type " + std::to_string(uint32_t(t)));
  if (n < 0 || n % tr.block_size != 0)
    throw ArgError(std::string("ggml ") + tr.name + ": row of " + std::to_string(n) +
                   " elements is not a multiple of the block size " + std::to_string(tr.block_size));
}

}  // namespace

TypeTraits type_traits(uint32_t id) {
  for (const auto& e : kTypes)
    if (e.id == id) return e.t;
  return {};
}

std::string type_name(Type t) {
  const TypeTraits tr = type_traits(uint32_t(t));
  return tr.name ? tr.name : "type" + std::to_string(uint32_t(t));
}

bool type_from_name(const std::string& name, Type* out) {
  std::string up = name;
  for (char& c : up) c = char(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& e : kTypes)
    if (up == e.t.name) {
      *out = Type(e.id);
      return true;
    }
  return false;
}

size_t row_size(Type t, int64_t n) {
  check_blocks(t, n);
  const TypeTraits tr = type_traits(uint32_t(t));
  return size_t(n / tr.block_size) * tr.type_size;
}

bool can_dequantize(Type t) {
  switch (t) {
    case Type::F32: case Type::F16: case Type::BF16: case Type::Q8_0: case Type::Q4_0:
    case Type::Q4_1: case Type::Q5_0: case Type::Q5_1:
      return true;
    default:
      return false;
  }
}
bool can_quantize(Type t) { return can_dequantize(t); }

// ---- references, following ggml-quants.c ------------------------------------------------------

// The signed value of largest magnitude in x[0, n) (the first one wins ties), as ggml's Q4_0/Q5_0.
static float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; j++) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// Minimum and maximum of x[0, n), as ggml's Q4_1/Q5_1.
static void min_max(const float* x, int n, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < n; j++) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t k) {
  const int64_t nb = k / QK8_0;
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f;  // absolute max
    for (int j = 0; j < QK8_0; j++) amax = std::max(amax, std::fabs(x[i * QK8_0 + j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < QK8_0; ++j) {
      const float x0 = x[i * QK8_0 + j] * id;
      y[i].qs[j] = int8_t(std::round(x0));  // roundf: halves away from zero
    }
  }
}

void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t k) {
  const int qk = QK4_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    const float max = signed_absmax(x + i * qk, qk);
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[i * qk + 0 + j] * id;
      const float x1 = x[i * qk + qk / 2 + j] * id;
      const uint8_t xi0 = uint8_t(std::min<int>(15, int8_t(x0 + 8.5f)));
      const uint8_t xi1 = uint8_t(std::min<int>(15, int8_t(x1 + 8.5f)));
      y[i].qs[j] = uint8_t(xi0 | (xi1 << 4));
    }
  }
}

void quantize_row_q4_1_ref(const float* x, block_q4_1* y, int64_t k) {
  const int qk = QK4_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    float min, max;
    min_max(x + i * qk, qk, min, max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[i * qk + 0 + j] - min) * id;
      const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      const uint8_t xi0 = uint8_t(std::min<int>(15, int8_t(x0 + 0.5f)));
      const uint8_t xi1 = uint8_t(std::min<int>(15, int8_t(x1 + 0.5f)));
      y[i].qs[j] = uint8_t(xi0 | (xi1 << 4));
    }
  }
}

void quantize_row_q5_0_ref(const float* x, block_q5_0* y, int64_t k) {
  const int qk = QK5_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    const float max = signed_absmax(x + i * qk, qk);
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = x[i * qk + 0 + j] * id;
      const float x1 = x[i * qk + qk / 2 + j] * id;
      const uint8_t xi0 = uint8_t(std::min<int>(31, int8_t(x0 + 16.5f)));
      const uint8_t xi1 = uint8_t(std::min<int>(31, int8_t(x1 + 16.5f)));
      y[i].qs[j] = uint8_t((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= uint32_t((xi0 & 0x10u) >> 4) << (j + 0);  // 5th bits: element j at bit j
      qh |= uint32_t((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void quantize_row_q5_1_ref(const float* x, block_q5_1* y, int64_t k) {
  const int qk = QK5_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    float min, max;
    min_max(x + i * qk, qk, min, max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const float x0 = (x[i * qk + 0 + j] - min) * id;
      const float x1 = (x[i * qk + qk / 2 + j] - min) * id;
      const uint8_t xi0 = uint8_t(x0 + 0.5f);
      const uint8_t xi1 = uint8_t(x1 + 0.5f);
      y[i].qs[j] = uint8_t((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= uint32_t((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= uint32_t((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t k) {
  const int64_t nb = k / QK8_0;
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[i * QK8_0 + j] = float(x[i].qs[j]) * d;
  }
}

void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t k) {
  const int qk = QK4_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16(x[i].d);
    for (int j = 0; j < qk / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * qk + j + 0] = float(x0) * d;
      y[i * qk + j + qk / 2] = float(x1) * d;
    }
  }
}

void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t k) {
  const int qk = QK4_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16(x[i].d), m = fp16(x[i].m);
    for (int j = 0; j < qk / 2; ++j) {
      const int x0 = x[i].qs[j] & 0x0F;
      const int x1 = x[i].qs[j] >> 4;
      y[i * qk + j + 0] = float(x0) * d + m;
      y[i * qk + j + qk / 2] = float(x1) * d + m;
    }
  }
}

void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t k) {
  const int qk = QK5_0;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < qk / 2; ++j) {
      const uint8_t xh_0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = uint8_t((qh >> (j + 12)) & 0x10);
      const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
      const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
      y[i * qk + j + 0] = float(x0) * d;
      y[i * qk + j + qk / 2] = float(x1) * d;
    }
  }
}

void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t k) {
  const int qk = QK5_1;
  const int64_t nb = k / qk;
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16(x[i].d), m = fp16(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < qk / 2; ++j) {
      const uint8_t xh_0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = uint8_t((qh >> (j + 12)) & 0x10);
      const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
      const int x1 = (x[i].qs[j] >> 4) | xh_1;
      y[i * qk + j + 0] = float(x0) * d + m;
      y[i * qk + j + qk / 2] = float(x1) * d + m;
    }
  }
}

// ---- dispatch ---------------------------------------------------------------------------------

void quantize_row(Type t, const float* x, void* dst, int64_t n) {
  check_blocks(t, n);
  if (!can_quantize(t)) throw UnsupportedError("calq cannot quantize to ggml type " + type_name(t));
  if (t != Type::F32)  // the C references have undefined behaviour on NaN/inf (float -> int8 casts)
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(x[i])) throw ArgError("cannot quantize a non-finite value to " + type_name(t));
  switch (t) {
    case Type::F32: std::memcpy(dst, x, size_t(n) * 4); return;
    case Type::F16: convert_from_f32(x, DType::F16, dst, size_t(n)); return;
    case Type::BF16: convert_from_f32(x, DType::BF16, dst, size_t(n)); return;
    case Type::Q8_0: quantize_row_q8_0_ref(x, static_cast<block_q8_0*>(dst), n); return;
    case Type::Q4_0: quantize_row_q4_0_ref(x, static_cast<block_q4_0*>(dst), n); return;
    case Type::Q4_1: quantize_row_q4_1_ref(x, static_cast<block_q4_1*>(dst), n); return;
    case Type::Q5_0: quantize_row_q5_0_ref(x, static_cast<block_q5_0*>(dst), n); return;
    case Type::Q5_1: quantize_row_q5_1_ref(x, static_cast<block_q5_1*>(dst), n); return;
    default: break;
  }
}

void dequantize_row(Type t, const void* src, float* y, int64_t n) {
  check_blocks(t, n);
  if (!can_dequantize(t)) throw UnsupportedError("calq cannot dequantize ggml type " + type_name(t));
  if (t == Type::F32) {
    std::memcpy(y, src, size_t(n) * 4);
    return;
  }
  // Every other type holds 2-byte fields (fp16 d/m, F16/BF16 values); GGUF offsets are aligned,
  // but a caller may pass any address: copy misaligned rows to aligned storage first.
  const size_t bytes = row_size(t, n);
  const void* p = src;
  std::string copy;
  if (reinterpret_cast<uintptr_t>(src) % 2 != 0) {
    copy.assign(static_cast<const char*>(src), bytes);
    p = copy.data();
  }
  switch (t) {
    case Type::F16: convert_to_f32(p, DType::F16, y, size_t(n)); return;
    case Type::BF16: convert_to_f32(p, DType::BF16, y, size_t(n)); return;
    default: break;
  }
  switch (t) {
    case Type::Q8_0: dequantize_row_q8_0(static_cast<const block_q8_0*>(p), y, n); return;
    case Type::Q4_0: dequantize_row_q4_0(static_cast<const block_q4_0*>(p), y, n); return;
    case Type::Q4_1: dequantize_row_q4_1(static_cast<const block_q4_1*>(p), y, n); return;
    case Type::Q5_0: dequantize_row_q5_0(static_cast<const block_q5_0*>(p), y, n); return;
    case Type::Q5_1: dequantize_row_q5_1(static_cast<const block_q5_1*>(p), y, n); return;
    default: break;
  }
}

}  // namespace calq::ggml
