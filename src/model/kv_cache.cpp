#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "util/error.h"

namespace calq {

namespace {
constexpr int64_t kUnbounded = std::numeric_limits<int64_t>::max();
}

int64_t KvCache::Layer::max_cap() const { return window > 0 ? int64_t(window) + kMaxStep : kUnbounded; }

KvCache::KvCache(int kv_heads, int head_dim, std::vector<int> windows, int64_t max_positions)
    : kv_heads_(kv_heads), head_dim_(head_dim) {
  if (kv_heads <= 0 || head_dim <= 0) throw ArgError("KvCache: kv_heads and head_dim must be positive");
  layers_.resize(windows.size());
  for (size_t i = 0; i < windows.size(); ++i) {
    layers_[i].window = std::max(windows[i], 0);
    grow(layers_[i], std::min(std::max<int64_t>(max_positions, 16), layers_[i].max_cap()));
  }
}

int64_t KvCache::max_step() const {
  for (const Layer& l : layers_)
    if (l.window > 0) return kMaxStep;
  return kUnbounded;
}

// Re-lays the stored positions into `cap` slots. Only called before a ring wraps (a layer grows
// until it reaches its maximum and only then starts reusing slots), so slot = position.
void KvCache::grow(Layer& l, int64_t cap) {
  const int64_t hd = head_dim_, H = kv_heads_;
  std::vector<float> kt(size_t(H * hd * cap)), v(size_t(H * cap * hd));
  const int64_t keep = std::min(len_, l.cap);
  for (int64_t h = 0; h < H && keep > 0; ++h) {
    for (int64_t d = 0; d < hd; ++d)
      std::memcpy(kt.data() + (h * hd + d) * cap, l.kt.data() + (h * hd + d) * l.cap, size_t(keep) * 4);
    std::memcpy(v.data() + h * cap * hd, l.v.data() + h * l.cap * hd, size_t(keep * hd) * 4);
  }
  l.kt.swap(kt);
  l.v.swap(v);
  l.cap = cap;
}

void KvCache::reserve(int64_t n) {
  if (n > max_step()) throw ArgError("KvCache: a step of " + std::to_string(n) + " positions exceeds " + std::to_string(max_step()));
  for (Layer& l : layers_) {
    const int64_t need = len_ + n;
    if (need <= l.cap || l.cap >= l.max_cap()) continue;
    grow(l, std::min(l.max_cap(), std::max(need, 2 * l.cap)));
  }
}

void KvCache::store(int layer, const float* k, int64_t k_ld, const float* v, int64_t v_ld, int64_t rows) {
  Layer& l = layers_.at(size_t(layer));
  if (l.cap < l.max_cap() && len_ + rows > l.cap) throw ArgError("KvCache::store: reserve() first");
  const int64_t hd = head_dim_, H = kv_heads_;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t slot = (len_ + r) % l.cap;
    const float* kr = k + r * k_ld;
    const float* vr = v + r * v_ld;
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t d = 0; d < hd; ++d) l.kt[size_t((h * hd + d) * l.cap + slot)] = kr[h * hd + d];
      std::memcpy(l.v.data() + (h * l.cap + slot) * hd, vr + h * hd, size_t(hd) * 4);
    }
  }
}

void KvCache::advance(int64_t n) { len_ += n; }

void KvCache::truncate(int64_t length) {
  if (length < 0 || length > len_) throw ArgError("KvCache::truncate: length " + std::to_string(length) + " outside [0, " + std::to_string(len_) + "]");
  for (const Layer& l : layers_) {
    if (len_ <= l.cap) continue;  // nothing overwritten yet
    // The ring holds positions [len_ - cap, len_); the next steps need [length - window + 1, length).
    if (length - l.window + 1 < len_ - l.cap && length > 0)
      throw ArgError("KvCache::truncate: positions before " + std::to_string(length) + " were already overwritten in the sliding-window ring");
  }
  len_ = length;
}

KvCache::LayerView KvCache::layer(int i) const {
  const Layer& l = layers_.at(size_t(i));
  return {l.kt.data(), l.v.data(), l.cap, l.window};
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const Layer& l : layers_) b += (l.kt.size() + l.v.size()) * 4;
  return b;
}

}  // namespace calq
