#include "observe/hessian.h"

#include <chrono>

#include "kernels/linalg.h"
#include "util/error.h"

namespace calq {

void Hessian::accumulate(const float* x, int64_t rows) {
  if (rows <= 0) return;
  const double old_n = double(nsamples);
  nsamples += rows;
  const float beta = float(old_n / double(nsamples));
  const float alpha = float(2.0 / double(nsamples));
  syrk_upper_xtx(n, rows, alpha, x, beta, h.data());  // upper triangle of H = beta·H + alpha·XᵀX
}

void Hessian::accumulate_ref(const float* x, int64_t rows) {
  if (rows <= 0) return;
  const double old_n = double(nsamples);
  nsamples += rows;
  const double beta = old_n / double(nsamples), alpha = 2.0 / double(nsamples);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t r = 0; r < rows; ++r) s += double(x[r * n + i]) * x[r * n + j];
      h[size_t(i * n + j)] = float(beta * h[size_t(i * n + j)] + alpha * s);
    }
}

void Hessian::symmetrize() {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) h[size_t(i * n + j)] = h[size_t(j * n + i)];
}

HessianCollector::HessianCollector(const std::vector<std::vector<std::string>>& groups) {
  for (const auto& g : groups) {
    if (g.empty()) continue;
    groups_.push_back(Group{});
    for (const auto& m : g) {
      if (group_of_.count(m)) throw ArgError("HessianCollector: module '" + m + "' listed twice");
      group_of_[m] = groups_.size() - 1;
    }
  }
}

void HessianCollector::on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  auto it = group_of_.find(module);
  if (it == group_of_.end()) return;
  Group& g = groups_[it->second];
  if (!g.h) g.h = std::make_shared<Hessian>(cols);
  if (g.h->n != cols)
    throw ArgError("HessianCollector: '" + module + "' input has " + std::to_string(cols) + " columns, its group " +
                   std::to_string(g.h->n));
  // A member reporting the pointer another member already accumulated is the same input (q/k/v);
  // a member reporting it twice means a new batch that happens to reuse the buffer.
  if (x == g.last && !g.seen.count(module)) {
    g.seen.insert(module);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  g.h->accumulate(x, rows);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g.last = x;
  g.seen = {module};
  g.symmetric = false;
}

std::shared_ptr<Hessian> HessianCollector::get(const std::string& module) {
  auto it = group_of_.find(module);
  if (it == group_of_.end() || !groups_[it->second].h)
    throw ArgError("HessianCollector: no input was observed for '" + module + "'");
  Group& g = groups_[it->second];
  if (!g.symmetric) {
    g.h->symmetrize();
    g.symmetric = true;
  }
  return g.h;
}

}  // namespace calq
