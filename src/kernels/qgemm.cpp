// Dispatcher of the quantized products (qgemm.h): packs the activations for the kernel (gather
// through the input permutation, bf16 rounding, int8 quantization), splits the outputs across
// threads, calls the ISA's micro-kernels (qkern.h) and applies bias and epilogue per block while
// it is in cache. The scalar path (no AVX2) and the references live here too.
#include "kernels/qgemm.h"

// The W8A8 epilogue and reference must round exactly alike (no fused multiply-add).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <omp.h>
#if defined(__F16C__)
#include <immintrin.h>  // widen_half: vcvtph2ps
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/isa.h"
#include "kernels/ops.h"
#include "kernels/profile.h"
#include "kernels/qkern.h"
#include "kernels/vec.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace calq {

namespace {

constexpr int kGemvRows = 4;          // up to this many rows run the streaming (decode) kernels
constexpr double kParallelFlops = 4e6;  // smaller products run on one thread (as gemm.cpp)

enum Slot { kActs, kBlockOut, kPanel, kSums, kRaw, kEpilogue, kQuantActs, kActScales, kBlockSums, kFakeActs, kWidened, kSlots };

// Per-thread scratch that only grows, 64-byte aligned.
template <class T>
T* scratch(Slot s, size_t n) {
  thread_local std::vector<AlignedBytes> bufs(kSlots);
  AlignedBytes& b = bufs[size_t(s)];
  if (b.size() < n * sizeof(T)) b = AlignedBytes(std::max<size_t>(n * sizeof(T), 64));
  return reinterpret_cast<T*>(b.data());
}

bool serial_product(int64_t rows, int64_t n, int64_t k) {
  return omp_in_parallel() || 2.0 * double(rows) * double(n) * double(k) < kParallelFlops;
}

// Decode (few rows) is bound by reading the weights, not by FLOPs: split across threads whenever
// there are more than 256 KiB of them (a llama-1b k_proj or v_proj: 0.5 MiB at 4 bits, 2 MiB bf16;
// by the FLOP rule above they ran on one thread while the other idled).
bool serial_gemv(size_t weight_bytes) { return omp_in_parallel() || weight_bytes < (size_t(256) << 10); }


const qk::Kernels& kernels_for(Isa isa) { return isa == Isa::Avx512 ? qk::kernels_avx512() : qk::kernels_avx2(); }

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// Source column of packed input i, or -1 (padding).
inline int64_t source_col(const QPacked& p, int64_t i) { return p.perm.empty() ? (i < p.k ? i : -1) : p.perm[size_t(i)]; }

// Activation rows for the kernels, [rows][ld] with packed inputs [0, kp) (zeros in padding) and
// zeros in [kp, ld): f32 (bf16-rounded when `round`) or bf16.
void gather_f32(const QPacked& p, const float* x, const uint16_t* xb, int64_t rows, bool round, float* dst, int64_t ld,
                bool serial) {
#pragma omp parallel for schedule(static) if (!serial && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dst + r * ld;
    if (p.perm.empty()) {
      if (x) std::memcpy(d, x + r * p.k, size_t(p.k) * 4);
      else for (int64_t i = 0; i < p.k; ++i) d[i] = bf16_to_f32(xb[r * p.k + i]);
      std::fill(d + p.k, d + ld, 0.0f);
    } else {
      for (int64_t i = 0; i < p.kp; ++i) {
        const int64_t c = p.perm[size_t(i)];
        d[i] = c < 0 ? 0.0f : (x ? x[r * p.k + c] : bf16_to_f32(xb[r * p.k + c]));
      }
      std::fill(d + p.kp, d + ld, 0.0f);
    }
    if (round && x)
      for (int64_t i = 0; i < p.kp; ++i) d[i] = round_bf16(d[i]);
  }
}

void gather_bf16(const QPacked& p, const float* x, const uint16_t* xb, int64_t rows, uint16_t* dst, int64_t ld, bool serial) {
#pragma omp parallel for schedule(static) if (!serial && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    uint16_t* d = dst + r * ld;
    if (p.perm.empty()) {
      if (x) f32_to_bf16_n(x + r * p.k, d, p.k);
      else std::memcpy(d, xb + r * p.k, size_t(p.k) * 2);
      std::fill(d + p.k, d + ld, uint16_t(0));
    } else {
      for (int64_t i = 0; i < p.kp; ++i) {
        const int64_t c = p.perm[size_t(i)];
        d[i] = c < 0 ? uint16_t(0) : (x ? f32_to_bf16(x[r * p.k + c]) : xb[r * p.k + c]);
      }
      std::fill(d + p.kp, d + ld, uint16_t(0));
    }
  }
}

// xsum[r·groups + g] = Σ of row r's packed activations in group g.
template <class T, class ToF>
void group_sums(const QPacked& p, const T* a, int64_t ld, int64_t rows, float* xsum, ToF to_f) {
  std::fill(xsum, xsum + rows * p.groups, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < p.chunks(); ++c) {
      float s = 0.0f;
      for (int i = 0; i < kQChunkK; ++i) s += to_f(a[r * ld + c * kQChunkK + i]);
      xsum[r * p.groups + p.chunk_group[size_t(c)]] += s;
    }
}

// y[r][col0 + j] = epilogue(c[r][j] + bias[col0 + j]), j < width (gemm.h's order: bias, then
// accumulate, then act·mul; as oneDNN's sum / eltwise / binary post-ops in gemm.cpp).
void epilogue(const float* c, int64_t ldc, int64_t rows, int64_t col0, int64_t width, const float* bias,
              const GemmEpilogue& e, float* y, uint16_t* yb, int64_t ldy) {
  if (!bias && !e.accumulate && !e.gated && y) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * ldy + col0, c + r * ldc, size_t(width) * 4);
    return;
  }
  float* t = scratch<float>(kEpilogue, size_t(2 * width));
  float* m = t + width;
  for (int64_t r = 0; r < rows; ++r) {
    const float* cr = c + r * ldc;
    if (bias)
      for (int64_t j = 0; j < width; ++j) t[j] = cr[j] + bias[col0 + j];
    else
      std::memcpy(t, cr, size_t(width) * 4);
    const int64_t at = r * ldy + col0;
    if (e.accumulate) {
      if (y)
        for (int64_t j = 0; j < width; ++j) t[j] += y[at + j];
      else
        for (int64_t j = 0; j < width; ++j) t[j] += bf16_to_f32(yb[at + j]);
    }
    if (e.gated) {
      const float* mr = e.mul ? e.mul + at : m;
      if (!e.mul)
        for (int64_t j = 0; j < width; ++j) m[j] = bf16_to_f32(e.mul_bf16[at + j]);
      gated_act(t, mr, width, e.act);
    }
    if (y)
      std::memcpy(y + at, t, size_t(width) * 4);
    else
      f32_to_bf16_n(t, yb + at, width);
  }
}

