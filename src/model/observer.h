// The decoder's hook: the one interface through which every statistic is collected (activation
// ranges, Hessians, outlier counts, layer inputs). It lives with the decoder that calls it (model/);
// the collectors that implement it live above, in observe/. The decoder calls it with float32
// row-major matrices whose rows are the tokens of the current batch (row r = sequence r / T,
// position r % T). Modules are addressed by Hugging Face names: "model.layers.3.self_attn.q_proj"
// for a linear layer's input, "model.layers.3" for the residual stream after decoder layer 3.
// Observers must not modify what they see; collecting must not change outputs.
#pragma once
#include <cstdint>
#include <string>

namespace calq {

class Observer {
 public:
  virtual ~Observer() = default;
  // Start of a forward pass over ids [batch, seq] (for observers that attribute values to tokens).
  virtual void on_batch(const int32_t* ids, int64_t batch, int64_t seq) {}
  // Whether the decoder should report this module (lets it skip unwanted callbacks).
  virtual bool wants(const std::string& module) const { return true; }
  // Input x [rows, cols] of linear layer `module`. q/k/v (and gate/up) share one input and are
  // each reported with the same pointer.
  virtual void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {}
  // Residual stream after decoder layer `layer` (module "model.layers.<layer>").
  virtual void on_layer_output(const std::string& module, int layer, const float* h, int64_t rows, int64_t cols) {}
};

}  // namespace calq
