#include "model/linear.h"

#include <atomic>
#include <cstring>
#include <vector>

#include "util/error.h"

namespace calq {

void Linear::set_weight(Tensor w) {
  if (w.ndim() != 2 || w.dim(0) != out || w.dim(1) != in)
    throw ArgError(name + ": weight shape " + shape_str(w.shape()) + " does not match [" + std::to_string(out) +
                   ", " + std::to_string(in) + "]");
  if (!is_float_dtype(w.dtype())) throw ArgError(name + ": weight must have a float dtype");
  std::lock_guard<std::mutex> lock(mu_);
  weight_ = std::move(w);
  fetch_ = nullptr;
  quant_.reset();
  version_ = next_version();
  packed_.reset();
  fused_.reset();
}

uint64_t Linear::next_version() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

void Linear::set_quantized(std::shared_ptr<QuantPackedWeight> w) {
  if (!w || w->n() != out || w->k() != in)
    throw ArgError(name + ": quantized weight [" + (w ? std::to_string(w->n()) + ", " + std::to_string(w->k()) : "null") +
                   "] does not match [" + std::to_string(out) + ", " + std::to_string(in) + "]");
  std::lock_guard<std::mutex> lock(mu_);
  weight_ = Tensor();
  fetch_ = nullptr;
  quant_ = std::move(w);
  version_ = next_version();
  packed_.reset();
  fused_.reset();
}

std::shared_ptr<const QuantPackedWeight> Linear::quantized() const {
  std::lock_guard<std::mutex> lock(mu_);
  return quant_;
}

void Linear::set_weight_source(std::function<Tensor()> fetch) {
  std::lock_guard<std::mutex> lock(mu_);
  fetch_ = std::move(fetch);
}

bool Linear::drop_float_weight() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fetch_ || quant_ || !(packed_ || fused_)) return false;
  weight_ = Tensor();
  return true;
}

Tensor Linear::weight() const {
  std::shared_ptr<const QuantPackedWeight> q;
  std::function<Tensor()> fetch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (weight_.defined()) return weight_;
    q = quant_;
    fetch = fetch_;
  }
  if (q) {
    Tensor w = Tensor::empty(DType::F32, {out, in});
    q->dequantize(w.f32_mut());
    return w;
  }
  if (fetch) return fetch();
  throw ArgError(name + ": the layer has no weight");
}

Tensor Linear::weight_f32() const { return weight().to(DType::F32); }

const PackedWeight& Linear::packed(ComputeType c) const {
  std::unique_lock<std::mutex> lock(mu_);
  if (quant_) {
    if (quant_->compute() == c) return *quant_;
    if (!packed_ || packed_->compute() != c) packed_ = quant_->with_compute(c);
    return *packed_;
  }
  if (!packed_ || packed_->compute() != c) {
    Tensor src = weight_;
    if (!src.defined()) {
      if (!fetch_) throw ArgError(name + ": the layer has no weight");
      src = fetch_();
    }
    // A bf16 weight packs straight from its bits: a float copy of every weight, freshly faulted
    // in and zeroed by the kernel, cost more time than the packing itself (perf, calq eval). An
    // f16 weight too: at f32 compute it may stay f16 (gemm.h HalfStorage).
    if (src.dtype() == DType::BF16) {
      packed_ = pack_weight_bf16(src.data<uint16_t>(), out, in, c);
    } else if (src.dtype() == DType::F16) {
      packed_ = pack_weight_f16(src.data<uint16_t>(), out, in, c);
    } else {
      const Tensor w = src.to(DType::F32);
      packed_ = pack_weight(w.f32(), out, in, c);
    }
  }
  return *packed_;
}

size_t Linear::resident_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t b = quant_ ? quant_->bytes() : packed_ ? packed_->bytes() : 0;
  if (weight_.defined() && !weight_.readonly()) b += weight_.nbytes();
  return b;
}

std::shared_ptr<const FusedLinear> Linear::fused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fused_;
}

void Linear::release_packed() const {
  std::lock_guard<std::mutex> lock(mu_);
  packed_.reset();
  fused_.reset();
}

// The members' biases end to end (zeros for a member without one); empty when none has one.
static std::vector<float> stacked_bias(const std::vector<const Linear*>& m) {
  bool any_bias = false;
  int64_t out = 0;
  for (const Linear* l : m) {
    out += l->out;
    any_bias = any_bias || l->bias.defined();
  }
  std::vector<float> bias(any_bias ? size_t(out) : 0, 0.0f);
  int64_t off = 0;
  for (const Linear* l : m) {
    if (any_bias && l->bias.defined()) std::memcpy(bias.data() + off, l->bias.f32(), size_t(l->out) * 4);
    off += l->out;
  }
  return bias;
}