void check_io(const char* what, const float* x, const uint16_t* xb, const float* y, const uint16_t* yb, const GemmEpilogue& e,
              bool bf16_ok) {
  if ((x == nullptr) == (xb == nullptr) || (y == nullptr) == (yb == nullptr))
    throw ArgError(std::string(what) + ": give exactly one input and one output");
  if ((xb || yb) && !bf16_ok) throw ArgError(std::string(what) + ": bf16 input/output needs a weight packed for bf16");
  if (e.gated && (e.mul == nullptr) == (e.mul_bf16 == nullptr))
    throw ArgError(std::string(what) + ": a gated epilogue needs exactly one multiplier (mul or mul_bf16)");
}

// Outputs of a block-product split into super-blocks of up to 8 blocks (256 outputs): each thread
// computes one into its buffer and applies bias and epilogue while it is in cache. The buffer's
// row stride is 256 + 16 floats: writing the kernels' tiles straight into y, whose row stride is a
// power of two (2048, 8192), put a tile's 12 rows into one L1/L2 set and cost 18 % (measured).
template <class RangeFn>
void run_superblocks(int64_t rows, int64_t n, int64_t blocks, bool serial, const float* bias, const GemmEpilogue& e,
                     float* y, uint16_t* yb, RangeFn&& range) {
  const int64_t threads = serial ? 1 : omp_get_max_threads();
  const int64_t per = std::clamp<int64_t>((blocks + 4 * threads - 1) / (4 * threads), 1, qk::kMaxGemmBlocks);
  const int64_t supers = (blocks + per - 1) / per;
#pragma omp parallel for schedule(static) if (!serial && supers > 1)
  for (int64_t s = 0; s < supers; ++s) {
    const int64_t b0 = s * per, b1 = std::min(blocks, b0 + per);
    const int64_t col0 = 32 * b0, width = std::min(n, 32 * b1) - col0;
    const int64_t ldc = 32 * (b1 - b0) + 16;
    float* c = scratch<float>(kBlockOut, size_t(rows * ldc));
    range(b0, b1, c, ldc);
    epilogue(c, ldc, rows, col0, width, bias, e, y, yb, n);
  }
}

// The same, one block at a time: block(b, c + 32·(b − b0), ldc).
template <class BlockFn>
void run_blocks(int64_t rows, int64_t n, int64_t blocks, bool serial, const float* bias, const GemmEpilogue& e, float* y,
                uint16_t* yb, BlockFn&& block) {
  run_superblocks(rows, n, blocks, serial, bias, e, y, yb, [&](int64_t b0, int64_t b1, float* c, int64_t ldc) {
    for (int64_t b = b0; b < b1; ++b) block(b, c + 32 * (b - b0), ldc);
  });
}

std::string group_text(const QPacked& p) {
  if (p.groups == 1) return "per-channel";
  const int64_t g = p.k / p.groups;
  return "g" + std::to_string(g) + (p.perm.empty() ? "" : " act-order");
}

// ---- W4A16 / W8A16 --------------------------------------------------------------------------------

class QGemmWeight final : public QuantPackedWeight {
 public:
  QGemmWeight(std::shared_ptr<const QPacked> p, ComputeType c, QActs acts) : sp_(std::move(p)), p_(*sp_), c_(c), acts_(acts) {
    if (acts == QActs::Int8 && p_.storage == 5)
      throw UnsupportedError("int8 activations need codes stored in 4 or 8 bits (this weight has 5-bit storage)");
    if (acts == QActs::Int8 && !p_.blocks32_aligned())
      throw UnsupportedError("int8 activations need groups of whole 32-input blocks (pack with group alignment 32)");
  }
  int64_t n() const override { return p_.n; }
  int64_t k() const override { return p_.k; }
  ComputeType compute() const override { return c_; }
  size_t bytes() const override { return p_.bytes(); }
  std::string describe() const override {
    return "w" + std::to_string(p_.bits) + " " + group_text(p_) + (p_.min_form ? " min" : p_.zero_const ? " sym" : " asym") +
           (p_.scale_f16 ? " f16-scales" : " f32-scales") + " (" + compute_type_name(c_) +
           (acts_ == QActs::Int8 ? ", int8 activations)" : ")");
  }
  std::shared_ptr<QuantPackedWeight> with_compute(ComputeType c) const override {
    return std::make_shared<QGemmWeight>(sp_, c, acts_);
  }
  void dequantize(float* w) const override { qpacked_dequantize(p_, w); }
  const QPacked& packed() const { return p_; }
  QActs acts() const { return acts_; }

  void run(const float* x, const uint16_t* xb, int64_t rows, const float* bias, const GemmEpilogue& e, float* y,
           uint16_t* yb) const override {
    check_io("quantized gemm", x, xb, y, yb, e, c_ == ComputeType::BF16);
    if (rows <= 0) return;
    KernelTimer timer(KernelKind::Gemm, 2 * rows * p_.n * p_.k);
    const Isa isa = active_isa();
    const bool serial = rows <= kGemvRows ? serial_gemv(p_.bytes()) : serial_product(rows, p_.n, p_.k);
    if (acts_ == QActs::Int8) {
      // Decode: the int8 GEMV for the codes' storage (4-bit: gemv_a8; 8-bit: gemv_a8_s8 where the
      // ISA has one); otherwise the block kernel for the storage (gemm_a8, gemm_a8_s8) where the
      // ISA has one, else x' = d·q through the W4A16/W8A16 kernels.
      if (isa != Isa::Scalar && rows <= kGemvRows && (p_.storage == 4 || (p_.storage == 8 && kernels_for(isa).gemv_a8_s8)))
        return run_gemv_a8(kernels_for(isa), x, xb, rows, bias, e, y, yb, serial);
      const qk::GemmA8Fn prefill =
          isa == Isa::Scalar ? nullptr : p_.storage == 4 ? kernels_for(isa).gemm_a8 : kernels_for(isa).gemm_a8_s8;
      if (prefill) return run_gemm_a8(prefill, x, xb, rows, bias, e, y, yb, serial);
      x = int8_activations(isa, x, xb, rows, serial);  // x' = d·q, then the float-activation paths
      xb = nullptr;
    }
    if (isa == Isa::Scalar) return run_scalar(x, xb, rows, bias, e, y, yb, serial);
    if (rows <= kGemvRows) return run_gemv(kernels_for(isa), x, xb, rows, bias, e, y, yb, serial);
    run_gemm(kernels_for(isa), x, xb, rows, bias, e, y, yb, serial);
  }

