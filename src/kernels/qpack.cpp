#include "kernels/qpack.h"

// The dequantization formulas must round exactly like their producers (no fused multiply-add).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tensor/dtype.h"
#include "util/error.h"
#include "util/huge_pages.h"

namespace calq {

AlignedBytes::AlignedBytes(size_t n) : n_(n) {
  if (n == 0) return;
  const size_t rounded = (n + 63) / 64 * 64;
  // Buffers of a huge page or more (packed weights) start on one and ask for huge pages before
  // the first write (util/huge_pages.h: decode streams them).
  const bool huge = rounded >= kHugePageBytes;
  void* raw = nullptr;
  if (posix_memalign(&raw, huge ? kHugePageBytes : 64, rounded) != 0 || !raw) throw std::bad_alloc();
  p_.reset(static_cast<uint8_t*>(raw), [](uint8_t* b) { std::free(b); });
  if (huge) advise_huge_pages(raw, rounded);
  std::memset(raw, 0, rounded);
}

AlignedBytes AlignedBytes::view(size_t offset, size_t n) const {
  if (offset + n > n_) throw ArgError("AlignedBytes::view: bytes [" + std::to_string(offset) + ", " +
                                      std::to_string(offset + n) + ") outside " + std::to_string(n_));
  AlignedBytes v;
  if (n) v.p_ = std::shared_ptr<uint8_t>(p_, p_.get() + offset);  // aliasing: shares the owner
  v.n_ = n;
  return v;
}

namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

std::string shape_str(int64_t n, int64_t k) { return "[" + std::to_string(n) + ", " + std::to_string(k) + "]"; }

// Input order of the packed weight: groups contiguous (stable by source column), each padded to a
// multiple of `align` (kQChunkK, or 32 for int8 activation blocks). Leaves perm empty when it is the
// identity (plus padding at the end).
void build_input_order(QPacked& p, const std::vector<int32_t>& gid, int64_t align) {
  const int64_t k = int64_t(gid.size());
  std::vector<int64_t> count(size_t(p.groups) + 1, 0);
  for (int32_t g : gid) ++count[size_t(g) + 1];
  for (int64_t g = 0; g < p.groups; ++g) count[size_t(g) + 1] += count[size_t(g)];
  std::vector<int32_t> sorted(static_cast<size_t>(k));
  {
    std::vector<int64_t> next(count.begin(), count.end() - 1);
    for (int64_t c = 0; c < k; ++c) sorted[size_t(next[size_t(gid[size_t(c)])]++)] = int32_t(c);
  }
  p.perm.clear();
  p.chunk_group.clear();
  for (int64_t g = 0; g < p.groups; ++g) {
    const int64_t b = count[size_t(g)], e = count[size_t(g) + 1];
    if (b == e) continue;
    for (int64_t i = b; i < e; ++i) p.perm.push_back(sorted[size_t(i)]);
    while (p.perm.size() % size_t(align)) p.perm.push_back(-1);
    for (int64_t c = 0; c < round_up(e - b, align) / kQChunkK; ++c) p.chunk_group.push_back(int32_t(g));
  }
  p.kp = int64_t(p.perm.size());
  bool identity = true;
  for (int64_t i = 0; i < p.kp && identity; ++i) identity = p.perm[size_t(i)] == (i < k ? i : -1);
  if (identity) p.perm.clear();
}

// Fills p.codes (and p.hbits) from code(o, c) for output o < n and source column c.
template <class CodeFn>
void fill_codes(QPacked& p, CodeFn code) {
  const int64_t chunks = p.chunks();
  const int cb = p.chunk_bytes();
  p.codes = AlignedBytes(size_t(p.tiles * chunks * cb));
  if (p.storage == 5) p.hbits = AlignedBytes(size_t(p.tiles * chunks * 16));
  std::vector<int32_t> src(size_t(p.kp));
  for (int64_t i = 0; i < p.kp; ++i) src[size_t(i)] = p.perm.empty() ? (i < p.k ? int32_t(i) : -1) : p.perm[size_t(i)];
  // One thread per tile of kQTileN rows: the rows of a tile share code bytes (and hbits bytes),
  // different tiles share nothing, so the bytes are those of a one-thread fill (load time: #14).
  const int64_t ntiles = (p.n + kQTileN - 1) / kQTileN;
  const bool par = p.n * p.kp >= (int64_t(1) << 20);
  if (p.storage == 4 || p.storage == 8) {
    // Whole words at once (a 7B model has 6.7 G codes): per chunk of 8 inputs, row j owns the
    // 16-bit words 2j (inputs 0, 2, 4, 6: one nibble each) and 2j + 1 (inputs 1, 3, 5, 7) in
    // 4-bit storage, the bytes 32·pair + 2j + (i % 2) in 8-bit storage (QPacked::code reads them).
#pragma omp parallel for schedule(dynamic, 16) if (par)
    for (int64_t tile = 0; tile < ntiles; ++tile) {
      const int64_t o0 = tile * kQTileN, o1 = std::min(p.n, o0 + kQTileN);
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        uint8_t* c = p.codes.data() + (tile * chunks + chunk) * cb;
        const int32_t* s = src.data() + chunk * kQChunkK;
        for (int64_t o = o0; o < o1; ++o) {
          const int64_t j = o - o0;
          uint32_t q[kQChunkK];
          for (int t = 0; t < kQChunkK; ++t) q[t] = s[t] < 0 ? 0u : code(o, s[t]);  // padding: code 0
          if (p.storage == 8) {
            for (int t = 0; t < kQChunkK; ++t) c[32 * (t / 2) + 2 * j + t % 2] = uint8_t(q[t]);
            continue;
          }
          for (int h = 0; h < 2; ++h) {
            const uint16_t w = uint16_t((q[h] & 15u) | (q[h + 2] & 15u) << 4 | (q[h + 4] & 15u) << 8 |
                                        (q[h + 6] & 15u) << 12);
            std::memcpy(c + 2 * (2 * j + h), &w, 2);
          }
        }
      }
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 16) if (par)
  for (int64_t tile = 0; tile < ntiles; ++tile) {
    const int64_t o1 = std::min(p.n, (tile + 1) * kQTileN);
    for (int64_t o = tile * kQTileN; o < o1; ++o) {
      const int64_t j = o % kQTileN;
      for (int64_t i = 0; i < p.kp; ++i) {
        if (src[size_t(i)] < 0) continue;  // padding: code 0
        const uint32_t q = code(o, src[size_t(i)]);
        const int64_t chunk = i / kQChunkK, pair = (i % kQChunkK) / 2, slot = 2 * j + (i % 2);
        uint8_t* c = p.codes.data() + (tile * chunks + chunk) * cb;
        if (p.storage == 8) {
          c[32 * pair + slot] = uint8_t(q);
        } else {
          // 16-bit word `slot`, bits [4 pair, 4 pair + 4): byte 2 slot + pair / 2, nibble pair % 2.
          c[2 * slot + pair / 2] |= uint8_t((q & 15u) << (4 * (pair % 2)));
          if (p.storage == 5 && (q & 16u)) {
            const int64_t bit = 32 * pair + slot;
            p.hbits.data()[(tile * chunks + chunk) * 16 + bit / 8] |= uint8_t(1u << (bit % 8));
          }
        }
      }
    }
  }
}

void set_scale(QPacked& p, int64_t o, int64_t g, float v) {
  const size_t idx = size_t((o / kQTileN * p.groups + g) * kQTileN + o % kQTileN);
  if (p.scale_f16)
    reinterpret_cast<uint16_t*>(p.scales.data())[idx] = f32_to_f16(v);
  else
    reinterpret_cast<float*>(p.scales.data())[idx] = v;
}
void set_zero_bits(QPacked& p, int64_t o, int64_t g, uint16_t h) {
  reinterpret_cast<uint16_t*>(p.zeros.data())[size_t((o / kQTileN * p.groups + g) * kQTileN + o % kQTileN)] = h;
}

bool is_f16_exact(float v) { return std::isfinite(v) && f16_to_f32(f32_to_f16(v)) == v; }

void alloc_params(QPacked& p) {
  const size_t entries = size_t(p.tiles * p.groups * kQTileN);
  p.scales = AlignedBytes(entries * (p.scale_f16 ? 2 : 4));
  if (!p.zero_const) p.zeros = AlignedBytes(entries * 2);
}

}  // namespace

