#include "quant/gptq.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/linalg.h"
#include "util/error.h"

namespace calq {

void GptqConfig::validate() const {
  check_bits(bits, "gptq");
  if (group_size == 0 || group_size < -1)
    throw ArgError("gptq: group size must be -1 (per channel) or >= 1, got " + std::to_string(group_size));
  if (!(percdamp >= 0.0) || !std::isfinite(percdamp)) throw ArgError("gptq: percdamp must be >= 0");
  if (block_size < 1) throw ArgError("gptq: block size must be >= 1");
  if (static_groups && group_size == -1) throw ArgError("gptq: static groups need a group size");
}

QuantScheme GptqConfig::scheme() const {
  return QuantScheme::weights(bits, sym, group_size, RangeRule::Gptq, f16_scales);
}

Json GptqConfig::to_json() const {
  return {{"bits", bits}, {"group_size", group_size}, {"sym", sym}, {"percdamp", percdamp},
          {"block_size", block_size}, {"desc_act", desc_act}, {"static_groups", static_groups},
          {"true_sequential", true_sequential}, {"scale_dtype", f16_scales ? "f16" : "f32"}};
}

double quadratic_trace(const float* a, int64_t rows, int64_t cols, const float* h) {
  const int64_t chunk = 256;
  std::vector<float> m(static_cast<size_t>(std::min(rows, chunk) * cols));
  double total = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    sgemm(false, nr, cols, cols, 1.0f, a + r0 * cols, cols, h, cols, 0.0f, m.data(), cols);
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (nr * cols > (1 << 18))
    for (int64_t i = 0; i < nr * cols; ++i) s += double(a[r0 * cols + i]) * m[size_t(i)];
    total += s;
  }
  return total;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// H[perm][:, perm] + damp·I with the dead diagonal set to 1, as T (float or double).
template <class T>
std::vector<T> damped_permuted(const Hessian& h, const std::vector<int64_t>& perm, const std::vector<float>& diag,
                               double damp) {
  const int64_t n = h.n;
  std::vector<T> a(static_cast<size_t>(n * n));
#pragma omp parallel for schedule(static) if (n * n > (1 << 18))
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) a[size_t(i * n + j)] = T(h.h[size_t(perm[i] * n + perm[j])]);
  for (int64_t i = 0; i < n; ++i) a[size_t(i * n + i)] = T(double(diag[size_t(perm[i])]) + damp);
  return a;
}

}  // namespace

GptqResult gptq_quantize(const float* w, int64_t rows, int64_t cols, const Hessian& h, const GptqConfig& cfg) {
  cfg.validate();
  if (h.n != cols) throw ArgError("gptq: Hessian is " + std::to_string(h.n) + "x" + std::to_string(h.n) +
                                  " for a weight with " + std::to_string(cols) + " columns");
  // Non-finite numbers would surface as a Cholesky failure blamed on the dampening: refuse them here.
  require_finite(w, rows, cols, "the weight");
  require_finite(h.h.data(), cols, cols, "the Hessian of its input (X^T X)");
  const QuantScheme s = cfg.scheme();
  const int maxq = s.maxq();
  const int64_t G = cfg.group_size, ng = s.n_groups(cols);
  GptqResult res;
  res.qw = make_quantized_weight(rows, cols, s);
  QuantizedWeight& qw = res.qw;

  // Per-channel parameters come from W before the dead columns are zeroed (gptq.py order).
  if (G == -1)
    for (int64_t r = 0; r < rows; ++r) {
      const AffineParams p = find_params(w + r * cols, cols, 1, s);
      qw.scale[size_t(r)] = p.scale;
      qw.zero[size_t(r)] = p.zero;
    }
  std::vector<float> diag(static_cast<size_t>(cols));
  std::vector<uint8_t> dead(static_cast<size_t>(cols), 0);
  for (int64_t i = 0; i < cols; ++i) {
    diag[size_t(i)] = h.h[size_t(i * cols + i)];
    if (diag[size_t(i)] == 0.0f) {
      diag[size_t(i)] = 1.0f;
      dead[size_t(i)] = 1;
      ++res.dead_columns;
    }
  }
  auto wval = [&](int64_t r, int64_t c) { return dead[size_t(c)] ? 0.0f : w[r * cols + c]; };  // W[:, dead] = 0
  if (cfg.static_groups) {
    std::vector<float> grp(static_cast<size_t>(G));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t c0 = g * G, c1 = std::min(cols, c0 + G);
        for (int64_t c = c0; c < c1; ++c) grp[size_t(c - c0)] = wval(r, c);
        const AffineParams p = find_params(grp.data(), c1 - c0, 1, s);
        qw.scale[size_t(r * ng + g)] = p.scale;
        qw.zero[size_t(r * ng + g)] = p.zero;
      }
  }

  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (cfg.desc_act)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return diag[size_t(a)] > diag[size_t(b)]; });
  double mean_diag = 0;
  for (float d : diag) mean_diag += d;
  mean_diag /= double(std::max<int64_t>(cols, 1));
  const double damp = cfg.percdamp * mean_diag;

  // Hinv: upper Cholesky factor of (H + λI)⁻¹ in the permuted order.
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> hinv = damped_permuted<float>(h, perm, diag, damp);
  if (!cholesky_inverse_upper(hinv.data(), cols)) {
    std::vector<double> hd = damped_permuted<double>(h, perm, diag, damp);
    if (!cholesky_inverse_upper(hd.data(), cols))
      throw Error("gptq: the dampened Hessian is not positive definite (percdamp " + std::to_string(cfg.percdamp) +
                  "); increase --percdamp");
    for (size_t i = 0; i < hd.size(); ++i) hinv[i] = float(hd[i]);
    res.f64_fallback = true;
  }
  res.seconds_inverse = seconds_since(t0);

  // W in permuted column order; codes are written back to original columns at the end.
  t0 = std::chrono::steady_clock::now();
  std::vector<float> Wp(static_cast<size_t>(rows * cols));
  const bool big = rows * cols > (1 << 18);  // below this, threads cost more than they save
