// Dense symmetric linear algebra on BLAS/LAPACK (OpenBLAS): GPTQ's inverse Hessian factor and the
// Hessian accumulation. BLAS and LAPACK are called from kernels/ only (cmake/layers.txt).
#pragma once
#include <cstdint>
#include <vector>

namespace calq {

// In place: a [n, n] row-major symmetric positive definite matrix (only its upper triangle is read)
// becomes the upper Cholesky factor U of its inverse, A⁻¹ = UᵀU, in the upper triangle (the strictly
// lower part is left unspecified). This is gptq.py's
//   H = cholesky(H); H = cholesky_inverse(H); H = cholesky(H, upper=True)
// done as spotrf + spotri + spotrf in float32 (as the reference runs on GPU). Returns false when a
// factorization fails (the matrix is numerically not positive definite; a is then unspecified):
// callers retry with the float64 variant from their input.
bool cholesky_inverse_upper(float* a, int64_t n);
bool cholesky_inverse_upper(double* a, int64_t n);

// Scalar reference for tests: the same result computed with plain double loops (O(n³), small n).
std::vector<double> cholesky_inverse_upper_ref(const std::vector<double>& a, int64_t n);

// C = beta·C + alpha·XᵀX on the upper triangle of the row-major C [n, n] (the strictly lower part
// is not touched), X [rows, n] row-major: BLAS ssyrk.
void syrk_upper_xtx(int64_t n, int64_t rows, float alpha, const float* x, float beta, float* c);

}  // namespace calq