 private:
  // QActs::Int8: packed activations -> int8 blocks xq [rows][kp] (natural or kernel order, qkern.h),
  // scales d and sums qsum [rows][kp/32].
  void quantize_blocks(Isa isa, const float* a, int64_t rows, int8_t* xq, float* d, int32_t* qsum, bool serial,
                       bool kernel_order = false) const {
    const int64_t nblk = p_.kp / 32;
    bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite) if (!serial && rows > 1)
    for (int64_t r = 0; r < rows; ++r) {
      const float* ar = a + r * p_.kp;
      int8_t* q = xq + r * p_.kp;
      finite = (isa == Isa::Scalar ? quantize_blocks_int8_ref(ar, p_.kp, q, d + r * nblk, qsum + r * nblk)
                                   : kernels_for(isa).quant_blocks(ar, p_.kp, q, d + r * nblk, qsum + r * nblk, kernel_order)) &&
               finite;
    }
    if (!finite) throw ArgError("quantized gemm: non-finite activation (int8 activations)");
  }

  // Int8-activation prefill: int8 activations (kernel order for 4-bit codes) against the packed
  // codes (qkern.h gemm_a8, gemm_a8_s8).
  void run_gemm_a8(qk::GemmA8Fn gemm_a8, const float* x, const uint16_t* xb, int64_t rows, const float* bias,
                   const GemmEpilogue& e, float* y, uint16_t* yb, bool serial) const {
    const qk::QW w = qk::view_of(p_);
    const int64_t kp = p_.kp, nblk = kp / 32;
    float* a = scratch<float>(kActs, size_t(rows * kp));
    gather_f32(p_, x, xb, rows, false, a, kp, serial);
    int8_t* xq = scratch<int8_t>(kQuantActs, size_t(rows * kp));
    float* d = scratch<float>(kActScales, size_t(rows * nblk));
    int32_t* qsum = scratch<int32_t>(kBlockSums, size_t(rows * nblk));
    quantize_blocks(active_isa(), a, rows, xq, d, qsum, serial, p_.storage == 4);  // 8-bit codes: natural order
    run_blocks(rows, p_.n, p_.tiles / 2, serial, bias, e, y, yb, [&](int64_t b, float* c, int64_t ldc) {
      gemm_a8(w, xq, kp, d, qsum, nblk, rows, b, c, ldc);
    });
  }

  // x' = d_b·q_b in the original input order, [rows][k] f32.
  const float* int8_activations(Isa isa, const float* x, const uint16_t* xb, int64_t rows, bool serial) const {
    const int64_t kp = p_.kp, nblk = kp / 32;
    float* a = scratch<float>(kActs, size_t(rows * kp));
    gather_f32(p_, x, xb, rows, false, a, kp, serial);
    int8_t* xq = scratch<int8_t>(kQuantActs, size_t(rows * kp));
    float* d = scratch<float>(kActScales, size_t(rows * nblk));
    int32_t* qsum = scratch<int32_t>(kBlockSums, size_t(rows * nblk));
    quantize_blocks(isa, a, rows, xq, d, qsum, serial);
    float* out = scratch<float>(kFakeActs, size_t(rows * p_.k));
#pragma omp parallel for schedule(static) if (!serial && rows > 1)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < kp; ++i) {
        const int64_t c = source_col(p_, i);
        if (c >= 0) out[r * p_.k + c] = d[r * nblk + i / 32] * float(xq[r * kp + i]);
      }
    return out;
  }

  void run_gemv_a8(const qk::Kernels& K, const float* x, const uint16_t* xb, int64_t rows, const float* bias,
                   const GemmEpilogue& e, float* y, uint16_t* yb, bool serial) const {
    const qk::QW w = qk::view_of(p_);
    const int64_t kp = p_.kp, nblk = kp / 32;
    float* a = scratch<float>(kActs, size_t(rows * kp));
    gather_f32(p_, x, xb, rows, false, a, kp, true);
    int8_t* xq = scratch<int8_t>(kQuantActs, size_t(rows * kp));
    float* d = scratch<float>(kActScales, size_t(rows * nblk));
    int32_t* qsum = scratch<int32_t>(kBlockSums, size_t(rows * nblk));
    quantize_blocks(active_isa(), a, rows, xq, d, qsum, true);
    const int64_t ldr = p_.tiles * kQTileN;
    float* raw = scratch<float>(kRaw, size_t(rows * ldr));
    const int64_t pairs = p_.tiles / 2;
#pragma omp parallel if (!serial)
    {
      const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
      const int64_t p0 = pairs * tid / nth, p1 = pairs * (tid + 1) / nth;
      if (p0 < p1) {
        (p_.storage == 8 ? K.gemv_a8_s8 : K.gemv_a8)(w, xq, kp, d, qsum, nblk, int(rows), 2 * p0, 2 * p1, raw, ldr);
        const int64_t col0 = 32 * p0, width = std::min(p_.n, 32 * p1) - col0;
        if (width > 0) epilogue(raw + col0, ldr, rows, col0, width, bias, e, y, yb, p_.n);
      }
    }
  }

  void run_gemm(const qk::Kernels& K, const float* x, const uint16_t* xb, int64_t rows, const float* bias,
                const GemmEpilogue& e, float* y, uint16_t* yb, bool serial) const {
    const qk::QW w = qk::view_of(p_);
    const bool bf = c_ == ComputeType::BF16;
    // Row strides off multiples of 4 KiB: 12 rows read together would share one L1 set.
    if (bf && K.gemm_bf16) {
      const int64_t lda = p_.kp + 32;
      uint16_t* a = scratch<uint16_t>(kActs, size_t(rows * lda));
      gather_bf16(p_, x, xb, rows, a, lda, serial);
      run_superblocks(rows, p_.n, p_.tiles / 2, serial, bias, e, y, yb, [&](int64_t b0, int64_t b1, float* c, int64_t ldc) {
        K.gemm_bf16(w, a, lda, rows, b0, b1 - b0, c, ldc, scratch<uint8_t>(kPanel, qk::kPanelBytes));
      });
    } else {
      const int64_t lda = p_.kp + 16;
      float* a = scratch<float>(kActs, size_t(rows * lda));
      gather_f32(p_, x, xb, rows, bf, a, lda, serial);
      run_blocks(rows, p_.n, p_.tiles / 2, serial, bias, e, y, yb, [&](int64_t b, float* c, int64_t ldc) {
        K.gemm_f32(w, a, lda, rows, b, c, ldc, scratch<uint8_t>(kPanel, qk::kPanelBytes), bf);
      });
    }
  }

  void run_gemv(const qk::Kernels& K, const float* x, const uint16_t* xb, int64_t rows, const float* bias,
                const GemmEpilogue& e, float* y, uint16_t* yb, bool serial) const {
    const qk::QW w = qk::view_of(p_);
    const bool bf = c_ == ComputeType::BF16;
    const bool use_bf16 = bf && K.gemv_bf16 && p_.storage != 8;
    const int64_t ld = p_.kp;
    float* xsum = scratch<float>(kSums, size_t(rows * p_.groups));
    const uint16_t* a16 = nullptr;
    const float* a32 = nullptr;
    if (use_bf16) {
      uint16_t* a = scratch<uint16_t>(kActs, size_t(rows * ld));
      gather_bf16(p_, x, xb, rows, a, ld, true);
      group_sums(p_, a, ld, rows, xsum, [](uint16_t v) { return bf16_to_f32(v); });
      a16 = a;
    } else {
      float* a = scratch<float>(kActs, size_t(rows * ld));
      gather_f32(p_, x, xb, rows, bf, a, ld, true);
      group_sums(p_, a, ld, rows, xsum, [](float v) { return v; });
      a32 = a;
    }
    const int64_t ldr = p_.tiles * kQTileN;
    float* raw = scratch<float>(kRaw, size_t(rows * ldr));
    const int64_t pairs = p_.tiles / 2;
#pragma omp parallel if (!serial)
    {
      const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
      const int64_t p0 = pairs * tid / nth, p1 = pairs * (tid + 1) / nth;
      if (p0 < p1) {
        if (use_bf16)
          K.gemv_bf16(w, a16, ld, int(rows), xsum, 2 * p0, 2 * p1, raw, ldr);
        else
          K.gemv_f32(w, a32, ld, int(rows), xsum, 2 * p0, 2 * p1, raw, ldr);
        const int64_t col0 = 32 * p0, width = std::min(p_.n, 32 * p1) - col0;
        if (width > 0) epilogue(raw + col0, ldr, rows, col0, width, bias, e, y, yb, p_.n);
      }
    }
  }

  // No AVX2: per output, the dequantized weights (exact) against every row, f32 accumulation.
  void run_scalar(const float* x, const uint16_t* xb, int64_t rows, const float* bias, const GemmEpilogue& e, float* y,
                  uint16_t* yb, bool serial) const {
    const int64_t ld = p_.kp;
    float* a = scratch<float>(kActs, size_t(rows * ld));
    gather_f32(p_, x, xb, rows, c_ == ComputeType::BF16, a, ld, serial);
    float* raw = scratch<float>(kRaw, size_t(rows * p_.n));
#pragma omp parallel for schedule(static) if (!serial)
    for (int64_t o = 0; o < p_.n; ++o) {
      float* wcol = scratch<float>(kPanel, size_t(ld));
      for (int64_t i = 0; i < ld; ++i) wcol[i] = source_col(p_, i) < 0 ? 0.0f : p_.weight(o, i);
      for (int64_t r = 0; r < rows; ++r) {
        float s = 0.0f;
        for (int64_t i = 0; i < ld; ++i) s += a[r * ld + i] * wcol[i];
        raw[r * p_.n + o] = s;
      }
    }
    epilogue(raw, p_.n, rows, 0, p_.n, bias, e, y, yb, p_.n);
  }

  std::shared_ptr<const QPacked> sp_;  // shared by with_compute() copies
  const QPacked& p_;
  ComputeType c_;
  QActs acts_;
};

