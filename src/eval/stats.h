// Summary statistics shared by the evaluations: a running mean with its standard error, the
// delta-method standard error of a perplexity, and percentiles. All accumulation is in double and
// in the order values are added, so a result never depends on the thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace calq::eval {

// Running mean of values added one at a time.
class MeanAccumulator {
 public:
  void add(double x) {
    sum_ += x;
    sum2_ += x * x;
    ++n_;
  }
  // Adds a block summarized elsewhere (Σx, Σx², n), e.g. one perplexity window.
  void merge(double sum, double sum2, int64_t n) {
    sum_ += sum;
    sum2_ += sum2;
    n_ += n;
  }
  double sum2() const { return sum2_; }
  int64_t count() const { return n_; }
  double sum() const { return sum_; }
  double mean() const { return n_ ? sum_ / double(n_) : 0.0; }
  // Standard error of the mean, sqrt((E[x²] - E[x]²) / (n - 1)): the formula llama.cpp's
  // perplexity and KL-divergence reports use; equal to the sample standard deviation (n - 1
  // denominator) / sqrt(n), lm-evaluation-harness's `mean_stderr`. 0 for n < 2.
  double stderr_of_mean() const;

 private:
  double sum_ = 0, sum2_ = 0;
  int64_t n_ = 0;
};

// exp(mean NLL) with the delta-method error: d exp(m) = exp(m) dm (as llama.cpp reports).
struct PerplexityEstimate {
  double ppl = 0, ppl_stderr = 0;
};
PerplexityEstimate perplexity_of(const MeanAccumulator& nll);

// Percentile q in [0, 1] of `v` by linear interpolation between order statistics
// (numpy.percentile's default: position q * (n - 1)). Sorts a copy. NaN for an empty vector.
double percentile(std::vector<double> v, double q);
// Several percentiles from one sort.
std::vector<double> percentiles(std::vector<double> v, const std::vector<double>& qs);
double median(std::vector<double> v);

}  // namespace calq::eval
