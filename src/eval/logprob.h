// Log-softmax of one logit row without materializing it: the log-partition (logsumexp) in two
// streaming passes (max, then Σ exp(x - max)), top-k selection and tail masses. The exp is a
// vectorizable polynomial (exp_neg); exp_ref / row_logsumexp_ref are the plain std::exp reference
// it is tested against. Every function handles one row on one thread, so results never depend on
// how rows are spread over threads.
#pragma once
#include <cstdint>
#include <vector>

namespace calq::eval {

// exp(x) for x <= 0 (x - max of a row), ~1 ulp in float; 0 below -87.3 (exp underflows).
// Cody-Waite range reduction + a degree-6 polynomial (Cephes expf), written as plain arithmetic so
// the compiler vectorizes the loops that call it.
float exp_neg(float x);

// log Σ exp(x_i) of a row (max + log of the sum of exp_neg(x_i - max), accumulated in double per
// 16-lane block). -inf rows are not expected (logits are finite).
double row_logsumexp(const float* x, int64_t n);
double row_logsumexp_ref(const float* x, int64_t n);  // std::exp, double throughout

// Index of the largest logit (the lowest index among ties), as argmax/greedy decoding picks it.
int64_t row_argmax(const float* x, int64_t n);

// The k largest logits of a row, in descending order (ties: lower index first).
void row_topk(const float* x, int64_t n, int k, int32_t* ids, float* vals);

// Σ exp(x_j - lse) over j not in `ids` (k of them): the probability mass outside a top-k set,
// summed directly (no 1 - Σ top-k cancellation). `scratch` must hold n bytes, all zero; it is
// left zero.
double row_tail_mass(const float* x, int64_t n, double lse, const int32_t* ids, int k, uint8_t* scratch);

}  // namespace calq::eval