uint32_t QPacked::code(int64_t o, int64_t i) const {
  const int64_t tile = o / kQTileN, j = o % kQTileN, chunk = i / kQChunkK, pair = (i % kQChunkK) / 2;
  const int64_t slot = 2 * j + i % 2;
  const uint8_t* c = codes.data() + (tile * chunks() + chunk) * chunk_bytes();
  if (storage == 8) return c[32 * pair + slot];
  uint32_t q = (c[2 * slot + pair / 2] >> (4 * (pair % 2))) & 15u;
  if (storage == 5) {
    const int64_t bit = 32 * pair + slot;
    q |= uint32_t((hbits.data()[(tile * chunks() + chunk) * 16 + bit / 8] >> (bit % 8)) & 1u) << 4;
  }
  return q;
}

bool QPacked::blocks32_aligned() const {
  if (kp % 32) return false;
  for (size_t c = 0; c < chunk_group.size(); c += 4)
    for (size_t j = 1; j < 4; ++j)
      if (chunk_group[c + j] != chunk_group[c]) return false;
  return true;
}

float QPacked::scale(int64_t o, int64_t g) const {
  const size_t idx = size_t((o / kQTileN * groups + g) * kQTileN + o % kQTileN);
  return scale_f16 ? f16_to_f32(reinterpret_cast<const uint16_t*>(scales.data())[idx])
                   : reinterpret_cast<const float*>(scales.data())[idx];
}