#pragma omp parallel for schedule(static) if (big)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) Wp[size_t(r * cols + c)] = wval(r, perm[size_t(c)]);

  std::vector<uint8_t> qp(static_cast<size_t>(rows * cols));
  const int64_t B = cfg.block_size;
  std::vector<float> err1(static_cast<size_t>(rows * std::min(B, cols)));
  double loss = 0;
  for (int64_t i1 = 0; i1 < cols; i1 += B) {
    const int64_t i2 = std::min(i1 + B, cols), cnt = i2 - i1;
    // Rows are independent given Hinv: each thread runs the whole block for its rows.
#pragma omp parallel for reduction(+ : loss) schedule(static) if (big)
    for (int64_t r = 0; r < rows; ++r) {
      float w1[1024];  // block copy of this row (block_size <= 1024 checked below)
      std::vector<float> w1_heap;
      float* w1p = w1;
      if (cnt > 1024) {
        w1_heap.resize(size_t(cnt));
        w1p = w1_heap.data();
      }
      const float* wrow = &Wp[size_t(r * cols)];
      std::copy(wrow + i1, wrow + i2, w1p);
      AffineParams p{qw.scale[size_t(r * ng)], qw.zero[size_t(r * ng)]};
      if (G != -1 && !cfg.static_groups && i1 % G != 0) {  // group started in an earlier block
        const int64_t g = i1 / G;
        p = {qw.scale[size_t(r * ng + g)], qw.zero[size_t(r * ng + g)]};
      }
      float* e = &err1[size_t(r * cnt)];
      for (int64_t i = 0; i < cnt; ++i) {
        const int64_t col = i1 + i;
        if (G != -1) {
          if (!cfg.static_groups) {
            if (col % G == 0) {  // new group: parameters from W's columns [col, col+G) (block-start state)
              p = find_params(wrow + col, std::min(G, cols - col), 1, s);
              qw.scale[size_t(r * ng + col / G)] = p.scale;
              qw.zero[size_t(r * ng + col / G)] = p.zero;
            }
          } else {
            const int64_t g = perm[size_t(col)] / G;
            p = {qw.scale[size_t(r * ng + g)], qw.zero[size_t(r * ng + g)]};
          }
        }
        const float d = hinv[size_t(col * cols + col)];
        const float x = w1p[i];
        const uint8_t code = quantize_code(x, p, maxq);
        const float q = dequantize_code(code, p);
        qp[size_t(r * cols + col)] = code;
        loss += double(x - q) * double(x - q) / (double(d) * double(d));
        const float ei = (x - q) / d;
        e[i] = ei;
        const float* hrow = &hinv[size_t(col * cols + i1)];
        for (int64_t j = i + 1; j < cnt; ++j) w1p[j] -= ei * hrow[j];
      }
    }
    // Lazy batch update of the remaining columns: W[:, i2:] -= Err1 · Hinv[i1:i2, i2:].
    if (i2 < cols)
      sgemm(false, rows, cols - i2, cnt, -1.0f, err1.data(), cnt, &hinv[size_t(i1 * cols + i2)], cols, 1.0f,
            &Wp[size_t(i2)], cols);
  }
  res.loss = loss / 2;
  // A lazy update that overflowed would leave NaN/inf scales (find_params propagates NaN).
  require_finite(qw.scale.data(), rows, ng, "gptq: the computed scales");

  // Back to the original column order; g_idx as AutoGPTQ builds it.
  std::vector<int64_t> pos(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) pos[size_t(perm[size_t(c)])] = c;
#pragma omp parallel for schedule(static) if (big)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) qw.q[size_t(r * cols + c)] = qp[size_t(r * cols + pos[size_t(c)])];
  for (int64_t c = 0; c < cols; ++c)
    qw.g_idx[size_t(c)] = G == -1 ? 0 : int32_t(cfg.static_groups ? c / G : pos[size_t(c)] / G);
  res.seconds_quantize = seconds_since(t0);

  if (cfg.report_error) {
    t0 = std::chrono::steady_clock::now();
    Tensor d = qw.dequantize();  // becomes W - Q in place
    float* dd = d.f32_mut();
    for (int64_t i = 0; i < rows * cols; ++i) dd[i] = w[i] - dd[i];
    res.error = quadratic_trace(dd, rows, cols, h.h.data());
    res.reference = quadratic_trace(w, rows, cols, h.h.data());
    res.seconds_error = seconds_since(t0);
  }
  return res;
}

}  // namespace calq