// ---- W8A8 -----------------------------------------------------------------------------------------

class W8A8Weight final : public QuantPackedWeight {
 public:
  W8A8Weight(std::shared_ptr<const W8A8Packed> p, const W8A8Options& o, ComputeType c)
      : sp_(std::move(p)), p_(*sp_), o_(o), c_(c) {
    if (o.act == W8A8Act::PerTensorStatic && !(o.static_scale > 0.0f && std::isfinite(o.static_scale)))
      throw ArgError("W8A8: a static activation scale must be positive and finite");
  }
  int64_t n() const override { return p_.n; }
  int64_t k() const override { return p_.k; }
  ComputeType compute() const override { return c_; }
  size_t bytes() const override { return p_.bytes(); }
  std::string describe() const override {
    return std::string("w8a8 ") + (o_.act == W8A8Act::PerToken ? "per-token" : "per-tensor-static");
  }
  std::shared_ptr<QuantPackedWeight> with_compute(ComputeType c) const override {
    return std::make_shared<W8A8Weight>(sp_, o_, c);
  }
  const W8A8Packed& packed() const { return p_; }
  const W8A8Options& options() const { return o_; }
  void dequantize(float* w) const override {
    for (int64_t o = 0; o < p_.n; ++o)
      for (int64_t i = 0; i < p_.k; ++i) w[o * p_.k + i] = p_.scale[size_t(o)] * float(p_.weight(o, i));
  }

