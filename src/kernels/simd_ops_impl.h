// Internal: the row kernels of kernels/ops.h (norms, activations, RoPE) and the f32 -> bf16
// conversion of kernels/vec.h, written once against the vector vocabulary of simd_avx512.h /
// simd_avx2.h; included by simd_avx512.cpp and simd_avx2.cpp after simd_impl.h (read its header).
// Each computes the formula of its *_ref (ops.cpp); the differences are f32 instead of double
// accumulation in the norms (2·kW partial sums, ~1e-7 relative) and vexp (~2 ulp) for std::exp.
// (No include guard: see simd_avx512.h.)

constexpr int64_t kParallelMin = 1 << 16;  // elements below which a kernel stays on one thread

inline float sum_squares(const float* x, int64_t n) {
  VF a0 = vzero(), a1 = vzero();
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    const VF u = vload(x + i), v = vload(x + i + kW);
    a0 = vfma(u, u, a0);
    a1 = vfma(v, v, a1);
  }
  for (; i < n; i += kW) {
    const VF u = vloadn(x + i, n - i);
    a0 = vfma(u, u, a0);
  }
  return vsum(vadd(a0, a1));
}

// act(x) (0 SiLU, 1 ReLU, 2 GELU-tanh).
inline VF act_v(VF x, int a) {
  const VF one = vset1(1.0f);
  if (a == 0) return vdiv(x, vadd(one, vexp(vsub(vzero(), x))));
  if (a == 1) return vmax(x, vzero());
  // 0.5·x·(1 + tanh z) = x · sigmoid(2z) = x / (1 + exp(-2z)): no cancellation near tanh = -1.
  const VF x3 = vmul(vmul(x, x), x);
  const VF z = vmul(vset1(0.7978845608028654f), vfma(vset1(0.044715f), x3, x));
  return vdiv(x, vadd(one, vexp(vmul(vset1(-2.0f), z))));
}

void rms_norm_v(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const VF inv = vset1(float(1.0 / sqrt(double(sum_squares(xr, n)) / double(n) + eps)));
    for (int64_t i = 0; i < n; i += kW) {
      const VF v = vmul(vloadn(xr + i, n - i), inv);  // (x * inv) * w, as the reference
      vstoren(yr + i, vmul(v, vloadn(w + i, n - i)), n - i);
    }
  }
}

void layer_norm_v(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    VF s = vzero();
    for (int64_t i = 0; i < n; i += kW) s = vadd(s, vloadn(xr + i, n - i));
    const VF vm = vset1(vsum(s) / float(n));
    VF q = vzero();
    for (int64_t i = 0; i < n; i += kW) {
      const VF d = vmaskz(vrange(0, n - i), vsub(vloadn(xr + i, n - i), vm));
      q = vfma(d, d, q);
    }
    const VF inv = vset1(float(1.0 / sqrt(double(vsum(q)) / double(n) + eps)));
    for (int64_t i = 0; i < n; i += kW) {
      VF v = vmul(vmul(vsub(vloadn(xr + i, n - i), vm), inv), vloadn(w + i, n - i));
      if (b) v = vadd(v, vloadn(b + i, n - i));
      vstoren(yr + i, v, n - i);
    }
  }
}

void gated_act_v(float* g, const float* u, int64_t n, int a) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += kW) vstoren(g + i, vmul(act_v(vloadn(g + i, n - i), a), vloadn(u + i, n - i)), n - i);
}

void act_inplace_v(float* x, int64_t n, int a) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += kW) vstoren(x + i, act_v(vloadn(x + i, n - i), a), n - i);
}

// Pairs (i, i + half) of every head (HF rotate_half); cos/sin: [positions][half_stride].
void rope_v(float* x, int64_t rows, int heads, int dim, const int32_t* pos, const float* cos, const float* sin,
            int half_stride, int64_t ld) {
  const int half = dim / 2;
#pragma omp parallel for schedule(static) if (rows * heads * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cos + int64_t(pos[r]) * half_stride;
    const float* s = sin + int64_t(pos[r]) * half_stride;
    for (int h = 0; h < heads; ++h) {
      float* v = x + r * ld + int64_t(h) * dim;
      for (int i = 0; i < half; i += kW) {
        const int64_t m = half - i;
        const VF x1 = vloadn(v + i, m), x2 = vloadn(v + half + i, m);
        const VF cv = vloadn(c + i, m), sv = vloadn(s + i, m);
        vstoren(v + i, vsub(vmul(x1, cv), vmul(x2, sv)), m);
        vstoren(v + half + i, vadd(vmul(x2, cv), vmul(x1, sv)), m);
      }
    }
  }
}

void cvt_bf16_v(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) vstore_bf16(d + i, vload(s + i));
  if (i < n) vstoren_bf16(d + i, vloadn(s + i, n - i), n - i);
}
