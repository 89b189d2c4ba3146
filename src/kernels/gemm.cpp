// Linear-layer GEMMs on oneDNN matmul (brgemm kernels). Why oneDNN and not OpenBLAS: on this
// class of CPU Debian's OpenBLAS 0.3.21 runs AVX2 (Haswell) kernels, ~half of what oneDNN's
// AVX-512 brgemm reaches in f32, and it has no bf16 GEMM at all (docs/performance.md).
//
// Design: pack_weight() reorders W once into the blocked layout oneDNN picks for the weights
// (format_tag::any; BA16a64b for f32, BA16a64b2a for bf16 on AVX-512; it depends on n, k and the
// type but not on the row count). gemm_packed() looks up a matmul primitive for
// (rows, n, k, type, bias) in a bounded LRU cache and runs it on caller-owned src/dst memory.
// Where oneDNN has no bf16 matmul (CPUs without AVX-512), weights whose values are bf16 numbers
// stay bf16, and f16 checkpoints at f32 compute stay f16 (HalfRowsWeight, 2 bytes a parameter);
// they run on qgemm.cpp's gemm_half_rows. bf16 compute there is emulated with f32 products of
// bf16-rounded operands (run_emulated_bf16).
#include "kernels/gemm.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/profile.h"
#include "kernels/threads.h"
#include "kernels/qgemm.h"
#include "kernels/vec.h"
#include "util/error.h"
#include "tensor/dtype.h"
#include "util/huge_pages.h"

namespace calq {

const char* compute_type_name(ComputeType c) { return c == ComputeType::BF16 ? "bf16" : "f32"; }

void gemm_xwt_ref(const float* x, int64_t rows, int64_t k, const float* w, int64_t n, const float* bias, float* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double s = bias ? bias[j] : 0.0;
      for (int64_t i = 0; i < k; ++i) s += double(x[r * k + i]) * w[j * k + i];
      y[r * n + j] = float(s);
    }
}

// oneDNN's JIT sgemm (row-major): Debian's OpenBLAS 0.3.21 picks AVX2 (Haswell) kernels on this
// CPU and reaches half of oneDNN's AVX-512 rate (docs/performance.md).
void sgemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t st =
      dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) throw Error("sgemm: oneDNN returned status " + std::to_string(int(st)));
}

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

dt dnnl_type(ComputeType c) { return c == ComputeType::BF16 ? dt::bf16 : dt::f32; }

// Products below this many flops (~15 us of one core) run single-threaded.
constexpr double kParallelFlops = 4e6;

// The row count used to ask oneDNN for its preferred weight layout (any count gives the same one).
constexpr int64_t kLayoutRows = 64;

dnnl::algorithm eltwise_of(ActKind a) {
  switch (a) {
    case ActKind::SiLU: return dnnl::algorithm::eltwise_swish;  // x · sigmoid(alpha x), alpha = 1
    case ActKind::ReLU: return dnnl::algorithm::eltwise_relu;
    case ActKind::GELU: return dnnl::algorithm::eltwise_gelu_erf;
    case ActKind::GELUTanh: return dnnl::algorithm::eltwise_gelu_tanh;
  }
  return dnnl::algorithm::eltwise_swish;
}

// The epilogue as it shapes a primitive (no pointers).
struct EpilogueKind {
  bool accumulate = false;
  int gated_act = -1;  // ActKind when gated, else -1
  bool mul_bf16 = false;
  bool dst_bf16 = false;
  bool operator==(const EpilogueKind& o) const {
    return accumulate == o.accumulate && gated_act == o.gated_act && mul_bf16 == o.mul_bf16 && dst_bf16 == o.dst_bf16;
  }
};