float QPacked::zero(int64_t o, int64_t g) const {
  if (zero_const) return zero_value;
  return f16_to_f32(reinterpret_cast<const uint16_t*>(zeros.data())[size_t((o / kQTileN * groups + g) * kQTileN + o % kQTileN)]);
}

float QPacked::weight(int64_t o, int64_t i) const {
  const int64_t g = chunk_group[size_t(i / kQChunkK)];
  const float q = float(code(o, i)), s = scale(o, g), z = zero(o, g);
  return min_form ? q * s + z : s * (q - z);
}

QPacked qpack_codes(const QuantCodesView& w, const char* what, int group_align) {
  const std::string name = what;
  if (w.rows <= 0 || w.cols <= 0) throw ArgError(name + ": empty quantized weight " + shape_str(w.rows, w.cols));
  if (w.bits < 2 || w.bits > 8) throw ArgError(name + ": bits must be in 2..8, got " + std::to_string(w.bits));
  if (!w.q || !w.scale || !w.zero || w.groups < 1) throw ArgError(name + ": missing codes, scales or zero points");
  QPacked p;
  p.n = w.rows;
  p.k = w.cols;
  p.bits = w.bits;
  p.storage = w.bits <= 4 ? 4 : 8;
  p.groups = w.groups;
  p.tiles = round_up(w.rows, 2 * kQTileN) / kQTileN;
  std::vector<int32_t> gid(size_t(w.cols));
  for (int64_t c = 0; c < w.cols; ++c) {
    const int64_t g = w.g_idx ? w.g_idx[c] : (w.group_size > 0 ? c / w.group_size : 0);
    if (g < 0 || g >= w.groups)
      throw ArgError(name + ": group " + std::to_string(g) + " of input " + std::to_string(c) + " is outside [0, " +
                     std::to_string(w.groups) + ")");
    gid[size_t(c)] = int32_t(g);
  }
  if (group_align != kQChunkK && group_align != 32) throw ArgError(name + ": group alignment must be 8 or 32");
  build_input_order(p, gid, group_align);
  // Scales f16 when exact (GPTQ/AWQ checkpoints: always), zero points one constant when all equal.
  const size_t np = size_t(w.rows * w.groups);
  p.scale_f16 = true;
  p.zero_const = true;
  p.zero_value = w.zero[0];
  const float maxq = float((1 << w.bits) - 1);
  for (size_t i = 0; i < np; ++i) {
    if (!std::isfinite(w.scale[i])) throw ArgError(name + ": non-finite scale");
    const float z = w.zero[i];
    if (!(z >= 0.0f && z <= maxq) || z != std::floor(z))
      throw ArgError(name + ": zero point " + std::to_string(z) + " is not an integer in [0, " + std::to_string(int(maxq)) + "]");
    p.scale_f16 = p.scale_f16 && is_f16_exact(w.scale[i]);
    p.zero_const = p.zero_const && z == p.zero_value;
  }
  const uint32_t qlimit = 1u << w.bits;
  for (size_t i = 0; i < size_t(w.rows * w.cols); ++i)
    if (w.q[i] >= qlimit) throw ArgError(name + ": code " + std::to_string(w.q[i]) + " does not fit in " + std::to_string(w.bits) + " bits");
  alloc_params(p);
  for (int64_t o = 0; o < w.rows; ++o)
    for (int64_t g = 0; g < w.groups; ++g) {
      set_scale(p, o, g, w.scale[size_t(o * w.groups + g)]);
      if (!p.zero_const) set_zero_bits(p, o, g, f32_to_f16(w.zero[size_t(o * w.groups + g)]));
    }
  const uint8_t* q = w.q;
  const int64_t cols = w.cols;
  fill_codes(p, [q, cols](int64_t o, int32_t c) { return uint32_t(q[o * cols + c]); });
  return p;
}

