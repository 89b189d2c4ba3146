// Blocked causal attention (the fast path of attention_ref, kernels/ops.h): the driver. The
// kernels run at the CPU's best width, chosen at run time (simd_kernels.h: AVX-512 or AVX2 + FMA;
// simd_attn_impl.h holds their code); without AVX2, attention_ref.
//
// Work is split into tasks (sequence b, kv head, block of BQ query positions); a task processes
// the G = heads/kv_heads query heads that share the kv head together, so every K/V tile it loads
// serves G·BQ query rows (GQA). Keys are visited in chunks of KC with an online softmax
// (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022): per row a running max m and sum l,
// the output accumulator rescaled by exp(m_old - m_new) when the max grows. Chunks start at
// 16-aligned key positions and stop at the block's last query, so masked work is at most one
// chunk's diagonal triangle. S = Q·Kᵀ runs on K transposed once per (b, kv head) into [hd][T]
// (vectors over keys); O += P·V on V copied into padded rows (vectors over head_dim).
// ComputeType::BF16 (AttnDims::bf16) runs both products on bf16-rounded Q, K, P and V with f32
// accumulation and an f32 softmax: AVX512-BF16 dot products, or (AVX2) f32 FMAs of the rounded
// values.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "kernels/isa.h"
#include "kernels/ops.h"
#include "kernels/profile.h"
#include "kernels/simd_kernels.h"
#include "tensor/dtype.h"