// accumulate: a sum post-op, dst = dst + src · W (+ bias); gated: eltwise act, then binary mul by
// a [rows, n] f32 tensor.
dnnl::matmul::primitive_desc make_pd(int64_t rows, int64_t n, int64_t k, ComputeType c, bool bias,
                                     const dnnl::memory::desc& wmd, const EpilogueKind& e = {}) {
  const dnnl::memory::desc src({rows, k}, dnnl_type(c), tag::ab);
  const dnnl::memory::desc dst({rows, n}, e.dst_bf16 ? dt::bf16 : dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  // The caller passes the scratchpad (per thread, scratch_buffer()): oneDNN's default keeps one
  // per primitive, and two threads running the same cached primitive then share it and swap
  // each other's results (seen with small f32 products, GemmPacked.ConcurrentCallers test).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::post_ops po;
  if (e.accumulate) po.append_sum(1.0f);
  if (e.gated_act >= 0) {
    // alpha: swish's sigmoid(alpha·x) slope (1), relu's negative slope (0); unused by the GELUs.
    const float alpha = ActKind(e.gated_act) == ActKind::SiLU ? 1.0f : 0.0f;
    po.append_eltwise(1.0f, eltwise_of(ActKind(e.gated_act)), alpha, 0.0f);
    po.append_binary(dnnl::algorithm::binary_mul, dnnl::memory::desc({rows, n}, e.mul_bf16 ? dt::bf16 : dt::f32, tag::ab));
  }
  attr.set_post_ops(po);
  if (bias) {
    const dnnl::memory::desc b({1, n}, dt::f32, tag::ab);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wmd, b, dst), attr, cpu_engine());
  }
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wmd, dst), attr, cpu_engine());
}

// The packed copy's memory. Large copies get their own anonymous mapping, faulted in before the
// reorder writes it: madvise(MADV_POPULATE_WRITE) on each OpenMP thread's share of the range, one
// system call per thread instead of one page fault per 4 KiB page inside the reorder (an f32
// eval of a 1.1 B bf16 checkpoint packs 4.4 GB: ~1.07 M faults). The kernel still zeroes every
// page; what goes is the per-fault entry and exit. Huge pages only when asked for
// (CALQ_HUGE_PAGES=1, util/huge_pages.h: faulting them in compacts memory, 6x slower loads here). Small copies, and any kernel without
// MADV_POPULATE_WRITE (Linux < 5.14: the pages then fault in during the reorder, as before), keep
// oneDNN's own allocation.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
constexpr size_t kPopulateMin = size_t(1) << 20;

class PackedMemory {
 public:
  explicit PackedMemory(size_t bytes) {
    if (bytes < kPopulateMin) return;
    const bool huge = huge_pages_enabled();
    const size_t extra = huge ? kHugePageBytes : 0;  // room to start on a huge-page boundary
    void* p = mmap(nullptr, bytes + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;  // oneDNN allocates instead (and reports a failure its way)
    map_ = p;
    map_bytes_ = bytes + extra;
    const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + extra) / (extra ? extra : 1) * (extra ? extra : 1);
    p_ = huge ? reinterpret_cast<void*>(a) : p;
    if (huge) advise_huge_pages(p_, bytes);
    // Split on huge-page boundaries, so no huge page is faulted by two threads.
    const size_t unit = huge ? kHugePageBytes : 4096, units = (bytes + unit - 1) / unit;
#pragma omp parallel
    {
      const size_t t = size_t(omp_get_thread_num()), nt = size_t(omp_get_num_threads());
      const size_t b = units * t / nt, e = std::min(bytes, units * (t + 1) / nt * unit);
      // Advice only: on failure (an old kernel, memory pressure) the reorder faults the pages in.
      if (e > b * unit) (void)madvise(static_cast<char*>(p_) + b * unit, e - b * unit, MADV_POPULATE_WRITE);
    }
  }
  ~PackedMemory() {
    if (map_) munmap(map_, map_bytes_);
  }
  PackedMemory(const PackedMemory&) = delete;
  PackedMemory& operator=(const PackedMemory&) = delete;
  void* data() const { return p_; }  // nullptr: let oneDNN allocate

 private:
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  void* p_ = nullptr;
};

// Whether oneDNN runs bf16 matmuls on this CPU (it needs AVX-512; oneDNN 2.6 has none on AVX2).
bool onednn_has_bf16() {
  static const bool has = [] {
    try {
      const dnnl::memory::desc any({64, 64}, dt::bf16, tag::any);
      (void)make_pd(16, 64, 64, ComputeType::BF16, false, any);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return has;
}

// n values rounded to bf16 (nearest even) and back, or widened from bf16 bits: exact f32 values of
// bf16 numbers, what the emulated bf16 products multiply.
void round_to_bf16_values(const float* x, float* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (int64_t(1) << 18) && !omp_in_parallel())
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(f32_to_bf16(x[i]));
}
void widen_bf16_n(const uint16_t* x, float* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (int64_t(1) << 18) && !omp_in_parallel())
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(x[i]);
}

