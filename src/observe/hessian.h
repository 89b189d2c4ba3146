// GPTQ Hessians through the Observer API: for each linear layer, H = 2/N · Σ_t x_t x_tᵀ over the
// N calibration rows (tokens) that reached its input (Frantar et al. 2022, §3 "OBQ": the Hessian of
// the layer-wise objective ||WX - ŴX||² is 2XXᵀ).
//
// Accumulation mirrors gptq.py `add_batch`: a running mean in float32,
//   H ← H · n/(n+m);  n ← n + m;  H ← H + (2/n) · XᵀX   for a batch of m rows,
// except that n counts rows (tokens) where the reference counts sequences; the two differ by the
// constant factor T, and GPTQ's result is invariant to scaling H (dampening is relative to
// mean(diag H)). Linears that read one input (q/k/v, gate/up) share one Hessian: the decoder reports
// them with the same pointer and the collector accumulates it once.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "model/observer.h"

namespace calq {

struct Hessian {
  int64_t n = 0;         // columns (input features)
  int64_t nsamples = 0;  // rows (tokens) accumulated
  std::vector<float> h;  // n*n row-major; accumulate() keeps the upper triangle, symmetrize() fills the rest

  explicit Hessian(int64_t cols = 0) : n(cols), h(size_t(cols * cols), 0.0f) {}
  // Adds x [rows, n] (ssyrk on the upper triangle).
  void accumulate(const float* x, int64_t rows);
  // Copies the upper triangle to the lower one.
  void symmetrize();
  // Scalar reference of accumulate() (double accumulation, full matrix), for tests.
  void accumulate_ref(const float* x, int64_t rows);
};

class HessianCollector final : public Observer {
 public:
  // Each inner vector names modules that read one input and share a Hessian, e.g.
  // {{q, k, v}, {o}, {gate, up}, {down}}.
  explicit HessianCollector(const std::vector<std::vector<std::string>>& groups);

  bool wants(const std::string& module) const override { return group_of_.count(module) != 0; }
  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override;

  // The (symmetrized) Hessian of `module`; throws ArgError when it was never seen.
  std::shared_ptr<Hessian> get(const std::string& module);
  // Seconds spent accumulating (for benchmarks and the progress note).
  double seconds() const { return seconds_; }

 private:
  struct Group {
    std::shared_ptr<Hessian> h;
    const float* last = nullptr;   // the input accumulated last
    std::set<std::string> seen;    // members that reported `last`
    bool symmetric = false;
  };
  std::vector<Group> groups_;
  std::map<std::string, size_t> group_of_;
  double seconds_ = 0;
};

}  // namespace calq