QPacked qpack_ggml(ggml::Type t, const void* data, int64_t n, int64_t k, const char* what) {
  const std::string name = what;
  using ggml::Type;
  if (t != Type::Q4_0 && t != Type::Q4_1 && t != Type::Q5_0 && t != Type::Q5_1 && t != Type::Q8_0)
    throw UnsupportedError(name + ": calq's quantized kernels do not run ggml type " + ggml::type_name(t));
  if (n <= 0 || k <= 0 || k % 32 != 0)
    throw ArgError(name + ": ggml " + ggml::type_name(t) + " weight " + shape_str(n, k) + " needs rows of whole 32-blocks");
  if (reinterpret_cast<uintptr_t>(data) % 2 != 0) throw ArgError(name + ": ggml blocks must be 2-byte aligned");
  QPacked p;
  p.n = n;
  p.k = k;
  p.groups = k / 32;
  p.kp = k;
  p.tiles = round_up(n, 2 * kQTileN) / kQTileN;
  for (int64_t c = 0; c < k / kQChunkK; ++c) p.chunk_group.push_back(int32_t(c * kQChunkK / 32));
  p.scale_f16 = true;
  p.min_form = t == Type::Q4_1 || t == Type::Q5_1;
  p.zero_const = !p.min_form;
  p.zero_value = t == Type::Q4_0 ? 8.0f : t == Type::Q5_0 ? 16.0f : 128.0f;
  p.bits = (t == Type::Q4_0 || t == Type::Q4_1) ? 4 : (t == Type::Q8_0 ? 8 : 5);
  p.storage = p.bits;
  alloc_params(p);
  const size_t row_bytes = ggml::row_size(t, k);
  const auto* base = static_cast<const uint8_t*>(data);
  auto* sc = reinterpret_cast<uint16_t*>(p.scales.data());
  auto* zr = reinterpret_cast<uint16_t*>(p.zeros.data());
  const size_t bsz = ggml::type_traits(uint32_t(t)).type_size;
  for (int64_t o = 0; o < n; ++o)
    for (int64_t b = 0; b < k / 32; ++b) {
      const uint8_t* blk = base + size_t(o) * row_bytes + size_t(b) * bsz;
      uint16_t d, m = 0;
      std::memcpy(&d, blk, 2);
      if (p.min_form) std::memcpy(&m, blk + 2, 2);
      const size_t idx = size_t((o / kQTileN * p.groups + b) * kQTileN + o % kQTileN);
      sc[idx] = d;  // the file's f16 bits, unchanged
      if (p.min_form) zr[idx] = m;
    }
  fill_codes(p, [&](int64_t o, int32_t c) -> uint32_t {
    const uint8_t* blk = base + size_t(o) * row_bytes + size_t(c / 32) * bsz;
    const int j = c % 32;
    switch (t) {
      case Type::Q8_0: return uint32_t(int(reinterpret_cast<const ggml::block_q8_0*>(blk)->qs[j]) + 128);
      case Type::Q4_0: {
        const auto* b = reinterpret_cast<const ggml::block_q4_0*>(blk);
        return j < 16 ? b->qs[j] & 15u : uint32_t(b->qs[j - 16] >> 4);
      }
      case Type::Q4_1: {
        const auto* b = reinterpret_cast<const ggml::block_q4_1*>(blk);
        return j < 16 ? b->qs[j] & 15u : uint32_t(b->qs[j - 16] >> 4);
      }
      case Type::Q5_0: case Type::Q5_1: {
        const uint8_t* qh = blk + (t == Type::Q5_0 ? 2 : 4);
        const uint8_t* qs = qh + 4;
        uint32_t h;
        std::memcpy(&h, qh, 4);
        const uint32_t lo = j < 16 ? qs[j] & 15u : uint32_t(qs[j - 16] >> 4);
        return lo | (((h >> j) & 1u) << 4);
      }
      default: return 0;
    }
  });
  return p;
}