class DnnlPacked final : public PackedWeight {
 public:
  // w: W [n, k] row-major, float32 or (src_bf16) the raw bits of bf16. ComputeType::BF16 only where
  // oneDNN has bf16 matmuls (elsewhere bf16 values are kept as HalfRowsWeight).
  DnnlPacked(const void* w, bool src_bf16, int64_t n, int64_t k, ComputeType c) : n_(n), k_(k), c_(c) {
    const dnnl::memory::desc any({k, n}, dnnl_type(c), tag::any);
    md_ = make_pd(kLayoutRows, n, k, c, false, any).weights_desc();
    buf_ = std::make_unique<PackedMemory>(md_.get_size());
    mem_ = buf_->data() ? dnnl::memory(md_, cpu_engine(), buf_->data()) : dnnl::memory(md_, cpu_engine());
    // W [n, k] row-major is Wᵀ [k, n] in column-major ("ba") order: the reorder transposes,
    // blocks and (for bf16) rounds to nearest even in one pass.
    dnnl::memory src({{k, n}, src_bf16 ? dt::bf16 : dt::f32, tag::ba}, cpu_engine(), const_cast<void*>(w));
    dnnl::reorder(src, mem_).execute(thread_stream(), src, mem_);
    thread_stream().wait();
    // The layouts calq's one-row kernel reads (qgemm.h gemv_onednn_blocked).
    blocked_ = md_ == dnnl::memory::desc({k, n}, dnnl_type(c), c == ComputeType::BF16 ? tag::BA16a64b2a : tag::BA16a64b);
  }
  int64_t n() const override { return n_; }
  int64_t k() const override { return k_; }
  ComputeType compute() const override { return c_; }
  size_t bytes() const override { return md_.get_size(); }
  const dnnl::memory& mem() const { return mem_; }
  const dnnl::memory::desc& desc() const { return md_; }
  bool blocked() const { return blocked_; }

 private:
  int64_t n_, k_;
  ComputeType c_;
  dnnl::memory::desc md_;
  std::unique_ptr<PackedMemory> buf_;  // declared before mem_: outlives it
  dnnl::memory mem_;
  bool blocked_ = false;
};

// HalfStorage::Rows (gemm.h): W [n, k] row-major as bf16 or f16 bits, products in qgemm.cpp's
// gemm_half_rows. ComputeType::BF16 (bf16 rows only) is emulated on it (run_emulated_bf16).
class HalfRowsWeight final : public PackedWeight {
 public:
  // From f32 values: rounded to bf16 (nearest even), for BF16 compute.
  HalfRowsWeight(const float* w, int64_t n, int64_t k, ComputeType c)
      : n_(n), k_(k), c_(c), type_(HalfType::BF16), w_(new uint16_t[size_t(n * k)]) {
    f32_to_bf16_n(w, w_.get(), n * k);
  }
  // From a checkpoint's bits (copied). f16 values are not bf16 numbers: F32 compute only.
  HalfRowsWeight(const uint16_t* bits, HalfType t, int64_t n, int64_t k, ComputeType c)
      : n_(n), k_(k), c_(c), type_(t), w_(new uint16_t[size_t(n * k)]) {
    if (t == HalfType::F16 && c != ComputeType::F32) throw ArgError("HalfRowsWeight: f16 rows need f32 compute");
    const int64_t count = n * k;
    const int64_t parts = count > (int64_t(1) << 20) ? 64 : 1;
#pragma omp parallel for schedule(static) if (parts > 1 && !omp_in_parallel())
    for (int64_t p = 0; p < parts; ++p) {
      const int64_t b = count * p / parts, e = count * (p + 1) / parts;
      std::memcpy(w_.get() + b, bits + b, size_t(e - b) * 2);
    }
  }
  int64_t n() const override { return n_; }
  int64_t k() const override { return k_; }
  ComputeType compute() const override { return c_; }
  size_t bytes() const override { return size_t(n_ * k_) * 2; }
  HalfType type() const { return type_; }
  const uint16_t* data() const { return w_.get(); }

 private:
  int64_t n_, k_;
  ComputeType c_;
  HalfType type_;
  std::unique_ptr<uint16_t[]> w_;
};

// Whether a weight whose packed values are 16-bit floats is kept as rows of them.
bool keep_half_rows(HalfStorage s) { return s == HalfStorage::Rows || !onednn_has_bf16(); }

