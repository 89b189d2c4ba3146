// The failure path of the decoder's non-finite check (decoder.h layer_forward): which module of a
// layer first turned its activations into NaN/inf. Runs only after a layer's output was found
// non-finite, so it may be slow: the layer is run again with a probe that checks every linear's
// input and computes every linear's output on its own.
#include <vector>

#include "model/decoder.h"
#include "util/error.h"

namespace calq {

namespace {

bool finite(const float* x, int64_t n) { return find_non_finite(x, size_t(n)) < 0; }

class FiniteProbe final : public Observer {
 public:
  FiniteProbe(const DecoderLayer& L, const ModuleNames& names, const ModelConfig& cfg, ComputeType compute)
      : L_(L), names_(names), cfg_(cfg), compute_(compute) {}

  std::string culprit;  // the first thing found non-finite, "" while everything is finite

  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override {
    if (!culprit.empty()) return;
    const Linear* l = linear(module);
    if (!l) return;
    if (!finite(x, rows * cols)) {
      culprit = "the input of " + module + ", i.e. the output of " + producer(*l);
      return;
    }
    std::vector<float> y(size_t(rows * l->out));
    linear_forward(*l, x, rows, y.data(), compute_);
    if (!finite(y.data(), int64_t(y.size()))) culprit = "the output of " + module;
  }

 private:
  const Linear* linear(const std::string& module) const {
    for (const Linear* l : {&L_.q, &L_.k, &L_.v, &L_.o, &L_.gate, &L_.up, &L_.down})
      if (l->out > 0 && l->name == module) return l;
    return nullptr;
  }
  std::string at(const std::string& rel) const { return names_.in_layer(L_.index, rel); }
  // What computes the input of linear l (the linears before it had finite outputs).
  std::string producer(const Linear& l) const {
    const bool pre = cfg_.pre_norm || cfg_.parallel_block;
    if (&l == &L_.q || &l == &L_.k || &l == &L_.v)
      return pre ? at(names_.attn_norm) : "the layer input";
    if (&l == &L_.o) return "the self-attention of " + at("self_attn") + " (RoPE, q·kᵀ scores, softmax, ·v)";
    if (&l == &L_.down) return "the MLP activation of " + at("mlp");
    // gate / up (fc1): the norm in front of the MLP.
    if (cfg_.parallel_block) return at(names_.attn_norm);
    return pre ? at(names_.mlp_norm) + " (over the residual after self-attention)"
               : at(names_.attn_norm) + " (post-attention norm)";
  }

  const DecoderLayer& L_;
  const ModuleNames& names_;
  const ModelConfig& cfg_;
  ComputeType compute_;
};

}  // namespace

std::string Decoder::locate_non_finite(int i, const Tensor& x, int64_t batch, int64_t seq) const {
  FiniteProbe probe(layer(i), names_, cfg_, compute_);
  Tensor h = x.clone();
  try {
    run_layer_unchecked(i, h, batch, seq, &probe);
  } catch (const NonFiniteError&) {  // e.g. an activation quantizer refusing the non-finite input
    if (probe.culprit.empty()) throw;
  }
  if (!probe.culprit.empty()) return probe.culprit;
  if (!finite(h.f32(), h.numel()))
    return "the residual stream of " + names_.layer(i) + " (input + block outputs overflow float32" +
           (cfg_.pre_norm || cfg_.parallel_block ? ")" : ", or the norm after them)");
  return "";
}

void Decoder::throw_non_finite_layer(int i, const Tensor& x, int64_t batch, int64_t seq, const Tensor& out) const {
  const int64_t k = find_non_finite(out.f32(), size_t(out.numel()));
  const int64_t cols = out.dim(1), row = k / cols;
  std::string where = "layer " + std::to_string(i) + " (" + names_.layer(i) + ") produced non-finite activations (" +
                      non_finite_kind(out.f32(), DType::F32, size_t(k)) + " in sequence " +
                      std::to_string(row / seq) + ", position " + std::to_string(row % seq) + ", channel " +
                      std::to_string(k % cols) + ")";
  if (find_non_finite(x.f32(), size_t(x.numel())) >= 0)
    throw NonFiniteError(where + ": its input already held non-finite values");
  const std::string culprit = locate_non_finite(i, x, batch, seq);
  throw NonFiniteError(where + (culprit.empty() ? std::string(" (not reproduced when re-run)") : ": first in " + culprit));
}

}  // namespace calq
