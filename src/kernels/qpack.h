// The packed forms of quantized weights that calq's quantized kernels (kernels/qgemm.h) read, and
// their construction from every source: group-quantized codes (calq's QuantizedWeight from RTN,
// GPTQ or AWQ; GPTQ/AWQ checkpoints after unpacking), GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 blocks, and
// per-channel int8 weights for W8A8. Packing copies codes and scales only: no float copy of W.
//
// QPacked (W4A16 / W8A16), for W [n, k] (n outputs, k inputs):
//   * Input order. Columns are reordered so that each quantization group is contiguous (act-order
//     g_idx: sorted by group, stable) and each group is padded to a multiple of 8 columns; `perm`
//     maps packed column i to its source column (-1: padding, multiplied by a zero activation).
//     The activations are gathered through `perm` when they are packed for the kernel (once per
//     call, rows × kp). Without act-order and with groups a multiple of 8, perm is empty (identity)
//     and only the tail of k is padded.
//   * Codes. Outputs are grouped in tiles of 16, inputs in chunks of 8 (4 pairs). A tile-chunk holds
//     32 "slots" s = 2j + t: output j of the tile at input 2p + t of pair p. 4-bit storage: 64 bytes,
//     16-bit word s holds pair p in bits [4p, 4p + 4) (so the four pairs come out with one shift and
//     mask each, already in the (output, input-pair) order of vdpbf16ps). 8-bit storage: 128
//     bytes, byte 32p + s. 5-bit storage (ggml Q5_*): the 4-bit layout plus 16 bytes of high bits,
//     bit 32p + s. Layout [tile][chunk][bytes]; tiles are padded to an even count (32-column blocks).
//   * Per (tile, group, output): scale (f16 when every scale is exactly an f16, else f32), and the
//     zero point (f16; or one constant for symmetric formats) or, for ggml *_1, the min (f16).
//   * Dequantization, THE definition: w = scale · (q − zero)  (f32 ops in this order, as
//     QuantizedWeight::dequantize and ggml's Q4_0/Q5_0/Q8_0), or w = d · q + m (ggml Q4_1/Q5_1),
//     a multiply then an add, as ggml::dequantize_row_q4_1.
//
// W8A8Packed: int8 weights [n, k] with a per-output f32 scale, in the layout of vpdpbusd: tiles of 16
// outputs × quads of 4 inputs (64 bytes: dword j = output j's 4 inputs), k padded to a multiple of 4
// with zeros, and Σ_k w per output (the u8-shift compensation, see qgemm.h).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "io/ggml_quants.h"

namespace calq {

// A group-quantized weight as its producer holds it (calq's QuantizedWeight; GPTQ/AWQ after
// unpacking): W[o][c] = scale[o][g] * (q[o][c] - zero[o][g]), g = g_idx[c] (or c / group_size).
struct QuantCodesView {
  int bits = 4;                    // 2..8
  int64_t rows = 0, cols = 0;      // [out, in]
  const uint8_t* q = nullptr;      // rows*cols codes in [0, 2^bits), row-major
  const float* scale = nullptr;    // rows*groups
  const float* zero = nullptr;     // rows*groups, integral values in [0, 2^bits)
  int64_t groups = 1;
  const int32_t* g_idx = nullptr;  // cols entries (act-order); null: c / group_size
  int group_size = -1;             // when g_idx is null; -1: one group per row
};

// 64-byte aligned, zero-initialised bytes, or a view of some of another AlignedBytes' bytes that
// shares their ownership (the members of a stacked weight, qgemm.h stack_quantized, point into the
// stacked codes instead of keeping their own copy). Copies share the bytes (they are written only
// while a weight is being packed).
class AlignedBytes {
 public:
  AlignedBytes() = default;
  explicit AlignedBytes(size_t n);
  uint8_t* data() { return p_.get(); }
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return n_; }
  // Bytes [offset, offset + n) (offset a multiple of 64 keeps them aligned), kept alive by the view.
  AlignedBytes view(size_t offset, size_t n) const;

