#include "observe/capture.h"

#include <algorithm>

#include "util/error.h"

namespace calq {

void RowMaskObserver::on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  if (!inner_->wants(module)) return;
  if (x != last_src_ || cols != last_cols_) {
    buf_.clear();
    for (int64_t r = 0; r < rows; ++r)
      if (mask_[r]) buf_.insert(buf_.end(), x + r * cols, x + (r + 1) * cols);
    buf_rows_ = int64_t(buf_.size()) / std::max<int64_t>(cols, 1);
    last_src_ = x;
    last_cols_ = cols;
  }
  if (buf_rows_ > 0) inner_->on_linear_input(module, buf_.data(), buf_rows_, cols);
}

InputCapture::InputCapture(const std::vector<std::vector<std::string>>& groups) {
  for (const auto& g : groups) {
    groups_.emplace_back();
    for (const auto& m : g) group_of_[m] = groups_.size() - 1;
  }
}

void InputCapture::on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  auto it = group_of_.find(module);
  if (it == group_of_.end()) return;
  Group& g = groups_[it->second];
  if (x == g.last && !g.seen.count(module)) {  // same input reported by another member (q/k/v)
    g.seen.insert(module);
    return;
  }
  if (g.cols && g.cols != cols) throw ArgError("InputCapture: '" + module + "' changed width");
  g.cols = cols;
  g.data.insert(g.data.end(), x, x + rows * cols);
  g.last = x;
  g.seen = {module};
  g.t = Tensor();
}

Tensor InputCapture::input(const std::string& module) {
  auto it = group_of_.find(module);
  if (it == group_of_.end() || groups_[it->second].cols == 0)
    throw ArgError("InputCapture: no input was observed for '" + module + "'");
  Group& g = groups_[it->second];
  if (!g.t.defined()) {
    g.t = Tensor::from_f32(g.data, {int64_t(g.data.size()) / g.cols, g.cols});
    g.data.clear();
    g.data.shrink_to_fit();
  }
  return g.t;
}

}  // namespace calq
