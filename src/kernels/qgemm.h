// Quantized linear layers run as what they are: group-quantized int2..8 weights × f32/bf16
// activations (W4A16, W8A16: GPTQ, AWQ, RTN, GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0) and int8 weights ×
// int8 activations (W8A8, SmoothQuant's deployment form). They are PackedWeight kinds, so the
// decoder's Linear can hold them and gemm_packed / gemm_packed_ex (kernels/gemm.h) run them,
// epilogues included (bias, residual accumulate, gated act·mul, bf16 output).
//
// Semantics (the scalar references below are the definitions):
//  * W4A16, ComputeType::F32: y = x · Wᵀ + b with W the exact dequantization (qpack.h), f32
//    accumulation: the fake-quant float path up to summation order.
//  * W4A16, ComputeType::BF16: x rounded to bf16 (nearest even), f32 accumulation. Prefill (more
//    than 4 rows) also rounds W to bf16 once per panel, as the bf16 float path rounds a fake-quant
//    weight; decode (1-4 rows) keeps the codes exact and applies scale and zero per group.
//  * W8A8: activations quantized per token (s = max(absmax, 1e-5) / 127, q = round-half-even(x / s))
//    or with a static per-tensor scale (q clamped to [-128, 127]), exactly as calq's fake-quant
//    InputTransforms; y = (float(Σ q_x·q_w) · s_x) · s_w + b with an exact int32 sum: bitwise
//    equal to the reference on every ISA.
//
// Kernels (kernels/qkern.h): AVX-512 (BF16 + VNNI) and AVX2 variants in one binary, chosen at
// run time (kernels/isa.h); without AVX2 the scalar path runs. Prefill: weights dequantized once
// per 32-output × 256-input panel into L1, then a 12 × 32 vdpbf16ps (or FMA) register tile over
// all rows. Decode (<= 4 rows): weights streamed once, dequantized in registers.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/qpack.h"

