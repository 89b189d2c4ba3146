// The row kernels of ops.h (norms, activations, RoPE) at the CPU's best width, chosen at run time
// (simd_kernels.h: AVX-512 or AVX2 + FMA; simd_ops_impl.h holds their code). Without AVX2, and for
// the two forms without a vector version (GELU-erf, interleaved RoPE), the references of ops.cpp.
#include "kernels/isa.h"
#include "kernels/ops.h"
#include "kernels/simd_kernels.h"

namespace calq {

namespace {
const sk::Kernels* fast() { return sk::kernels_for(active_isa()); }
int act_code(ActKind a) { return a == ActKind::SiLU ? 0 : a == ActKind::ReLU ? 1 : 2; }
}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y) {
  if (const sk::Kernels* k = fast()) return k->rms_norm(x, rows, n, w, eps, y);
  rms_norm_ref(x, rows, n, w, eps, y);
}

void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y) {
  if (const sk::Kernels* k = fast()) return k->layer_norm(x, rows, n, w, b, eps, y);
  layer_norm_ref(x, rows, n, w, b, eps, y);
}

void gated_act(float* g, const float* u, int64_t n, ActKind a) {
  const sk::Kernels* k = fast();
  if (k && a != ActKind::GELU) return k->gated_act(g, u, n, act_code(a));
  gated_act_ref(g, u, n, a);
}

void act_inplace(float* x, int64_t n, ActKind a) {
  const sk::Kernels* k = fast();
  if (k && a != ActKind::GELU) return k->act_inplace(x, n, act_code(a));
  act_inplace_ref(x, n, a);
}

void apply_rope(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const RopeTable& t, bool interleaved,
                int64_t ld) {
  const sk::Kernels* k = fast();
  if (!k || interleaved) return apply_rope_ref(x, rows, heads, dim, pos, t, interleaved, ld);  // Cohere only
  k->rope(x, rows, heads, dim, pos, t.cos.data(), t.sin.data(), t.half, ld == 0 ? int64_t(heads) * dim : ld);
}

}  // namespace calq
