// Observers that the layer-wise quantization methods attach to one decoder layer: the full inputs
// of chosen linears (AWQ's scale and clip searches), and a filter that hides padding rows from any
// observer. (Per-channel ranges come from ActStatsCollector, observe/stats_collector.h.)
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/observer.h"
#include "tensor/tensor.h"

namespace calq {

// Forwards linear inputs to `inner` without the rows a mask marks as padding (the pointer of a
// repeated input is preserved, so observers can still recognise inputs shared by q/k/v).
class RowMaskObserver final : public Observer {
 public:
  RowMaskObserver(Observer* inner, const uint8_t* mask) : inner_(inner), mask_(mask) {}
  bool wants(const std::string& module) const override { return inner_->wants(module); }
  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override;
  void on_layer_output(const std::string& module, int layer, const float* h, int64_t rows, int64_t cols) override {
    inner_->on_layer_output(module, layer, h, rows, cols);
  }

 private:
  Observer* inner_;
  const uint8_t* mask_;
  const float* last_src_ = nullptr;
  int64_t last_cols_ = 0;
  std::vector<float> buf_;
  int64_t buf_rows_ = 0;
};

// Collects the full input [rows, cols] of the wanted linears over all chunks. Linears that read one
// input (q/k/v, gate/up) share one tensor: input(m) returns the same Tensor for each of them.
class InputCapture final : public Observer {
 public:
  explicit InputCapture(const std::vector<std::vector<std::string>>& groups);
  bool wants(const std::string& module) const override { return group_of_.count(module) != 0; }
  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override;
  // [rows, cols] F32 (shared storage within a group).
  Tensor input(const std::string& module);

 private:
  struct Group {
    std::vector<float> data;
    int64_t cols = 0;
    const float* last = nullptr;
    std::set<std::string> seen;
    Tensor t;
  };
  std::vector<Group> groups_;
  std::map<std::string, size_t> group_of_;
};

}  // namespace calq