namespace calq {

class QuantPackedWeight : public PackedWeight {
 public:
  // gemm_packed_ex's contract (gemm.h): exactly one input (x or x_bf16) and one output (y or
  // y_bf16); bf16 input or output only for ComputeType::BF16.
  virtual void run(const float* x, const uint16_t* x_bf16, int64_t rows, const float* bias, const GemmEpilogue& e,
                   float* y, uint16_t* y_bf16) const = 0;
  // e.g. "w4 g128 f16-scales asym", "ggml q4_0", "w8a8 per-token".
  virtual std::string describe() const = 0;
  // The same packed weight run with compute type `c` (activations and outputs as gemm.h's
  // ComputeType); the codes are shared, not copied.
  virtual std::shared_ptr<QuantPackedWeight> with_compute(ComputeType c) const = 0;
  // W [n, k] float32 in the source's column order: the exact dequantization (qpacked_dequantize;
  // W8A8: scale · w), for callers that need the float weight (quantization methods, tests).
  virtual void dequantize(float* w) const = 0;
};

// Activations of the group-quantized kinds.
//  Float: f32, or bf16 (ComputeType::BF16), as above.
//  Int8 (W4A8 / W8A8 by groups; opt-in; codes stored in 4 or 8 bits): each row's activations are
//    quantized in blocks of 32 packed inputs (groups are padded to multiples of 32): d_b =
//    absmax_b / 127, q = round-half-even(x / d_b), and the product is x'·Wᵀ with x' = d_b·q —
//    llama.cpp's arithmetic for Q4_0/Q8_0 weights (Q8_0 activations; it stores d_b in f16 and
//    rounds halves away from zero). The int8 activations multiply the codes exactly (vpdpbusd:
//    twice the products per instruction of vdpbf16ps; AVX2: vpmaddubsw) in decode and prefill
//    (4-bit codes: AVX-512, AVX2; 8-bit codes: AVX-512, and AVX2 at decode); elsewhere the
//    W4A16/W8A16 kernels run on x'.
enum class QActs { Float, Int8 };

// W4A16 / W8A16 from codes (calq's QuantizedWeight, GPTQ/AWQ after unpacking) or GGUF blocks.
// UnsupportedError for QActs::Int8 with 5-bit storage (GGUF Q5_0/Q5_1), or a QPacked whose groups
// do not span whole blocks of 32 (build it with qpack_codes(..., 32)).
std::shared_ptr<QuantPackedWeight> pack_quantized(const QuantCodesView& w, ComputeType c, const char* what = "weight",
                                                  QActs acts = QActs::Float);
std::shared_ptr<QuantPackedWeight> pack_quantized(QPacked p, ComputeType c, QActs acts = QActs::Float);
std::shared_ptr<QuantPackedWeight> pack_ggml(ggml::Type t, const void* data, int64_t n, int64_t k, ComputeType c,
                                             const char* what = "weight", QActs acts = QActs::Float);

// Quantized weights that read the same input (q|k|v, gate|up) stacked by rows into one weight:
// output columns [0, n_0) are members[0]'s, the next n_1 members[1]'s, and so on. Each output
// column is computed by the same kernels over the same codes and the same activations as in its
// member, so the stacked product equals the members' products bitwise, decode and prefill. The
// stacked weight holds the only copy of the codes: `members` are the members again as views into
// it, to replace them (their own copies are then freed). Stackable: the same kind (group-quantized
// or W8A8) with the same input size, input order (groups, act-order permutation), storage, scale
// and zero-point forms, activation mode (QActs, W8A8Options); every member but the last with a
// multiple of 32 outputs (the kernels' block of outputs, so no member's block straddles another's).
// Otherwise `stacked` is null. `c`: the stacked weight's compute type (the members keep theirs).
struct QuantStack {
  std::shared_ptr<QuantPackedWeight> stacked;
  std::vector<std::shared_ptr<QuantPackedWeight>> members;
};
QuantStack stack_quantized(const std::vector<const QuantPackedWeight*>& members, ComputeType c);

// W8A8 activation quantization.
enum class W8A8Act { PerToken, PerTensorStatic };
struct W8A8Options {
  W8A8Act act = W8A8Act::PerToken;
  float static_scale = 0.0f;  // PerTensorStatic: the calibrated scale (> 0)
};
// `c` is what the caller feeds (BF16: bf16 input/output allowed); the product itself is int8.
std::shared_ptr<QuantPackedWeight> pack_w8a8(W8A8Packed p, const W8A8Options& o, ComputeType c = ComputeType::F32);

// int8 activations xq [rows][ldq] (columns k..ldq zeroed) and per-row scales sx, as above; ArgError
// on a non-finite activation. quantize_act_int8 (vectorised, multi-threaded) is bitwise the scalar
// quantize_act_int8_ref.
void quantize_act_int8(const float* x, int64_t rows, int64_t k, const W8A8Options& o, int8_t* xq, int64_t ldq,
                       float* sx);
void quantize_act_int8_ref(const float* x, int64_t rows, int64_t k, const W8A8Options& o, int8_t* xq, int64_t ldq,
                           float* sx);

// One row of QActs::Int8 activations, kp (a multiple of 32) packed inputs: per block of 32,
// d = absmax / 127 (0 for an all-zero block, with q = 0), q = clamp(round-half-even(x / d), ±127),
// qsum = Σ q. Returns false when a value is not finite.
bool quantize_blocks_int8_ref(const float* x, int64_t kp, int8_t* q, float* d, int32_t* qsum);

// One-row product on a float weight oneDNN packed (gemm.cpp: decode steps), AVX-512 only: W's
// values `w` in oneDNN's blocked layout (qkern.h GemvBlocked*: BA16a64b2a for bf16, BA16a64b for
// f32; the caller checked the layout), bias and epilogue as gemm_packed_ex. One stream of weights
// per 64 outputs, the 64-output blocks split evenly across threads (oneDNN's brgemm at one row
// reached ~half of the machine's read bandwidth). bf16: x rounded to bf16 (as gemm.cpp does),
// products by vdpbf16ps, f32 accumulation. Returns false (nothing done) when it does not apply:
// rows != 1 or no AVX-512 kernels.
bool gemv_onednn_blocked(const void* w, ComputeType c, int64_t n, int64_t k, const float* x, const uint16_t* x_bf16,
                         int64_t rows, const float* bias, const GemmEpilogue& e, float* y, uint16_t* y_bf16);

// Float weights kept as 16-bit rows (gemm.cpp, HalfStorage::Rows): W [n, k] row-major bf16 or f16
// bits (t), x [rows, k] and y [rows, n] f32, bias and epilogue as gemm_packed_ex (f32 output only).
// The products are f32 FMAs on the exact widened weights. Up to 4 rows (decode): each thread
// streams its share of the outputs' weights once, widened in registers (qkern.h gemv_bf16_rows /
// gemv_f16_rows; scalar without AVX2). More rows: per chunk of outputs, W widened into an f32
// buffer of at most 16 MiB (the calling thread's) and multiplied by oneDNN's sgemm; bias and
// epilogue per chunk.
void gemm_half_rows(const uint16_t* w, HalfType t, int64_t n, int64_t k, const float* x, int64_t rows,
                    const float* bias, const GemmEpilogue& e, float* y);
// n values of type t widened to f32 (exact; f16 by F16C, part of the x86-64-v3 baseline).
void widen_half(const uint16_t* w, HalfType t, int64_t n, float* out);

// ---- scalar references (double accumulation) ---------------------------------------------------
// y = x' · Wᵀ + bias, W = qpacked_dequantize(w), x' = x (F32) or bf16(x) (BF16); with
// bf16_weights, W rounded to bf16 too (what the BF16 prefill kernel multiplies). QActs::Int8: x
// replaced by d_b·q first (then rounded to bf16 for BF16 unless exact_int8_acts: what the decode
// kernels multiply).
void qgemm_ref(const float* x, int64_t rows, const QPacked& w, ComputeType c, const float* bias, float* y,
               bool bf16_weights = false, QActs acts = QActs::Float, bool exact_int8_acts = false);
// QActs::Int8 in the int8 kernels' own arithmetic, scalar: activations gathered and quantized per
// block (quantize_blocks_int8_ref), the exact int32 block sums Σ q·code, then per block, in block
// order, y = fma(s·d_b, Σ − z·qsum_b, y) (− z·qsum_b fused: fma(−z, qsum_b, Σ)), or for min-form
// groups y = fma(d_b, fma(s, Σ, m·qsum_b), y). No bias. Bitwise what every int8 kernel computes
// (AVX2 and AVX-512 with 4-bit codes and AVX-512 with 8-bit codes at any row count; AVX2 with
// 8-bit codes at decode, <= 4 rows).
void qgemm_int8_blocks_ref(const float* x, int64_t rows, const QPacked& w, float* y);
// y = (float(Σ xq·w) · sx) · sw + bias, xq and sx from quantize_act_int8.
void w8a8_gemm_ref(const float* x, int64_t rows, const W8A8Packed& w, const W8A8Options& o, const float* bias, float* y);

}  // namespace calq