 private:
  std::shared_ptr<uint8_t> p_;
  size_t n_ = 0;
};

constexpr int kQTileN = 16;   // outputs per tile
constexpr int kQChunkK = 8;   // inputs per chunk

struct QPacked {
  int64_t n = 0, k = 0;
  int64_t kp = 0;              // packed input count, a multiple of 8
  int64_t tiles = 0;           // 16-output tiles, even
  int bits = 4;                // the codes' bits (<= storage)
  int storage = 4;             // 4, 5 or 8 bits per stored code
  bool min_form = false;       // w = d*q + m instead of s*(q - z)
  bool zero_const = false;     // one zero point for all groups: zero_value
  float zero_value = 0.0f;
  bool scale_f16 = false;
  int64_t groups = 0;
  std::vector<int32_t> chunk_group;  // kp/8: group of each chunk
  std::vector<int32_t> perm;         // kp: source column (-1 padding); empty: identity + zero tail
  AlignedBytes codes;                // [tiles][kp/8][chunk_bytes()]
  AlignedBytes hbits;                // 5-bit storage: [tiles][kp/8][16]
  AlignedBytes scales;               // [tiles][groups][16] f16 or f32
  AlignedBytes zeros;                // [tiles][groups][16] f16 (zero or min); empty when zero_const

  int64_t chunks() const { return kp / kQChunkK; }
  // Every group spans whole blocks of 32 packed inputs (int8 activation blocks never straddle groups).
  bool blocks32_aligned() const;
  int chunk_bytes() const { return storage == 8 ? 128 : 64; }
  size_t bytes() const { return codes.size() + hbits.size() + scales.size() + zeros.size() + perm.size() * 4 + chunk_group.size() * 4; }
  // Code, scale and zero/min of output o at packed input i (the reference accessors).
  uint32_t code(int64_t o, int64_t i) const;
  float scale(int64_t o, int64_t g) const;
  float zero(int64_t o, int64_t g) const;  // the zero point, or the min (min_form)
  // The dequantized weight of output o at packed input i (see the definition above).
  float weight(int64_t o, int64_t i) const;
};

// Throws ArgError on inconsistent views (sizes, codes out of range, g_idx out of range), naming `what`.
// group_align: each group padded to a multiple of 8 inputs, or of 32 (int8 activation blocks,
// QActs::Int8 in qgemm.h).
QPacked qpack_codes(const QuantCodesView& w, const char* what = "weight", int group_align = kQChunkK);
// GGUF rows: n rows of k elements of type t (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; k a multiple of 32).
// UnsupportedError for other types.
QPacked qpack_ggml(ggml::Type t, const void* data, int64_t n, int64_t k, const char* what = "weight");
// W [n, k] float in the original column order: the producer's dequantization, bitwise.
void qpacked_dequantize(const QPacked& p, float* w);

struct W8A8Packed {
  int64_t n = 0, k = 0, kq = 0, tiles = 0;  // kq: k padded to a multiple of 4; tiles even
  AlignedBytes w;               // int8 [tiles][kq/4][16][4]
  std::vector<float> scale;     // tiles*16 (0 for padding outputs)
  std::vector<int32_t> colsum;  // tiles*16: sum over k of w
  size_t bytes() const { return w.size() + scale.size() * 4 + colsum.size() * 4; }
  int8_t weight(int64_t o, int64_t i) const;
};
// int8 weights [n, k] row-major with one scale per output: W ≈ scale[o] · w[o][c].
W8A8Packed w8a8_pack(const int8_t* w, const float* scale, int64_t n, int64_t k);
// From 8-bit symmetric per-channel codes (bits 8, one group, zero 128: w = q - 128).
W8A8Packed w8a8_pack(const QuantCodesView& v, const char* what = "weight");

}  // namespace calq