void qpacked_dequantize(const QPacked& p, float* w) {
  for (int64_t i = 0; i < p.kp; ++i) {
    const int64_t c = p.perm.empty() ? (i < p.k ? i : -1) : p.perm[size_t(i)];
    if (c < 0) continue;
    for (int64_t o = 0; o < p.n; ++o) w[o * p.k + c] = p.weight(o, i);
  }
}

int8_t W8A8Packed::weight(int64_t o, int64_t i) const {
  return int8_t(w.data()[((o / kQTileN * (kq / 4) + i / 4) * kQTileN + o % kQTileN) * 4 + i % 4]);
}

W8A8Packed w8a8_pack(const int8_t* w, const float* scale, int64_t n, int64_t k) {
  if (n <= 0 || k <= 0) throw ArgError("w8a8_pack: empty weight " + shape_str(n, k));
  // vpdpbusd accumulates 4 products of u8 (<= 255) and s8 (>= -128) per step without saturation;
  // the int32 sum stays exact for k < 2^31 / (255 · 128).
  if (k > 65000) throw UnsupportedError("w8a8_pack: k = " + std::to_string(k) + " could overflow int32 accumulation");
  W8A8Packed p;
  p.n = n;
  p.k = k;
  p.kq = round_up(k, 4);
  p.tiles = round_up(n, 2 * kQTileN) / kQTileN;
  p.w = AlignedBytes(size_t(p.tiles * kQTileN * p.kq));
  p.scale.assign(size_t(p.tiles * kQTileN), 0.0f);
  p.colsum.assign(size_t(p.tiles * kQTileN), 0);
  auto* dst = reinterpret_cast<int8_t*>(p.w.data());
  for (int64_t o = 0; o < n; ++o) {
    if (!std::isfinite(scale[o])) throw ArgError("w8a8_pack: non-finite scale of output " + std::to_string(o));
    p.scale[size_t(o)] = scale[o];
    int32_t sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      dst[((o / kQTileN * (p.kq / 4) + i / 4) * kQTileN + o % kQTileN) * 4 + i % 4] = w[o * k + i];
      sum += w[o * k + i];
    }
    p.colsum[size_t(o)] = sum;
  }
  return p;
}

W8A8Packed w8a8_pack(const QuantCodesView& v, const char* what) {
  const std::string name = what;
  if (v.bits != 8 || v.groups != 1)
    throw UnsupportedError(name + ": W8A8 needs 8-bit per-output-channel weights (bits " + std::to_string(v.bits) +
                           ", " + std::to_string(v.groups) + " groups per row)");
  std::vector<int8_t> w(size_t(v.rows * v.cols));
  for (int64_t o = 0; o < v.rows; ++o) {
    if (v.zero[o] != 128.0f) throw UnsupportedError(name + ": W8A8 needs symmetric weights (zero point 128)");
    for (int64_t c = 0; c < v.cols; ++c) w[size_t(o * v.cols + c)] = int8_t(int(v.q[o * v.cols + c]) - 128);
  }
  return w8a8_pack(w.data(), v.scale, v.rows, v.cols);
}

}  // namespace calq
