#include "kernels/linalg.h"

#include <cblas.h>

#include <cmath>
#include <cstddef>
#include <stdexcept>

#include "util/error.h"

// LAPACK (Fortran ABI, as exported by OpenBLAS). The trailing size_t is the hidden length of the
// character argument that gfortran passes.
extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t);
void spotri_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t);
}

namespace calq {

namespace {

// A row-major matrix read as column-major is its transpose; for a symmetric matrix that swaps the
// triangles. So LAPACK 'L' on the column-major view works on the row-major upper triangle, and the
// lower factor L it produces (A = LLᵀ) reads, row-major, as Lᵀ = the upper factor U.
template <class T, class Potrf, class Potri>
bool chol_inv_chol(T* a, int n, Potrf potrf, Potri potri) {
  const char lo = 'L';
  int info = 0;
  potrf(&lo, &n, a, &n, &info, 1);  // H = L Lᵀ
  if (info != 0) return false;
  potri(&lo, &n, a, &n, &info, 1);  // lower triangle of H⁻¹ (column-major)
  if (info != 0) return false;
  potrf(&lo, &n, a, &n, &info, 1);  // H⁻¹ = L₂L₂ᵀ; row-major upper triangle = L₂ᵀ = U
  return info == 0;
}

}  // namespace

bool cholesky_inverse_upper(float* a, int64_t n) {
  if (n > int64_t(1) << 30) throw ArgError("cholesky_inverse_upper: matrix too large");
  return n <= 0 || chol_inv_chol<float>(a, int(n), spotrf_, spotri_);
}

bool cholesky_inverse_upper(double* a, int64_t n) {
  if (n > int64_t(1) << 30) throw ArgError("cholesky_inverse_upper: matrix too large");
  return n <= 0 || chol_inv_chol<double>(a, int(n), dpotrf_, dpotri_);
}

std::vector<double> cholesky_inverse_upper_ref(const std::vector<double>& a, int64_t n) {
  // Symmetric inverse by Gauss-Jordan, then the upper Cholesky factor of the inverse.
  std::vector<double> m(a), inv(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) m[size_t(i * n + j)] = m[size_t(j * n + i)];  // from the upper triangle
    inv[size_t(i * n + i)] = 1.0;
  }
  for (int64_t c = 0; c < n; ++c) {
    const double p = m[size_t(c * n + c)];
    if (!(p > 0)) throw std::runtime_error("cholesky_inverse_upper_ref: not positive definite");
    for (int64_t j = 0; j < n; ++j) {
      m[size_t(c * n + j)] /= p;
      inv[size_t(c * n + j)] /= p;
    }
    for (int64_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = m[size_t(r * n + c)];
      for (int64_t j = 0; j < n; ++j) {
        m[size_t(r * n + j)] -= f * m[size_t(c * n + j)];
        inv[size_t(r * n + j)] -= f * inv[size_t(c * n + j)];
      }
    }
  }
  // inv = UᵀU with U upper: U[i][i] = sqrt(inv[i][i] - Σ_{k<i} U[k][i]²), U[i][j] = (inv[i][j] - Σ U[k][i]U[k][j]) / U[i][i].
  std::vector<double> u(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = inv[size_t(i * n + i)];
    for (int64_t k = 0; k < i; ++k) s -= u[size_t(k * n + i)] * u[size_t(k * n + i)];
    if (!(s > 0)) throw std::runtime_error("cholesky_inverse_upper_ref: inverse not positive definite");
    u[size_t(i * n + i)] = std::sqrt(s);
    for (int64_t j = i + 1; j < n; ++j) {
      double t = inv[size_t(i * n + j)];
      for (int64_t k = 0; k < i; ++k) t -= u[size_t(k * n + i)] * u[size_t(k * n + j)];
      u[size_t(i * n + j)] = t / u[size_t(i * n + i)];
    }
  }
  return u;
}

void syrk_upper_xtx(int64_t n, int64_t rows, float alpha, const float* x, float beta, float* c) {
  if (n > int64_t(1) << 30 || rows > int64_t(1) << 30) throw ArgError("syrk_upper_xtx: matrix too large");
  // Row-major upper triangle of C = beta·C + alpha·XᵀX.
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(n), int(rows), alpha, x, int(n), beta, c, int(n));
}

}  // namespace calq