// oneDNN fixes a primitive's thread count when it is created, so the key includes it.
struct PrimKey {
  int64_t rows, n, k;
  int type;
  bool bias;
  EpilogueKind epi;
  int threads;
  bool operator==(const PrimKey& o) const {
    return rows == o.rows && n == o.n && k == o.k && type == o.type && bias == o.bias && epi == o.epi &&
           threads == o.threads;
  }
};
struct PrimKeyHash {
  size_t operator()(const PrimKey& p) const {
    size_t h = std::hash<int64_t>()(p.rows);
    h = h * 1000003u ^ std::hash<int64_t>()(p.n);
    h = h * 1000003u ^ std::hash<int64_t>()(p.k);
    h = h * 31u + size_t(p.type) * 4u + size_t(p.bias) * 2u + size_t(p.epi.accumulate);
    h = h * 31u + size_t(p.epi.gated_act + 1) * 4u + size_t(p.epi.mul_bf16) * 2u + size_t(p.epi.dst_bf16);
    return h * 131u + size_t(p.threads);
  }
};

struct CachedPrim {
  dnnl::matmul prim;
  dnnl::memory::desc scratch;  // its user scratchpad (size 0 when it needs none)
};

// Bounded LRU of matmul primitives. Evaluation runs many batch sizes, so row counts vary; the
// bound keeps memory flat (oneDNN's own JIT-kernel cache makes a re-created primitive cheap).
class PrimitiveCache {
 public:
  static constexpr size_t kCapacity = 256;

  CachedPrim get(const PrimKey& key, const dnnl::memory::desc& wmd) {
    CachedPrim prim = find(key);
    if (prim.prim) return prim;
    {
      // oneDNN takes the thread count from omp_get_max_threads() when the primitive is created.
      const ThreadScope threads(key.threads);
      prim = create(key, wmd);
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) return it->second->second;
    lru_.emplace_front(key, prim);
    map_[key] = lru_.begin();
    if (lru_.size() > kCapacity) {
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
    return prim;
  }

 private:
  CachedPrim find(const PrimKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return CachedPrim();
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }

  static CachedPrim create(const PrimKey& key, const dnnl::memory::desc& wmd) {
    const ComputeType c = ComputeType(key.type);
    // Ask for the layout oneDNN prefers for this row count; it is the packed one in practice,
    // and if not, pin the packed layout explicitly (oneDNN then picks an implementation for it).
    const dnnl::memory::desc any({key.k, key.n}, dnnl_type(c), tag::any);
    dnnl::matmul::primitive_desc pd = make_pd(key.rows, key.n, key.k, c, key.bias, any, key.epi);
    if (pd.weights_desc() != wmd) pd = make_pd(key.rows, key.n, key.k, c, key.bias, wmd, key.epi);
    return {dnnl::matmul(pd), pd.scratchpad_desc()};
  }

  std::mutex mu_;
  std::list<std::pair<PrimKey, CachedPrim>> lru_;
  std::unordered_map<PrimKey, std::list<std::pair<PrimKey, CachedPrim>>::iterator, PrimKeyHash> map_;
};

PrimitiveCache& prim_cache() {
  static PrimitiveCache c;
  return c;
}

// Per-thread scratchpad for oneDNN primitives (grows to the largest asked for; 64-byte aligned).
void* scratch_buffer(size_t bytes) {
  thread_local std::vector<uint64_t> buf;
  const size_t words = (bytes + 7) / 8 + 8;  // + 64 bytes: room to align the 8-aligned data to 64
  if (buf.size() < words) buf.resize(words);
  return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
}

// Per-thread buffer for the bf16 copy of the activations (grows to the largest input seen).
uint16_t* bf16_scratch(size_t n) {
  thread_local std::vector<uint16_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// One matmul on a packed weight: src [rows, k] in the kernel's type (f32, or bf16 when computing
// natively in bf16), output y [rows, n] (f32) or y_bf16, bias and epilogue fused.
void run_dnnl(const void* src, int64_t rows, const DnnlPacked& p, const float* bias, const GemmEpilogue& e, float* y,
              uint16_t* y_bf16) {
  const int64_t n = p.n(), k = p.k();
  const ComputeType kc = p.compute();
  EpilogueKind ek;
  ek.accumulate = e.accumulate;
  ek.gated_act = e.gated ? int(e.act) : -1;
  ek.mul_bf16 = e.gated && e.mul_bf16 != nullptr;
  ek.dst_bf16 = y_bf16 != nullptr;
  // Small products run on one thread: waking the team costs more than it saves (and on a busy
  // machine a descheduled team member stalls every parallel region).
  const bool serial = omp_in_parallel() || 2.0 * double(rows) * double(n) * double(k) < kParallelFlops;
  const PrimKey key{rows, n, k, int(kc), bias != nullptr, ek, serial ? 1 : omp_get_max_threads()};
  const CachedPrim cp = prim_cache().get(key, p.desc());
  dnnl::engine& eng = cpu_engine();
  dnnl::memory src_m({{rows, k}, dnnl_type(kc), tag::ab}, eng, const_cast<void*>(src));
  dnnl::memory dst_m({{rows, n}, y_bf16 ? dt::bf16 : dt::f32, tag::ab}, eng,
                     y_bf16 ? static_cast<void*>(y_bf16) : static_cast<void*>(y));
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, p.mem()}, {DNNL_ARG_DST, dst_m}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory({{1, n}, dt::f32, tag::ab}, eng, const_cast<float*>(bias)));
  if (e.gated) {
    const int idx = e.accumulate ? 2 : 1;  // post-op index of the binary mul
    const void* m = e.mul_bf16 ? static_cast<const void*>(e.mul_bf16) : static_cast<const void*>(e.mul);
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1,
                 dnnl::memory({{rows, n}, e.mul_bf16 ? dt::bf16 : dt::f32, tag::ab}, eng, const_cast<void*>(m)));
  }
  const size_t scratch_bytes = cp.scratch.get_size();
  if (scratch_bytes > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(cp.scratch, eng, scratch_buffer(scratch_bytes)));
  cp.prim.execute(thread_stream(), args);
  thread_stream().wait();
}

