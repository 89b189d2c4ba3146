// ggml tensor types as stored in GGUF files: the type ids, their block sizes, and plain scalar
// reference quantize/dequantize for the types calq writes (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1). The block structs mirror ggml-common.h byte for byte and the quantizers follow ggml's
// quantize_row_*_ref ("reference implementation for deterministic creation of model files") step by
// step, including the float operation order, so calq's files are bitwise what ggml would write.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace calq::ggml {

// Type ids as in ggml.h / the GGUF spec (ids 4, 5, 31-33, 36-38 were removed from ggml).
enum class Type : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeTraits {
  const char* name = nullptr;  // nullptr: unknown id
  int64_t block_size = 0;      // elements per block
  size_t type_size = 0;        // bytes per block
};

// Traits of a type id read from a file; name == nullptr for ids calq does not know.
TypeTraits type_traits(uint32_t id);
std::string type_name(Type t);
// "q8_0" / "Q8_0" -> Type (case-insensitive); false when unknown.
bool type_from_name(const std::string& name, Type* out);
// Bytes of one row of n elements (n must be a multiple of the block size).
size_t row_size(Type t, int64_t n);
// Can calq dequantize (and quantize) this type?
bool can_dequantize(Type t);
bool can_quantize(Type t);

// ---- block layouts (ggml-common.h) ------------------------------------------------------------
constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32;

struct block_q4_0 {
  uint16_t d;            // fp16 delta
  uint8_t qs[QK4_0 / 2];  // nibbles: low = elements 0..15, high = elements 16..31
};
struct block_q4_1 {
  uint16_t d, m;  // fp16 delta and min
  uint8_t qs[QK4_1 / 2];
};
struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];  // 5th bit of each element (bit j = element j)
  uint8_t qs[QK5_0 / 2];
};
struct block_q5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
struct block_q8_0 {
  uint16_t d;
  int8_t qs[QK8_0];
};
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must match ggml");
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 must match ggml");
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 must match ggml");
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 must match ggml");
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must match ggml");

// ---- scalar references (k elements, k a multiple of the block size) ---------------------------
void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t k);
void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t k);
void quantize_row_q4_1_ref(const float* x, block_q4_1* y, int64_t k);
void quantize_row_q5_0_ref(const float* x, block_q5_0* y, int64_t k);
void quantize_row_q5_1_ref(const float* x, block_q5_1* y, int64_t k);
void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t k);
void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t k);
void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t k);
void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t k);
void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t k);

// Type-dispatched: n elements of `x` into row_size(t, n) bytes at `dst`, and back. Throws
// UnsupportedError for types calq cannot (de)quantize, ArgError when n is not a block multiple.
void quantize_row(Type t, const float* x, void* dst, int64_t n);
void dequantize_row(Type t, const void* src, float* y, int64_t n);

}  // namespace calq::ggml