namespace calq {

namespace {

// Keys per chunk (S tile width): the chunk's K and V take at most 256 KiB (512 keys at head_dim 64
// in f32), so they and the S tile stay in L2; for T <= chunk the online softmax degenerates to one
// exact row softmax per task.
int64_t keys_per_chunk(int hd, bool bf16_pairs) {
  const int64_t bytes = int64_t(hd) * (bf16_pairs ? 2 : 4) * 2;  // K and V of one key
  return std::clamp<int64_t>((256 << 10) / bytes / 64 * 64, 64, 512);
}

int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }

// A power-of-two row stride maps every row of a tile to the same few L1 sets; odd line counts
// spread them (this alone is worth ~1.3x on T = 512).
int64_t odd_lines(int64_t n16) { return (n16 / 16) % 2 == 0 ? n16 + 16 : n16; }

// A thread's task scratch (sk::AttnWork points into it).
struct Workspace {
  std::vector<float> s, o, m, l, alpha, qp;
  std::vector<uint32_t> q2, p2, tmp;
  std::vector<int64_t> pos, pos_max;
  sk::AttnWork view(int rows, const sk::AttnGeom& g) {
    const int hd2 = (g.hd + 1) / 2;
    s.resize(size_t(rows) * g.lds);
    o.resize(size_t(rows) * g.ldv);
    for (auto* v : {&m, &l, &alpha}) v->resize(size_t(rows));
    pos.resize(size_t(rows));
    pos_max.resize(size_t(rows));
    if (g.pairs) {
      q2.resize(size_t(rows) * hd2);
      p2.resize(size_t(rows) * (g.lds / 2));
    } else {
      qp.resize(size_t(rows) * g.hd);
    }
    return {s.data(), o.data(), m.data(), l.data(), alpha.data(), qp.data(), q2.data(), p2.data(), pos.data(),
            pos_max.data()};
  }
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

// The scalar path of bf16 attention: the reference on bf16-rounded copies of q, k and v (rows of
// `width` floats, `ld` apart), so that every ISA computes the same bf16 products.
std::vector<float> bf16_rounded(const float* x, int64_t rows, int64_t ld, int64_t width) {
  std::vector<float> r(size_t((rows - 1) * ld + width));
  for (size_t i = 0; i < r.size(); ++i) r[i] = bf16_to_f32(f32_to_bf16(x[i]));
  return r;
}

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, const AttnDims& d) {
  const int64_t T = d.seq;
  KernelTimer timer(KernelKind::Attention, 2 * 2 * d.batch * d.heads * d.head_dim * (T * (T + 1) / 2));
  const sk::Kernels* kern = sk::kernels_for(active_isa());
  const int nv = (d.head_dim + 15) / 16;
  if (T <= 0 || d.batch <= 0) return;
  // No AVX2, or head_dim > 128 (not tiled; no such model here): the reference.
  if (!kern || nv > 8) {
    if (!d.bf16) return attention_ref(q, k, v, out, d);
    const int64_t rows = d.batch * T, kw = int64_t(d.kv_heads) * d.head_dim;
    const auto qr = bf16_rounded(q, rows, d.qld(), int64_t(d.heads) * d.head_dim);
    const auto kr = bf16_rounded(k, rows, d.kld(), kw), vr = bf16_rounded(v, rows, d.vld(), kw);
    return attention_ref(qr.data(), kr.data(), vr.data(), out, d);  // the copies keep the row strides
  }
  sk::AttnGeom g;
  g.T = T;
  g.qs = d.qld();
  g.ks = d.kld();
  g.vs = d.vld();
  g.os = d.outld();
  g.G = d.heads / d.kv_heads;
  g.hd = d.head_dim;
  g.nv = nv;
  g.window = d.window;
  g.scale = d.scale;
  g.bf16 = d.bf16;
  g.pairs = d.bf16 && kern->attn_bf16_pairs;
  g.Tp = odd_lines(round16(T));
  g.ldv = 16 * nv;
  g.kc = keys_per_chunk(g.hd, g.pairs);
  g.lds = odd_lines(g.kc);
  // Query block: ~64-128 rows per task (G heads x BQ positions), and enough tasks for the threads.
  const int64_t bq = std::clamp<int64_t>(128 / g.G, 16, 64);
  const int64_t nqb = (T + bq - 1) / bq;
  const int64_t nkv = int64_t(d.batch) * d.kv_heads;
  const int hd2 = (g.hd + 1) / 2;
  // Packed K/V per (sequence, kv head): f32 kt + vp, or bf16 pairs kt2 + v2 (4-byte words alike).
  const int64_t kt_size = (g.pairs ? int64_t(hd2) : int64_t(g.hd)) * g.Tp;
  const int64_t v_size = (g.pairs ? g.Tp / 2 : g.Tp) * g.ldv;
  // Uninitialised storage: the packing writes every element, padding included. (malloc'ed
  // storage holds floats or uint32 words alike, C++20 implicit object creation.)
  const size_t bytes = (size_t(nkv * (kt_size + v_size)) * 4 + 63) / 64 * 64;
  std::unique_ptr<void, decltype(&std::free)> buf(std::aligned_alloc(64, bytes), &std::free);
  if (!buf) throw std::bad_alloc();
  uint32_t* kt = static_cast<uint32_t*>(buf.get());
  uint32_t* vp = kt + nkv * kt_size;
  // Parallel only when the work (~2·B·heads·hd·T² flops) outweighs waking the thread team.
  const bool par = nkv * nqb > 1 && double(d.batch) * d.heads * d.head_dim * double(T) * double(T) > 2e6;
#pragma omp parallel if (par)
  {
    Workspace& w = workspace();
#pragma omp for schedule(static)
    for (int64_t x = 0; x < nkv; ++x) {
      const int64_t b = x / d.kv_heads, kvh = x % d.kv_heads;
      if (g.pairs) w.tmp.resize(size_t(T) * hd2);
      kern->attn_pack(k + b * T * g.ks + kvh * g.hd, v + b * T * g.vs + kvh * g.hd, g, kt + x * kt_size,
                      vp + x * v_size, w.tmp.data());
    }
    // Heaviest (last) query blocks first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < nkv * nqb; ++t) {
      const int64_t x = t % nkv, qblk = nqb - 1 - t / nkv;
      const int64_t b = x / d.kv_heads;
      const int kvh = int(x % d.kv_heads);
      const int64_t i0 = qblk * bq, i1 = std::min(T, i0 + bq);
      const sk::AttnWork wv = w.view(g.G * int(i1 - i0), g);
      kern->attn_task(q + b * T * g.qs, out + b * T * g.os, kt + x * kt_size, vp + x * v_size, kvh, i0, i1, g, wv);
    }
  }
}

}  // namespace calq