// Per-thread f32 buffers of the emulated bf16 compute (grow only).
enum EmuSlot { kEmuX, kEmuMul, kEmuY, kEmuSlots };
float* emu_scratch(EmuSlot s, size_t n) {
  thread_local std::vector<std::vector<float>> bufs(kEmuSlots);
  if (bufs[s].size() < n) bufs[s].resize(n);
  return bufs[s].data();
}

// bf16 compute with f32 kernels (HalfRowsWeight): every bf16 operand widened to its exact f32
// value — x rounded to bf16 first, as the native path rounds it —, the f32 product
// product(xs, epilogue, out), and a bf16 output rounded once from the f32 result (as oneDNN's
// bf16 dst).
template <class Product>
void run_emulated_bf16(const float* x, const uint16_t* x_bf16, int64_t rows, int64_t n, int64_t k, const GemmEpilogue& e,
                       float* y, uint16_t* y_bf16, Product&& product) {
  float* xs = emu_scratch(kEmuX, size_t(rows * k));
  if (x) round_to_bf16_values(x, xs, rows * k);
  else widen_bf16_n(x_bf16, xs, rows * k);
  GemmEpilogue ef = e;
  if (e.gated && e.mul_bf16) {
    float* m = emu_scratch(kEmuMul, size_t(rows * n));
    widen_bf16_n(e.mul_bf16, m, rows * n);
    ef.mul = m;
    ef.mul_bf16 = nullptr;
  }
  float* out = y;
  if (y_bf16) {
    out = emu_scratch(kEmuY, size_t(rows * n));
    if (e.accumulate) widen_bf16_n(y_bf16, out, rows * n);
  }
  product(xs, ef, out);
  if (y_bf16) f32_to_bf16_n(out, y_bf16, rows * n);
}

}  // namespace

bool gemm_bf16_native() { return onednn_has_bf16(); }

bool gemm_rows_independent() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core || isa == dnnl::cpu_isa::avx512_core_vnni ||
         isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

KernelProfile& kernel_profile() {
  static KernelProfile p;
  return p;
}

std::shared_ptr<PackedWeight> pack_weight(const float* w, int64_t n, int64_t k, ComputeType c, HalfStorage s) {
  if (n <= 0 || k <= 0) throw ArgError("pack_weight: empty weight [" + std::to_string(n) + ", " + std::to_string(k) + "]");
  if (c == ComputeType::BF16 && keep_half_rows(s)) return std::make_shared<HalfRowsWeight>(w, n, k, c);
  return std::make_shared<DnnlPacked>(w, false, n, k, c);
}

