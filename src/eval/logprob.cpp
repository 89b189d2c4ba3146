#include "eval/logprob.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace calq::eval {

float exp_neg(float x) {
  // exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n ln2 in [-ln2/2, ln2/2].
  x = x < -87.3f ? -87.3f : x;
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;  // ln2 split in two (Cody-Waite) so n*ln2 is exact enough
  r = r - n * -2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  // 2^n by building the exponent bits (n >= -126 here, so the result stays normal).
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

namespace {
float row_max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}
}  // namespace

double row_logsumexp(const float* x, int64_t n) {
  const float m = row_max(x, n);
  constexpr int L = 16;
  double total = 0;
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) {  // float lanes over 256 values, then one double add per lane
    float acc[L] = {};
    for (int64_t j = 0; j < 256; j += L)
#pragma omp simd
      for (int l = 0; l < L; ++l) acc[l] += exp_neg(x[i + j + l] - m);
    for (int l = 0; l < L; ++l) total += acc[l];
  }
  for (; i < n; ++i) total += exp_neg(x[i] - m);
  return double(m) + std::log(total);
}

double row_logsumexp_ref(const float* x, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, double(x[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - m);
  return m + std::log(s);
}

int64_t row_argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

void row_topk(const float* x, int64_t n, int k, int32_t* ids, float* vals) {
  k = int(std::min<int64_t>(k, n));
  // Heap of the best k so far; with `better` as the heap order its front is the worst kept entry.
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::vector<std::pair<float, int32_t>> heap;
  heap.reserve(size_t(k));
  for (int64_t i = 0; i < n; ++i) {
    if (int(heap.size()) < k) {
      heap.emplace_back(x[i], int32_t(i));
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (x[i] > heap.front().first) {  // equal values keep the earlier (lower) index
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = {x[i], int32_t(i)};
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better);  // best first
  for (int j = 0; j < k; ++j) {
    ids[j] = heap[size_t(j)].second;
    vals[j] = heap[size_t(j)].first;
  }
}

double row_tail_mass(const float* x, int64_t n, double lse, const int32_t* ids, int k, uint8_t* scratch) {
  for (int j = 0; j < k; ++j) scratch[ids[j]] = 1;
  const float shift = float(lse);
  const double corr = std::exp(double(shift) - lse);  // exp(x - lse) = exp(x - shift) * corr
  double total = 0;
  constexpr int64_t B = 256;
  for (int64_t i = 0; i < n; i += B) {
    const int64_t e = std::min(n, i + B);
    float acc = 0;
    for (int64_t j = i; j < e; ++j) {
      const float d = x[j] - shift;
      acc += scratch[j] ? 0.0f : (d < 0 ? exp_neg(d) : std::exp(d));
    }
    total += acc;
  }
  for (int j = 0; j < k; ++j) scratch[ids[j]] = 0;
  return total * corr;
}

}  // namespace calq::eval
