// Matrix products of linear layers: y[rows, n] = x[rows, k] · W[n, k]ᵀ (+ bias[n]).
// gemm_xwt_ref is the scalar reference; PackedWeight + gemm_packed is the fast path
// (weights pre-packed once for the chosen compute type).
#pragma once
#include <cstdint>
#include <memory>

#include "kernels/ops.h"  // ActKind

namespace calq {

// BF16: bf16 weights and activations, f32 accumulation. Where oneDNN has no bf16 matmul (CPUs
// without AVX-512, e.g. AMD Zen 3) it is emulated: both operands rounded to bf16 values and
// multiplied by the f32 kernels (exact products, f32 sums); the weights stay bf16 (HalfStorage).
enum class ComputeType { F32, BF16 };
const char* compute_type_name(ComputeType c);

void gemm_xwt_ref(const float* x, int64_t rows, int64_t k, const float* w, int64_t n, const float* bias, float* y);

class PackedWeight {
 public:
  virtual ~PackedWeight() = default;
  virtual int64_t n() const = 0;
  virtual int64_t k() const = 0;
  virtual ComputeType compute() const = 0;
  virtual size_t bytes() const = 0;
};

// The 16-bit float formats a weight can be kept in (HalfStorage::Rows).
enum class HalfType { BF16, F16 };

// How packed weights whose values are 16-bit floats are kept: bf16 numbers (ComputeType::BF16, or a
// bf16 checkpoint at any compute type) and f16 numbers (an f16 checkpoint, e.g. OPT's or Cohere's,
// at ComputeType::F32; at BF16 compute f16 values are rounded to bf16 once, as before).
//  Auto: in oneDNN's blocked layout where oneDNN has bf16 matmuls (AVX-512: bf16 for BF16, an f32
//    copy for F32 compute); elsewhere as Rows.
//  Rows: W [n, k] row-major in its 16-bit format, 2 bytes a parameter, widened to f32 at run time
//    (one row: in registers; more rows: per chunk of outputs into a cache-sized buffer, then
//    oneDNN's sgemm). Widening bf16 or f16 to f32 is exact, so the products are those of the f32
//    kernels on the checkpoint's values. Auto picks it on CPUs without AVX-512 (AMD Zen 3): without
//    it an f32 run of a bf16 or f16 checkpoint, and the emulated bf16 compute, hold a 4-byte f32
//    copy of every weight.
// Ignored for an f32 weight at ComputeType::F32 (its values are not 16-bit numbers).
enum class HalfStorage { Auto, Rows };

// Packs W [n, k] (float32, row-major) for repeated products.
std::shared_ptr<PackedWeight> pack_weight(const float* w, int64_t n, int64_t k, ComputeType c,
                                          HalfStorage s = HalfStorage::Auto);
// Same from the raw bits of a bf16 W [n, k] (a bf16 checkpoint), with no float copy: bf16 -> f32 is
// exact and f32 -> bf16 of a bf16 value is the identity, so the packed bytes equal pack_weight()'s
// on the converted weight at BF16 compute (tests/kernels_gemm_test.cpp).
std::shared_ptr<PackedWeight> pack_weight_bf16(const uint16_t* w, int64_t n, int64_t k, ComputeType c,
                                               HalfStorage s = HalfStorage::Auto);
// Same from the raw bits of an IEEE f16 W [n, k] (an f16 checkpoint). F32 compute with rows storage:
// the f16 bits are kept (2 bytes a parameter). Otherwise widened to f32 (exact) and packed as
// pack_weight() packs those values (BF16 compute: rounded to bf16 once).
std::shared_ptr<PackedWeight> pack_weight_f16(const uint16_t* w, int64_t n, int64_t k, ComputeType c,
                                              HalfStorage s = HalfStorage::Auto);
// y = x · Wᵀ (+ bias). x [rows, k], y [rows, n], both float32 row-major with leading dims k and n.
// accumulate: y += x · Wᵀ (+ bias) instead (a residual add fused into the GEMM).
// BF16 weights: x is rounded to bf16 (nearest even) first; products are accumulated in f32.
void gemm_packed(const float* x, int64_t rows, const PackedWeight& w, const float* bias, float* y,
                 bool accumulate = false);
// Same with x already in bf16 (w must be packed for ComputeType::BF16).
void gemm_packed_bf16(const uint16_t* x, int64_t rows, const PackedWeight& w, const float* bias, float* y,
                      bool accumulate = false);

// What happens to r = x · Wᵀ + bias before it is stored (fused into the GEMM as oneDNN post-ops).
struct GemmEpilogue {
  bool accumulate = false;  // y += r
  // Gated MLP: y = act(r) ⊙ mul, with mul [rows, n] (the "up" product, gate = this GEMM) given
  // in float32 (mul) or bf16 (mul_bf16; half the memory traffic when computing in bf16).
  bool gated = false;
  ActKind act = ActKind::SiLU;
  const float* mul = nullptr;
  const uint16_t* mul_bf16 = nullptr;
};
// The general form: input x (float32) or x_bf16 (bf16, BF16 weights only; exactly one non-null);
// output y (float32) or y_bf16 (bf16, rounded once from the f32 result; BF16 weights only).
void gemm_packed_ex(const float* x, const uint16_t* x_bf16, int64_t rows, const PackedWeight& w, const float* bias,
                    const GemmEpilogue& e, float* y, uint16_t* y_bf16 = nullptr);

// Whether oneDNN runs bf16 matmuls on this CPU (AVX-512); false: ComputeType::BF16 is emulated
// with the f32 kernels (no faster than f32).
bool gemm_bf16_native();

// Whether a row's result of gemm_packed depends only on that row: not on how many rows are
// multiplied with it, where it sits among them, or the thread count. True where oneDNN runs its
// AVX-512 (brgemm) kernels; on AVX2 CPUs its sgemm-based kernels round tail rows and thread splits
// differently in the last bits, so e.g. a perplexity depends (by ~1e-7 relative) on the batch.
bool gemm_rows_independent();

// Plain float32 GEMM, row-major: C[m,n] = alpha * A[m,k] · op(B) + beta * C, op(B) = B[k,n] or B[n,k]ᵀ.
void sgemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace calq