std::shared_ptr<PackedWeight> pack_weight_bf16(const uint16_t* w, int64_t n, int64_t k, ComputeType c, HalfStorage s) {
  if (n <= 0 || k <= 0) throw ArgError("pack_weight_bf16: empty weight [" + std::to_string(n) + ", " + std::to_string(k) + "]");
  if (keep_half_rows(s)) return std::make_shared<HalfRowsWeight>(w, HalfType::BF16, n, k, c);
  return std::make_shared<DnnlPacked>(w, true, n, k, c);
}

std::shared_ptr<PackedWeight> pack_weight_f16(const uint16_t* w, int64_t n, int64_t k, ComputeType c, HalfStorage s) {
  if (n <= 0 || k <= 0) throw ArgError("pack_weight_f16: empty weight [" + std::to_string(n) + ", " + std::to_string(k) + "]");
  if (c == ComputeType::F32 && keep_half_rows(s)) return std::make_shared<HalfRowsWeight>(w, HalfType::F16, n, k, c);
  // The f32 values for pack_weight: transient (the packed copy is what stays).
  std::vector<float> wf(size_t(n * k));
  const int64_t count = n * k, parts = count > (int64_t(1) << 20) ? 64 : 1;
#pragma omp parallel for schedule(static) if (parts > 1 && !omp_in_parallel())
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t b = count * p / parts, e = count * (p + 1) / parts;
    widen_half(w + b, HalfType::F16, e - b, wf.data() + b);
  }
  return pack_weight(wf.data(), n, k, c, s);
}

void gemm_packed_ex(const float* x, const uint16_t* x_bf16, int64_t rows, const PackedWeight& pw, const float* bias,
                    const GemmEpilogue& e, float* y, uint16_t* y_bf16) {
  if (const auto* q = dynamic_cast<const QuantPackedWeight*>(&pw)) {  // quantized kinds (qgemm.h)
    q->run(x, x_bf16, rows, bias, e, y, y_bf16);
    return;
  }
  const bool bf = pw.compute() == ComputeType::BF16;
  if (rows <= 0) return;
  if ((x == nullptr) == (x_bf16 == nullptr) || (y == nullptr) == (y_bf16 == nullptr))
    throw ArgError("gemm_packed_ex: give exactly one input and one output");
  if ((x_bf16 || y_bf16) && !bf) throw ArgError("gemm_packed_ex: bf16 input/output needs a weight packed for bf16");
  if (e.gated && (e.mul == nullptr) == (e.mul_bf16 == nullptr))
    throw ArgError("gemm_packed_ex: a gated epilogue needs exactly one multiplier (mul or mul_bf16)");
  const int64_t n = pw.n(), k = pw.k();
  KernelTimer timer(KernelKind::Gemm, 2 * rows * n * k);
  if (const auto* r = dynamic_cast<const HalfRowsWeight*>(&pw)) {
    const auto product = [&](const float* xs, const GemmEpilogue& ef, float* out) {
      gemm_half_rows(r->data(), r->type(), n, k, xs, rows, bias, ef, out);
    };
    if (bf) run_emulated_bf16(x, x_bf16, rows, n, k, e, y, y_bf16, product);
    else product(x, e, y);
    return;
  }
  const auto& p = dynamic_cast<const DnnlPacked&>(pw);
  // Decode steps: calq's one-row kernel on the same packed values (oneDNN's reaches ~half the read
  // bandwidth at one row).
  if (rows == 1 && p.blocked() &&
      gemv_onednn_blocked(p.mem().get_data_handle(), p.compute(), n, k, x, x_bf16, rows, bias, e, y, y_bf16))
    return;
  const void* src = x_bf16 ? static_cast<const void*>(x_bf16) : static_cast<const void*>(x);
  if (bf && x) {  // activations to bf16 (round to nearest even), once per call
    uint16_t* xb = bf16_scratch(size_t(rows * k));
    f32_to_bf16_n(x, xb, rows * k);
    src = xb;
  }
  run_dnnl(src, rows, p, bias, e, y, y_bf16);
}

void gemm_packed(const float* x, int64_t rows, const PackedWeight& pw, const float* bias, float* y, bool accumulate) {
  GemmEpilogue e;
  e.accumulate = accumulate;
  gemm_packed_ex(x, nullptr, rows, pw, bias, e, y);
}

void gemm_packed_bf16(const uint16_t* x, int64_t rows, const PackedWeight& pw, const float* bias, float* y,
                      bool accumulate) {
  GemmEpilogue e;
  e.accumulate = accumulate;
  gemm_packed_ex(nullptr, x, rows, pw, bias, e, y);
}

}  // namespace calq
