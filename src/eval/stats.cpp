#include "eval/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace calq::eval {

double MeanAccumulator::stderr_of_mean() const {
  if (n_ < 2) return 0.0;
  const double m = sum_ / double(n_);
  const double var = sum2_ / double(n_) - m * m;  // population variance E[x²] - E[x]²
  return var > 0 ? std::sqrt(var / double(n_ - 1)) : 0.0;
}

PerplexityEstimate perplexity_of(const MeanAccumulator& nll) {
  PerplexityEstimate e;
  e.ppl = std::exp(nll.mean());
  e.ppl_stderr = e.ppl * nll.stderr_of_mean();
  return e;
}

std::vector<double> percentiles(std::vector<double> v, const std::vector<double>& qs) {
  std::vector<double> out;
  out.reserve(qs.size());
  if (v.empty()) {
    out.assign(qs.size(), std::numeric_limits<double>::quiet_NaN());
    return out;
  }
  std::sort(v.begin(), v.end());
  for (double q : qs) {
    const double pos = std::clamp(q, 0.0, 1.0) * double(v.size() - 1);
    const size_t lo = size_t(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    const double f = pos - double(lo);
    out.push_back(v[lo] + (v[hi] - v[lo]) * f);
  }
  return out;
}

double percentile(std::vector<double> v, double q) { return percentiles(std::move(v), {q})[0]; }
double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

}  // namespace calq::eval