// Quantized members: one stacked weight holds the codes, the members become views into it.
std::shared_ptr<const FusedLinear> fused_quantized_stack(const std::vector<const Linear*>& m, ComputeType c) {
  std::vector<std::shared_ptr<QuantPackedWeight>> q;
  std::vector<uint64_t> versions;
  std::shared_ptr<const FusedLinear> cur;
  bool same = true;
  for (size_t i = 0; i < m.size(); ++i) {
    std::lock_guard<std::mutex> lock(m[i]->mu_);
    q.push_back(m[i]->quant_);
    versions.push_back(m[i]->version_);
    if (i == 0) cur = m[i]->fused_;
    else same = same && m[i]->fused_ == cur;
    if (!q.back()) return nullptr;  // replaced by a float weight meanwhile
  }
  auto f = std::make_shared<FusedLinear>();
  f->compute = c;
  std::vector<std::shared_ptr<QuantPackedWeight>> views;
  if (same && cur) {  // already stacked, for another compute type: the codes are shared
    if (cur->compute == c) return cur;
    f->packed = static_cast<const QuantPackedWeight&>(*cur->packed).with_compute(c);
  } else {
    std::vector<const QuantPackedWeight*> ws;
    for (const auto& w : q) ws.push_back(w.get());
    QuantStack st = stack_quantized(ws, c);
    if (!st.stacked) return nullptr;
    f->packed = st.stacked;
    views = std::move(st.members);
  }
  size_t members_bytes = 0;
  for (size_t i = 0; i < m.size(); ++i) members_bytes += (views.empty() ? q[i] : views[i])->bytes();
  f->own_bytes = f->packed->bytes() > members_bytes ? f->packed->bytes() - members_bytes : 0;
  for (const Linear* l : m) f->out += l->out;
  f->bias = stacked_bias(m);
  // Publish to the members whose weight did not change meanwhile; their own codes go with the
  // old weight objects (the views hold the same values in the stacked storage).
  for (size_t i = 0; i < m.size(); ++i) {
    std::lock_guard<std::mutex> lock(m[i]->mu_);
    if (m[i]->version_ != versions[i]) continue;
    if (!views.empty()) {
      m[i]->quant_ = views[i];
      m[i]->packed_.reset();
    }
    m[i]->fused_ = f;
  }
  return f;
}

std::shared_ptr<const FusedLinear> fused_quantized_linear(const std::vector<const Linear*>& m, ComputeType c) {
  if (m.size() < 2) return nullptr;
  for (const Linear* l : m)
    if (l->input_transform || l->in != m[0]->in || l->out <= 0 || !l->quantized()) return nullptr;
  return fused_quantized_stack(m, c);
}

std::shared_ptr<const FusedLinear> fused_linear(const std::vector<const Linear*>& m, ComputeType c) {
  if (m.size() < 2) return nullptr;
  size_t quantized = 0;
  for (const Linear* l : m) {
    if (l->input_transform || l->in != m[0]->in || l->out <= 0) return nullptr;
    quantized += l->quantized() ? 1 : 0;
  }
  if (quantized == m.size()) return fused_quantized_stack(m, c);
  if (quantized) return nullptr;
  // Snapshot each member's weight, version and fused pointer under its own lock.
  std::vector<Tensor> weights;
  std::vector<uint64_t> versions;
  std::shared_ptr<const FusedLinear> cur;
  bool same = true;
  for (size_t i = 0; i < m.size(); ++i) {
    std::lock_guard<std::mutex> lock(m[i]->mu_);
    weights.push_back(m[i]->weight_.defined() || !m[i]->fetch_ ? m[i]->weight_ : m[i]->fetch_());
    versions.push_back(m[i]->version_);
    if (i == 0) cur = m[i]->fused_;
    else same = same && m[i]->fused_ == cur;
  }
  if (same && cur && cur->compute == c) return cur;
  const int64_t in = m[0]->in;
  auto f = std::make_shared<FusedLinear>();
  f->compute = c;
  for (const Linear* l : m) f->out += l->out;
  // Stacked in the members' own type when all are bf16 or all f16 (no float copy), in f32 otherwise.
  const DType first = weights[0].dtype();
  bool all_half = first == DType::BF16 || first == DType::F16;
  for (const Tensor& t : weights) all_half = all_half && t.dtype() == first;
  std::vector<float> w(all_half ? 0 : size_t(f->out * in));
  std::vector<uint16_t> w_half(all_half ? size_t(f->out * in) : 0);
  int64_t row = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    const size_t count = size_t(m[i]->out * in);
    if (all_half) {
      std::memcpy(w_half.data() + row * in, weights[i].data<uint16_t>(), count * 2);
    } else {
      const Tensor wf = weights[i].to(DType::F32);
      std::memcpy(w.data() + row * in, wf.f32(), count * 4);
    }
    row += m[i]->out;
  }
  f->bias = stacked_bias(m);
  if (!all_half) f->packed = pack_weight(w.data(), f->out, in, c);
  else if (first == DType::BF16) f->packed = pack_weight_bf16(w_half.data(), f->out, in, c);
  else f->packed = pack_weight_f16(w_half.data(), f->out, in, c);
  f->own_bytes = f->packed->bytes();
  // Publish to the members whose weight did not change meanwhile.
  for (size_t i = 0; i < m.size(); ++i) {
    std::lock_guard<std::mutex> lock(m[i]->mu_);
    if (m[i]->version_ == versions[i]) m[i]->fused_ = f;
  }
  return f;
}

void linear_forward(const Linear& l, const float* x, int64_t rows, float* y, ComputeType c, bool accumulate) {
  const float* b = l.bias.defined() ? l.bias.f32() : nullptr;
  if (l.input_transform) {
    std::vector<float> xt(x, x + rows * l.in);
    try {
      l.input_transform->apply(xt.data(), rows, l.in);
    } catch (const NonFiniteError& e) {  // the transform sees numbers only: name the module
      throw NonFiniteError(l.name + ": " + e.what());
    }
    gemm_packed(xt.data(), rows, l.packed(c), b, y, accumulate);
  } else {
    gemm_packed(x, rows, l.packed(c), b, y, accumulate);
  }
}

}  // namespace calq