  void run(const float* x, const uint16_t* xb, int64_t rows, const float* bias, const GemmEpilogue& e, float* y,
           uint16_t* yb) const override {
    check_io("w8a8 gemm", x, xb, y, yb, e, c_ == ComputeType::BF16);
    if (rows <= 0) return;
    KernelTimer timer(KernelKind::Gemm, 2 * rows * p_.n * p_.k);
    const bool serial = rows <= kGemvRows ? serial_gemv(p_.bytes()) : serial_product(rows, p_.n, p_.k);
    if (xb) {  // bf16 -> f32 is exact; quantize from there
      float* xf = scratch<float>(kActs, size_t(rows * p_.k));
      for (int64_t i = 0; i < rows * p_.k; ++i) xf[i] = bf16_to_f32(xb[i]);
      x = xf;
    }
    int8_t* xq = scratch<int8_t>(kQuantActs, size_t(rows * p_.kq));
    float* sx = scratch<float>(kActScales, size_t(rows));
    quantize_act_int8(x, rows, p_.k, o_, xq, p_.kq, sx);
    const Isa isa = active_isa();
    if (isa == Isa::Scalar) {
      float* raw = scratch<float>(kRaw, size_t(rows * p_.n));
#pragma omp parallel for schedule(static) if (!serial)
      for (int64_t o = 0; o < p_.n; ++o)
        for (int64_t r = 0; r < rows; ++r) {
          int32_t acc = 0;
          for (int64_t i = 0; i < p_.k; ++i) acc += int32_t(xq[r * p_.kq + i]) * int32_t(p_.weight(o, i));
          raw[r * p_.n + o] = float(acc) * sx[r] * p_.scale[size_t(o)];
        }
      epilogue(raw, p_.n, rows, 0, p_.n, bias, e, y, yb, p_.n);
      return;
    }
    const qk::Kernels& K = kernels_for(isa);
    qk::W8 w;
    w.w = reinterpret_cast<const int8_t*>(p_.w.data());
    w.colsum = p_.colsum.data();
    w.scale = p_.scale.data();
    w.kq = p_.kq;
    if (rows <= kGemvRows && K.w8a8_gemv) return run_gemv(K, w, xq, sx, rows, bias, e, y, yb, serial);
    run_blocks(rows, p_.n, p_.tiles / 2, serial, bias, e, y, yb, [&](int64_t b, float* c, int64_t ldc) {
      K.w8a8(w, xq, p_.kq, sx, rows, b, c, ldc, scratch<uint8_t>(kPanel, size_t(16 * p_.kq)));
    });
  }

 private:
  // Decode: each thread one contiguous range of tile pairs (one stream of weights), as QGemmWeight.
  void run_gemv(const qk::Kernels& K, const qk::W8& w, const int8_t* xq, const float* sx, int64_t rows, const float* bias,
                const GemmEpilogue& e, float* y, uint16_t* yb, bool serial) const {
    const int64_t ldr = p_.tiles * kQTileN, pairs = p_.tiles / 2;
    float* raw = scratch<float>(kRaw, size_t(rows * ldr));
#pragma omp parallel if (!serial)
    {
      const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
      const int64_t p0 = pairs * tid / nth, p1 = pairs * (tid + 1) / nth;
      if (p0 < p1) {
        K.w8a8_gemv(w, xq, p_.kq, sx, int(rows), 2 * p0, 2 * p1, raw, ldr);
        const int64_t col0 = 32 * p0, width = std::min(p_.n, 32 * p1) - col0;
        if (width > 0) epilogue(raw + col0, ldr, rows, col0, width, bias, e, y, yb, p_.n);
      }
    }
  }

  std::shared_ptr<const W8A8Packed> sp_;
  const W8A8Packed& p_;
  W8A8Options o_;
  ComputeType c_;
};

// ---- stacking (q|k|v, gate|up) ----------------------------------------------------------------------

// The parts' bytes one after the other, and each part again as a view into them (`views`).
AlignedBytes concat(const std::vector<const AlignedBytes*>& parts, std::vector<AlignedBytes>& views) {
  size_t total = 0;
  for (const AlignedBytes* b : parts) total += b->size();
  AlignedBytes all(total);
  size_t off = 0;
  for (const AlignedBytes* b : parts) {
    if (b->size()) std::memcpy(all.data() + off, b->data(), b->size());
    views.push_back(all.view(off, b->size()));
    off += b->size();
  }
  return all;
}

bool same_input_layout(const QPacked& a, const QPacked& b) {
  return a.k == b.k && a.kp == b.kp && a.bits == b.bits && a.storage == b.storage && a.min_form == b.min_form &&
         a.zero_const == b.zero_const && (!a.zero_const || a.zero_value == b.zero_value) && a.scale_f16 == b.scale_f16 &&
         a.groups == b.groups && a.chunk_group == b.chunk_group && a.perm == b.perm;
}

// Every member but the last fills whole 32-output blocks (tiles are padded to an even count).
template <class P>
bool whole_blocks(const std::vector<const P*>& ps) {
  for (size_t i = 0; i + 1 < ps.size(); ++i)
    if (ps[i]->n % (2 * kQTileN)) return false;
  return true;
}

QuantStack stack_qgemm(const std::vector<const QGemmWeight*>& ws, ComputeType c) {
  std::vector<const QPacked*> ps;
  for (const QGemmWeight* w : ws) {
    if (!same_input_layout(w->packed(), ws[0]->packed()) || w->acts() != ws[0]->acts()) return {};
    ps.push_back(&w->packed());
  }
  if (!whole_blocks(ps)) return {};
  // Tiles are the outer index of codes, hbits, scales and zeros: each member is one contiguous range.
  std::vector<const AlignedBytes*> codes, hbits, scales, zeros;
  auto st = std::make_shared<QPacked>(*ps[0]);  // the input layout (codes replaced below)
  st->n = st->tiles = 0;
  for (const QPacked* p : ps) {
    st->n += p->n;
    st->tiles += p->tiles;
    codes.push_back(&p->codes), hbits.push_back(&p->hbits), scales.push_back(&p->scales), zeros.push_back(&p->zeros);
  }
  std::vector<AlignedBytes> vc, vh, vs, vz;
  st->codes = concat(codes, vc), st->hbits = concat(hbits, vh), st->scales = concat(scales, vs), st->zeros = concat(zeros, vz);
  QuantStack r;
  r.stacked = std::make_shared<QGemmWeight>(st, c, ws[0]->acts());
  for (size_t i = 0; i < ps.size(); ++i) {
    auto m = std::make_shared<QPacked>(*ps[i]);
    m->codes = vc[i], m->hbits = vh[i], m->scales = vs[i], m->zeros = vz[i];
    r.members.push_back(std::make_shared<QGemmWeight>(m, ws[i]->compute(), ws[i]->acts()));
  }
  return r;
}

