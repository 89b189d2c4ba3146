// Internal: the per-ISA micro-kernels behind kernels/qgemm.h (one table per instruction set,
// qkern_avx512.cpp and qkern_avx2.cpp; the dispatcher and the scalar path are in qgemm.cpp).
// Kernels see raw pointers only: no allocation, no library calls, no epilogue (qgemm.cpp adds the
// bias and the epilogue on each block while it is in cache).
#pragma once
#include <cstdint>

namespace calq {
struct QPacked;
}

namespace calq::qk {

// A QPacked as the kernels read it (kernels/qpack.h describes the layout).
struct QW {
  const uint8_t* codes = nullptr;
  const uint8_t* hbits = nullptr;
  const void* scales = nullptr;     // [tiles][groups][16] f16 or f32
  const uint16_t* zeros = nullptr;  // [tiles][groups][16] f16 zero points or mins; null: zero_value
  const int32_t* chunk_group = nullptr;
  int64_t chunks = 0, groups = 0;
  int storage = 4;
  bool min_form = false, scale_f16 = false;
  float zero_value = 0.0f;
};

// The kernels' view of a packed weight (defined in qgemm.cpp; the QPacked must outlive it).
QW view_of(const QPacked& p);

// Block products: c[r][0, 32) = Σ_i a[r][i] · w(32·block + ·, i) over all kp = 8·chunks packed
// inputs, r < rows; a has leading dimension lda (elements), c has ldc (floats).
//  gemm_bf16: a bf16; weights dequantized to bf16 (round to nearest even) once per block panel
//    (`panel`: at least kPanelBytes), products by vdpbf16ps (or f32 FMA on the bf16 values).
//  gemm_f32: a f32; weights dequantized exactly to f32, then rounded to bf16 when round_bf16
//    (how an ISA without bf16 products runs the bf16 semantics: products of bf16 values are exact
//    in f32). gemm_bf16 is null on such ISAs; the dispatcher then passes bf16-rounded f32 rows.
// gemm_bf16 takes up to kMaxGemmBlocks consecutive blocks at once (block0, nblocks; block j in c
// columns [32·j, 32·j + 32)): their panels share one pass over the activations.
constexpr int64_t kMaxGemmBlocks = 8;
constexpr int64_t kPanelBytes = kMaxGemmBlocks * 16 * 1024;
using GemmBf16Fn = void (*)(const QW& w, const uint16_t* a, int64_t lda, int64_t rows, int64_t block0, int64_t nblocks,
                            float* c, int64_t ldc, void* panel);
using GemmF32Fn = void (*)(const QW& w, const float* a, int64_t lda, int64_t rows, int64_t block, float* c,
                           int64_t ldc, void* panel, bool round_bf16);
// Few-row products (decode), weights read once for all rows: y[r][16·t + j] for tiles t in [t0, t1)
// (t0, t1 even), rows <= 4, y with leading dimension ldy. Factored per group:
//   Σ_{i∈g} a_i·w_i = s·(Σ a_i·q_i − z·Σ a_i)   or   d·Σ a_i·q_i + m·Σ a_i   (min form),
// with xsum[r·groups + g] = Σ_{i∈g} a[r][i] given. Codes stay exact integers.
//  gemv_bf16: a bf16 (4/5-bit storage only; 8-bit codes, and ISAs where it is null, go through
//    gemv_f32 on the bf16-rounded activations: the same products).
//  gemv_f32: a f32.
using GemvBf16Fn = void (*)(const QW& w, const uint16_t* a, int64_t lda, int rows, const float* xsum, int64_t t0,
                            int64_t t1, float* y, int64_t ldy);
using GemvF32Fn = void (*)(const QW& w, const float* a, int64_t lda, int rows, const float* xsum, int64_t t0,
                           int64_t t1, float* y, int64_t ldy);

// W8A8: int8 weights in vpdpbusd layout (qpack.h), int8 activations xq [rows][kq] (ld ldq) with
// per-row scales sx. c[r][j] = (float(Σ_i xq[r][i]·w[o][i]) · sx[r]) · sw[o], o = 32·block + j:
// the integer sum is exact, the two products are rounded in this order (bitwise = the reference).
struct W8 {
  const int8_t* w = nullptr;
  const int32_t* colsum = nullptr;
  const float* scale = nullptr;
  int64_t kq = 0;
};
// scratch: at least 16·kq bytes (the AVX2 kernel widens a block of rows to int16 there).
using W8GemmFn = void (*)(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int64_t rows, int64_t block,
                          float* c, int64_t ldc, void* scratch);

// One row of W8A8 activations: s = static_scale (> 0), or per token max(absmax, 1e-5) / 127;
// q[i] = clamp(round-half-even(x[i] / s), -128, 127) for i < k, 0 for k <= i < kq. Bitwise
// quantize_act_int8_ref (qgemm.h). Returns false when a value is not finite.
using QuantActFn = bool (*)(const float* x, int64_t k, float static_scale, int8_t* q, int64_t kq, float* scale);

// W4A8 (QActs::Int8, qgemm.h): activations in blocks of 32 packed inputs. quant_blocks quantizes one
// row (kp a multiple of 32): d_b = absmax_b / 127 (0 for an all-zero block), q = clamp(round-half-
// even(x / d_b), -127, 127), qsum_b = Σ q; bitwise quantize_blocks_int8_ref (qgemm.h). With
// kernel_order, xq holds each chunk of 8 inputs as 0 4 1 5 2 6 3 7 (for gemm_a8). Returns false on
// a non-finite value.
using QuantBlocksFn = bool (*)(const float* x, int64_t kp, int8_t* xq, float* d, int32_t* qsum, bool kernel_order);
// Decode with 4-bit codes: a slot pair's dword holds an output's 8 codes of a chunk, so
// v & 0x0f0f0f0f are its inputs 0 4 1 5 and (v >> 4) & 0x0f0f0f0f inputs 2 6 3 7 as u8; the
// activations are shuffled to match and multiplied as s8 (vpdpbusd / vpmaddubsw): exact int32
// Σ_{i∈b} q_i·c_i per block, then y += (s·d_b)·(Σ q c − z·qsum_b), or d_b·(d·Σ q c + m·qsum_b) for
// min-form groups. xq [row][kp] natural order; d, qsum [row][nblk]; tiles [t0, t1), rows <= 4.
using GemvA8Fn = void (*)(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum,
                          int64_t nblk, int rows, int64_t t0, int64_t t1, float* y, int64_t ldy);

// W4A8 prefill (null where the ISA has none: the dispatcher then runs the W4A16 kernels on d·q):
// c[r][0, 32) for the 32 outputs of `block`, all rows; xq in kernel order (within each chunk of 8
// inputs: 0 4 1 5 2 6 3 7), d and qsum [row][nblk]; same arithmetic as gemv_a8. gemm_a8_s8: the
// same for 8-bit codes, xq in natural order.
using GemmA8Fn = void (*)(const QW& w, const int8_t* xq, int64_t ldq, const float* d, const int32_t* qsum, int64_t nblk,
                          int64_t rows, int64_t block, float* c, int64_t ldc);

// Decode GEMV on the float weights oneDNN packed for its brgemm (gemm.cpp): y[64·b + j] =
// Σ_i x[i]·W(64·b + j, i) for the 64-output blocks b in [b0, b1). Layouts (oneDNN format tags on
// Wᵀ [k, n], both dims padded with zeros): bf16 BA16a64b2a = [n/64][kpad/32][16][64][2] (pairs of
// inputs per output, the vdpbf16ps operand), f32 BA16a64b = [n/64][kpad/16][16][64]; either way
// one 64-output block is one contiguous stream of kpad·64 weights. x: kpad values, zero-padded.
using GemvBlockedBf16Fn = void (*)(const uint16_t* w, const uint16_t* x, int64_t kpad, int64_t b0, int64_t b1, float* y);
using GemvBlockedF32Fn = void (*)(const float* w, const float* x, int64_t kpad, int64_t b0, int64_t b1, float* y);

// Decode with 8-bit codes (GGUF Q8_0, W8 groups) × QActs::Int8 activations: gemv_a8's contract and
// arithmetic (exact int32 Σ q·code per 32-input block, then the same f32 steps; bitwise
// qgemm_int8_blocks_ref), the codes read as quads of one output's inputs (AVX-512: vpermw pairs ->
// u8 quads for vpdpbusd; AVX2: vpunpck*wd -> s8 quads, llama.cpp's sign trick for vpmaddubsw), each
// tile one contiguous stream, 2-4 tiles at a time. Null where the ISA has none.
// W8A8 decode (rows <= 4): c as w8a8 computes it, for the outputs of tiles [t0, t1) (t0, t1 even),
// y[r·ldy + 16·t + j]; xq [rows][ldq], sx [rows]. Null: w8a8 per 32-output block.
using W8GemvFn = void (*)(const W8& w, const int8_t* xq, int64_t ldq, const float* sx, int rows, int64_t t0, int64_t t1,
                          float* y, int64_t ldy);

// Float weights kept as 16-bit rows (gemm.h HalfStorage::Rows): W [n, k] row-major bf16 or f16
// bits, f32 activations x [rows][ldx]; y[r·ldy + o] = Σ_i x[r][i]·W(o, i) for outputs o in
// [o0, o1), with W widened in registers (exact) and f32 FMAs. Bound by reading W once (2 bytes a
// weight).
using GemvHalfRowsFn = void (*)(const uint16_t* w, int64_t k, const float* x, int64_t ldx, int rows, int64_t o0,
                                int64_t o1, float* y, int64_t ldy);

struct Kernels {
  GemmBf16Fn gemm_bf16;
  GemmF32Fn gemm_f32;
  GemvBf16Fn gemv_bf16;
  GemvF32Fn gemv_f32;
  W8GemmFn w8a8;
  QuantActFn quant_act;
  QuantBlocksFn quant_blocks;
  GemvA8Fn gemv_a8;
  GemmA8Fn gemm_a8;
  GemvBlockedBf16Fn gemv_blocked_bf16;  // null: not on this ISA (oneDNN runs the product)
  GemvBlockedF32Fn gemv_blocked_f32;
  GemvA8Fn gemv_a8_s8;        // null: 8-bit codes run gemm_a8 (or x' = d·q) at decode sizes
  W8GemvFn w8a8_gemv;         // null: W8A8 decode runs w8a8 per 32-output block
  GemvHalfRowsFn gemv_bf16_rows;  // null: the AVX2 kernel runs (memory-bound; AVX-512 reads no faster)
  GemvHalfRowsFn gemv_f16_rows;   // same for f16 rows (vcvtph2ps)
  GemmA8Fn gemm_a8_s8;  // prefill with 8-bit codes; null: the W8A16 kernels on x' = d·q (faster on AVX2)
};
const Kernels& kernels_avx512();
const Kernels& kernels_avx2();

}  // namespace calq::qk
