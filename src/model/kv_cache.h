// Keys and values of the positions one sequence has seen, per decoder layer: what incremental
// decoding (Decoder::forward_cached) attends to instead of recomputing the whole prefix.
//
// Layout per layer (what kernels/ops.h attention_cached reads): K transposed,
// [kv_heads][head_dim][capacity], so the scores of a query against many keys are contiguous vector
// products, and V, [kv_heads][capacity][head_dim]; float32 (the keys after RoPE / QK-norm, exactly
// the values the prefill attention multiplies in f32).
// Position p lives in slot p % capacity. A layer without a sliding window grows its capacity as
// the sequence grows, so no slot is reused. A layer with window w (Mistral, Qwen2's windowed
// layers) keeps a ring of w + kMaxStep slots: a step of at most kMaxStep new positions still finds
// the w - 1 positions before each of them.
//
// store() is the one place keys and values enter the cache: a KV-cache quantization would quantize
// (or fake-quantize) them there, on store.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace calq {

class KvCache {
 public:
  static constexpr int64_t kMaxStep = 256;  // positions per step when a layer has a window

  KvCache() = default;
  // windows[i]: the sliding window of layer i (0: none). max_positions: the expected length (a
  // hint: capacity grows beyond it when needed).
  KvCache(int kv_heads, int head_dim, std::vector<int> windows, int64_t max_positions);

  int num_layers() const { return int(layers_.size()); }
  int kv_heads() const { return kv_heads_; }
  int head_dim() const { return head_dim_; }
  int64_t length() const { return len_; }  // positions stored so far
  // The most positions one step may add (kMaxStep when a layer has a window, else unbounded).
  int64_t max_step() const;
  // Forgets every position (keeps the memory).
  void clear() { len_ = 0; }
  // Drops the positions from `length` on (e.g. to score another continuation of a shared prefix).
  // Layers with a ring keep only their last slots, so this throws ArgError when a dropped slot was
  // already overwritten.
  void truncate(int64_t length);

  // Makes room for positions [length(), length() + n) in every layer (n <= max_step()).
  void reserve(int64_t n);
  // Stores the keys and values of positions length() .. length() + rows - 1 of `layer`: rows of
  // kv_heads·head_dim floats, k_ld / v_ld floats apart. reserve(rows) first.
  void store(int layer, const float* k, int64_t k_ld, const float* v, int64_t v_ld, int64_t rows);
  // Counts `n` more positions as stored, after every layer stored them.
  void advance(int64_t n);

  struct LayerView {
    const float* kt = nullptr;  // [kv_heads][head_dim][cap]
    const float* v = nullptr;   // [kv_heads][cap][head_dim]
    int64_t cap = 0;
    int window = 0;
  };
  LayerView layer(int i) const;
  size_t bytes() const;  // memory held

 private:
  struct Layer {
    std::vector<float> kt, v;
    int64_t cap = 0;
    int window = 0;
    int64_t max_cap() const;  // window + kMaxStep, or unbounded
  };
  void grow(Layer& l, int64_t cap);

  int kv_heads_ = 0, head_dim_ = 0;
  int64_t len_ = 0;
  int64_t oldest_ = 0;  // the first position every ring still holds (after truncate)
  std::vector<Layer> layers_;
};

}  // namespace calq