QuantStack stack_w8a8(const std::vector<const W8A8Weight*>& ws, ComputeType c) {
  std::vector<const W8A8Packed*> ps;
  const W8A8Options& o = ws[0]->options();
  for (const W8A8Weight* w : ws) {
    const W8A8Packed& p = w->packed();
    if (p.k != ws[0]->packed().k || w->options().act != o.act || w->options().static_scale != o.static_scale) return {};
    ps.push_back(&p);
  }
  if (!whole_blocks(ps)) return {};
  std::vector<const AlignedBytes*> parts;
  auto st = std::make_shared<W8A8Packed>();
  st->k = ps[0]->k, st->kq = ps[0]->kq;
  for (const W8A8Packed* p : ps) {
    st->n += p->n;
    st->tiles += p->tiles;
    parts.push_back(&p->w);
    st->scale.insert(st->scale.end(), p->scale.begin(), p->scale.end());
    st->colsum.insert(st->colsum.end(), p->colsum.begin(), p->colsum.end());
  }
  std::vector<AlignedBytes> views;
  st->w = concat(parts, views);
  QuantStack r;
  r.stacked = std::make_shared<W8A8Weight>(st, o, c);
  for (size_t i = 0; i < ps.size(); ++i) {
    auto m = std::make_shared<W8A8Packed>(*ps[i]);
    m->w = views[i];
    r.members.push_back(std::make_shared<W8A8Weight>(m, o, ws[i]->compute()));
  }
  return r;
}

}  // namespace

QuantStack stack_quantized(const std::vector<const QuantPackedWeight*>& members, ComputeType c) {
  if (members.size() < 2) return {};
  std::vector<const QGemmWeight*> q;
  std::vector<const W8A8Weight*> w8;
  for (const QuantPackedWeight* m : members) {
    if (auto* a = dynamic_cast<const QGemmWeight*>(m)) q.push_back(a);
    else if (auto* b = dynamic_cast<const W8A8Weight*>(m)) w8.push_back(b);
  }
  if (q.size() == members.size()) return stack_qgemm(q, c);
  if (w8.size() == members.size()) return stack_w8a8(w8, c);
  return {};
}

std::shared_ptr<QuantPackedWeight> pack_quantized(QPacked p, ComputeType c, QActs acts) {
  return std::make_shared<QGemmWeight>(std::make_shared<const QPacked>(std::move(p)), c, acts);
}

std::shared_ptr<QuantPackedWeight> pack_quantized(const QuantCodesView& w, ComputeType c, const char* what, QActs acts) {
  return pack_quantized(qpack_codes(w, what, acts == QActs::Int8 ? 32 : kQChunkK), c, acts);
}

std::shared_ptr<QuantPackedWeight> pack_ggml(ggml::Type t, const void* data, int64_t n, int64_t k, ComputeType c,
                                             const char* what, QActs acts) {
  return pack_quantized(qpack_ggml(t, data, n, k, what), c, acts);
}

bool quantize_blocks_int8_ref(const float* x, int64_t kp, int8_t* q, float* d, int32_t* qsum) {
  bool finite = true;
  for (int64_t b = 0; b < kp / 32; ++b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) {
      finite = finite && std::isfinite(x[32 * b + i]);
      amax = std::max(amax, std::fabs(x[32 * b + i]));
    }
    d[b] = amax / 127.0f;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const float v = amax > 0.0f ? std::clamp(std::nearbyint(x[32 * b + i] / d[b]), -127.0f, 127.0f) : 0.0f;
      q[32 * b + i] = int8_t(std::isfinite(v) ? v : 0.0f);
      sum += q[32 * b + i];
    }
    qsum[b] = sum;
  }
  return finite;
}


bool gemv_onednn_blocked(const void* w, ComputeType c, int64_t n, int64_t k, const float* x, const uint16_t* x_bf16,
                         int64_t rows, const float* bias, const GemmEpilogue& e, float* y, uint16_t* y_bf16) {
  if (rows != 1 || active_isa() != Isa::Avx512) return false;
  const qk::Kernels& K = qk::kernels_avx512();
  const bool bf = c == ComputeType::BF16;
  const int64_t kpad = (k + 31) / 32 * 32, blocks = (n + 63) / 64;  // f32's k block (16) divides 32
  const int64_t kw = bf ? (k + 31) / 32 * 32 : (k + 15) / 16 * 16;   // the layout's padded k
  // The activations, zero-padded (the padding weights are zeros, but 0 · garbage can be NaN).
  void* a = bf ? static_cast<void*>(scratch<uint16_t>(kActs, size_t(kpad))) : static_cast<void*>(scratch<float>(kActs, size_t(kpad)));
  if (bf) {
    uint16_t* ab = static_cast<uint16_t*>(a);
    if (x) f32_to_bf16_n(x, ab, k);
    else std::memcpy(ab, x_bf16, size_t(k) * 2);
    std::fill(ab + k, ab + kpad, uint16_t(0));
  } else {
    float* af = static_cast<float*>(a);
    std::memcpy(af, x, size_t(k) * 4);
    std::fill(af + k, af + kpad, 0.0f);
  }
  float* raw = scratch<float>(kRaw, size_t(blocks * 64));
  const bool serial = serial_gemv(size_t(n * k) * (bf ? 2 : 4));
#pragma omp parallel if (!serial)
  {
    const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t b0 = blocks * tid / nth, b1 = blocks * (tid + 1) / nth;
    if (b0 < b1) {
      if (bf) K.gemv_blocked_bf16(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), kw, b0, b1, raw);
      else K.gemv_blocked_f32(static_cast<const float*>(w), static_cast<const float*>(a), kw, b0, b1, raw);
      const int64_t col0 = 64 * b0, width = std::min(n, 64 * b1) - col0;
      epilogue(raw + col0, 0, 1, col0, width, bias, e, y, y_bf16, n);
    }
  }
  return true;
}

