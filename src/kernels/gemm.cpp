#include "kernels/gemm.h"

#include <cblas.h>

#include <cstring>
#include <vector>

#include "util/error.h"

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

void sgemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), alpha, a,
              int(lda), b, int(ldb), beta, c, int(ldc));
}

namespace {
class PlainPacked final : public PackedWeight {
 public:
  PlainPacked(const float* w, int64_t n, int64_t k) : n_(n), k_(k), w_(w, w + n * k) {}
  int64_t n() const override { return n_; }
  int64_t k() const override { return k_; }
  ComputeType compute() const override { return ComputeType::F32; }
  size_t bytes() const override { return w_.size() * 4; }
  const float* data() const { return w_.data(); }

 private:
  int64_t n_, k_;
  std::vector<float> w_;
};
}  // namespace

std::shared_ptr<PackedWeight> pack_weight(const float* w, int64_t n, int64_t k, ComputeType c) {
  return std::make_shared<PlainPacked>(w, n, k);
}

void gemm_packed(const float* x, int64_t rows, const PackedWeight& pw, const float* bias, float* y) {
  const auto& p = static_cast<const PlainPacked&>(pw);
  const int64_t n = p.n(), k = p.k();
  if (rows == 0) return;
  if (bias) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * n, bias, size_t(n) * 4);
  }
  sgemm(true, rows, n, k, 1.0f, x, k, p.data(), k, bias ? 1.0f : 0.0f, y, n);
}

}  // namespace calq