namespace {

// No AVX2: gemv_bf16_rows / gemv_f16_rows's contract in plain C++ (f32 sums in input order).
template <HalfType T>
void gemv_half_rows_scalar(const uint16_t* w, int64_t k, const float* x, int64_t ldx, int rows, int64_t o0, int64_t o1,
                           float* y, int64_t ldy) {
  for (int64_t o = o0; o < o1; ++o)
    for (int r = 0; r < rows; ++r) {
      float s = 0.0f;
      for (int64_t i = 0; i < k; ++i) {
        const uint16_t b = w[o * k + i];
        s += x[r * ldx + i] * (T == HalfType::F16 ? f16_to_f32(b) : bf16_to_f32(b));
      }
      y[r * ldy + o] = s;
    }
}

// Bias and epilogue on columns [col0, col0 + width) of all rows, rows split across threads.
void epilogue_rows(const float* c, int64_t ldc, int64_t rows, int64_t col0, int64_t width, const float* bias,
                   const GemmEpilogue& e, float* y, int64_t ldy, bool serial) {
  const int64_t threads = serial ? 1 : omp_get_max_threads();
#pragma omp parallel for schedule(static) if (threads > 1 && rows > 1)
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t r0 = rows * t / threads, r1 = rows * (t + 1) / threads;
    if (r0 == r1) continue;
    GemmEpilogue et = e;  // the multiplier from row r0 on
    if (e.mul) et.mul = e.mul + r0 * ldy;
    if (e.mul_bf16) et.mul_bf16 = e.mul_bf16 + r0 * ldy;
    epilogue(c + r0 * ldc, ldc, r1 - r0, col0, width, bias, et, y + r0 * ldy, nullptr, ldy);
  }
}

void gemv_half_rows_all(const uint16_t* w, HalfType t, int64_t n, int64_t k, const float* x, int64_t rows,
                        const float* bias, const GemmEpilogue& e, float* y) {
  const bool f16 = t == HalfType::F16, scalar = active_isa() == Isa::Scalar;
  const qk::GemvHalfRowsFn kern = scalar ? (f16 ? gemv_half_rows_scalar<HalfType::F16> : gemv_half_rows_scalar<HalfType::BF16>)
                                         : (f16 ? qk::kernels_avx2().gemv_f16_rows : qk::kernels_avx2().gemv_bf16_rows);
  float* raw = scratch<float>(kRaw, size_t(rows * n));
  const int64_t quads = (n + 3) / 4;
  const bool serial = serial_gemv(size_t(n * k) * 2);
#pragma omp parallel if (!serial)
  {
    const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t o0 = std::min(n, 4 * (quads * tid / nth)), o1 = std::min(n, 4 * (quads * (tid + 1) / nth));
    if (o0 < o1) {
      kern(w, k, x, k, int(rows), o0, o1, raw, n);
      epilogue(raw + o0, n, rows, o0, o1 - o0, bias, e, y, nullptr, n);
    }
  }
}

}  // namespace

void widen_half(const uint16_t* w, HalfType t, int64_t n, float* out) {
  int64_t i = 0;
  if (t == HalfType::BF16) {
    for (; i < n; ++i) out[i] = bf16_to_f32(w[i]);  // vectorised by the compiler
    return;
  }
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))));
#endif
  for (; i < n; ++i) out[i] = f16_to_f32(w[i]);
}

void gemm_half_rows(const uint16_t* w, HalfType t, int64_t n, int64_t k, const float* x, int64_t rows,
                    const float* bias, const GemmEpilogue& e, float* y) {
  if (rows <= 0) return;
  if (rows <= kGemvRows) return gemv_half_rows_all(w, t, n, k, x, rows, bias, e, y);
  // Outputs per chunk: as many as fill 16 MiB of f32 weights, so that sgemm's per-call packing of x
  // is shared by many outputs (bench_gemm's down projection, k 8192 at 512 rows: 8 MiB chunks ran at
  // 0.87x the f32-packed product, 16-32 MiB at 0.89-0.92x; 4-32 MiB made no difference at k 2048).
  const int64_t nc = std::clamp<int64_t>((int64_t(16) << 20) / (4 * k) / 16 * 16, std::min<int64_t>(n, 16), n);
  const bool serial = serial_product(rows, n, k);
  const bool direct = !bias && !e.gated;  // sgemm writes y itself (beta = 1 accumulates)
  float* wf = scratch<float>(kWidened, size_t(nc * k));
  float* c = direct ? nullptr : scratch<float>(kBlockOut, size_t(rows * nc));
  for (int64_t c0 = 0; c0 < n; c0 += nc) {
    const int64_t width = std::min(nc, n - c0);
    const uint16_t* wc = w + c0 * k;
#pragma omp parallel for schedule(static) if (!serial)
    for (int64_t o = 0; o < width; ++o) widen_half(wc + o * k, t, k, wf + o * k);
    if (direct) {
      sgemm(true, rows, width, k, 1.0f, x, k, wf, k, e.accumulate ? 1.0f : 0.0f, y + c0, n);
    } else {
      sgemm(true, rows, width, k, 1.0f, x, k, wf, k, 0.0f, c, width);
      epilogue_rows(c, width, rows, c0, width, bias, e, y, n, serial);
    }
  }
}

std::shared_ptr<QuantPackedWeight> pack_w8a8(W8A8Packed p, const W8A8Options& o, ComputeType c) {
  return std::make_shared<W8A8Weight>(std::make_shared<const W8A8Packed>(std::move(p)), o, c);
}

void quantize_act_int8_ref(const float* x, int64_t rows, int64_t k, const W8A8Options& o, int8_t* xq, int64_t ldq,
                           float* sx) {
  bool finite = true;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * k;
    float s = o.static_scale;
    if (o.act == W8A8Act::PerToken) {  // quant/quantizer.cpp absmax_scale(amax, 8)
      float amax = 0.0f;
      for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(xr[i]));
      s = std::max(amax, 1e-5f) / 127.0f;
    }
    sx[r] = s;
    int8_t* q = xq + r * ldq;
    for (int64_t i = 0; i < k; ++i) {
      const float v = std::nearbyint(xr[i] / s);
      finite = finite && std::isfinite(v);
      q[i] = int8_t(std::isfinite(v) ? std::clamp(v, -128.0f, 127.0f) : 0.0f);
    }
    std::fill(q + k, q + ldq, int8_t(0));
  }
  if (!finite) throw ArgError("W8A8: non-finite activation");
}

void quantize_act_int8(const float* x, int64_t rows, int64_t k, const W8A8Options& o, int8_t* xq, int64_t ldq, float* sx) {
  const Isa isa = active_isa();
  if (isa == Isa::Scalar) return quantize_act_int8_ref(x, rows, k, o, xq, ldq, sx);
  const qk::QuantActFn quant = kernels_for(isa).quant_act;
  const float st = o.act == W8A8Act::PerTensorStatic ? o.static_scale : 0.0f;
  bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite) if (rows * k > 65536 && !omp_in_parallel())
  for (int64_t r = 0; r < rows; ++r) finite = quant(x + r * k, k, st, xq + r * ldq, ldq, sx + r) && finite;
  if (!finite) throw ArgError("W8A8: non-finite activation");
}

namespace {
// One activation row gathered into the packed input order (zeros for padding) and quantized in
// blocks of 32 (quantize_blocks_int8_ref): what the QActs::Int8 references multiply.
struct RowBlocksInt8 {
  std::vector<float> xp, d;
  std::vector<int8_t> q;
  std::vector<int32_t> qsum;
  explicit RowBlocksInt8(int64_t kp) : xp(size_t(kp)), d(size_t(kp / 32)), q(size_t(kp)), qsum(size_t(kp / 32)) {}
  void quantize(const QPacked& w, const float* x_row, const char* who) {
    for (int64_t i = 0; i < w.kp; ++i) xp[size_t(i)] = source_col(w, i) < 0 ? 0.0f : x_row[source_col(w, i)];
    if (!quantize_blocks_int8_ref(xp.data(), w.kp, q.data(), d.data(), qsum.data()))
      throw ArgError(std::string(who) + ": non-finite activation");
  }
};
}  // namespace

void qgemm_ref(const float* x, int64_t rows, const QPacked& w, ComputeType c, const float* bias, float* y, bool bf16_weights,
               QActs acts, bool exact_int8_acts) {
  std::vector<float> wf(size_t(w.n * w.k));
  qpacked_dequantize(w, wf.data());
  if (bf16_weights)
    for (auto& v : wf) v = round_bf16(v);
  std::vector<float> xr(x, x + rows * w.k);
  if (acts == QActs::Int8) {  // x' = d_b·q in the packed order, back in the original one
    if (w.kp % 32) throw ArgError("qgemm_ref: int8 activations need kp a multiple of 32");
    RowBlocksInt8 a(w.kp);
    for (int64_t r = 0; r < rows; ++r) {
      a.quantize(w, x + r * w.k, "qgemm_ref");
      for (int64_t i = 0; i < w.kp; ++i)
        if (source_col(w, i) >= 0) xr[size_t(r * w.k + source_col(w, i))] = a.d[size_t(i / 32)] * float(a.q[size_t(i)]);
    }
  }
  if (c == ComputeType::BF16 && !(acts == QActs::Int8 && exact_int8_acts))
    for (auto& v : xr) v = round_bf16(v);
  gemm_xwt_ref(xr.data(), rows, w.k, wf.data(), w.n, bias, y);
}

void qgemm_int8_blocks_ref(const float* x, int64_t rows, const QPacked& w, float* y) {
  if (!w.blocks32_aligned()) throw ArgError("qgemm_int8_blocks_ref: groups must span whole blocks of 32 inputs");
  const int64_t nblk = w.kp / 32;
  RowBlocksInt8 a(w.kp);
  const std::vector<int8_t>& q = a.q;
  const std::vector<float>& d = a.d;
  const std::vector<int32_t>& qs = a.qsum;
  for (int64_t r = 0; r < rows; ++r) {
    a.quantize(w, x + r * w.k, "qgemm_int8_blocks_ref");
    for (int64_t o = 0; o < w.n; ++o) {
      float acc = 0.0f;
      for (int64_t b = 0; b < nblk; ++b) {
        int32_t sum = 0;
        for (int64_t i = 32 * b; i < 32 * b + 32; ++i) sum += int32_t(q[size_t(i)]) * int32_t(w.code(o, i));
        const int64_t g = w.chunk_group[size_t(4 * b)];
        const float f = float(sum), qb = float(qs[size_t(b)]), db = d[size_t(b)];
        const float s = w.scale(o, g), z = w.zero(o, g);
        acc = w.min_form ? std::fma(db, std::fma(s, f, z * qb), acc) : std::fma(s * db, std::fma(-z, qb, f), acc);
      }
      y[r * w.n + o] = acc;
    }
  }
}

void w8a8_gemm_ref(const float* x, int64_t rows, const W8A8Packed& w, const W8A8Options& o, const float* bias, float* y) {
  std::vector<int8_t> xq(size_t(rows * w.k));
  std::vector<float> sx(static_cast<size_t>(rows));
  quantize_act_int8_ref(x, rows, w.k, o, xq.data(), w.k, sx.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o2 = 0; o2 < w.n; ++o2) {
      int64_t acc = 0;
      for (int64_t i = 0; i < w.k; ++i) acc += int64_t(xq[size_t(r * w.k + i)]) * w.weight(o2, i);
      float v = float(acc) * sx[size_t(r)] * w.scale[size_t(o2)];
      if (bias) v = v + bias[o2];
      y[r * w.n + o2] = v;
    }
}

qk::QW qk::view_of(const QPacked& p) {
  qk::QW w;
  w.codes = p.codes.data();
  w.hbits = p.hbits.size() ? p.hbits.data() : nullptr;
  w.scales = p.scales.data();
  w.zeros = p.zero_const ? nullptr : reinterpret_cast<const uint16_t*>(p.zeros.data());
  w.chunk_group = p.chunk_group.data();
  w.chunks = p.chunks();
  w.groups = p.groups;
  w.storage = p.storage;
  w.min_form = p.min_form;
  w.scale_f16 = p.scale_f16;
  w.zero_value = p.zero_value;
  return w;
}

}  // namespace calq
