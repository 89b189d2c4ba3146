#include "quant/layer_state.h"

#include "quant/act_quant.h"
#include "util/error.h"

namespace calq {

// ---- snapshot / install ------------------------------------------------------------------

LayerSnapshot::LayerSnapshot(Decoder& m, int i) : L_(&m.layer(i)), attn_(L_->attn_norm), mlp_(L_->mlp_norm) {
  for (Linear* l : L_->linears()) lins_.push_back({l, l->weight(), l->bias, l->input_transform});
}

void LayerSnapshot::restore() {
  for (auto& s : lins_) {
    s.l->set_weight(s.w);
    s.l->bias = s.b;
    s.l->input_transform = s.t;
    s.l->release_packed();
  }
  L_->attn_norm = attn_;
  L_->mlp_norm = mlp_;
}

namespace {

struct Target {
  Linear* lin = nullptr;
  Norm* norm = nullptr;
  bool bias = false;
};

Target find_target(Decoder& m, int i, const std::string& name) {
  DecoderLayer& L = m.layer(i);
  auto ends = [&](const std::string& prefix, const char* sfx) { return name == prefix + sfx; };
  for (Linear* l : L.linears()) {
    if (ends(l->name, ".weight")) return {l, nullptr, false};
    if (ends(l->name, ".bias")) return {l, nullptr, true};
  }
  const std::string an = m.names().in_layer(i, m.names().attn_norm), mn = m.names().in_layer(i, m.names().mlp_norm);
  if (ends(an, ".weight")) return {nullptr, &L.attn_norm, false};
  if (ends(an, ".bias")) return {nullptr, &L.attn_norm, true};
  if (!m.config().parallel_block) {
    if (ends(mn, ".weight")) return {nullptr, &L.mlp_norm, false};
    if (ends(mn, ".bias")) return {nullptr, &L.mlp_norm, true};
  }
  throw FormatError("layer " + std::to_string(i) + " has no tensor '" + name + "'");
}

}  // namespace

Tensor layer_tensor(Decoder& m, int i, const std::string& name) {
  const Target t = find_target(m, i, name);
  Tensor r = t.lin ? (t.bias ? t.lin->bias : t.lin->weight()) : (t.bias ? t.norm->bias : t.norm->weight);
  if (!r.defined()) throw FormatError("layer " + std::to_string(i) + ": tensor '" + name + "' is not present");
  return r.to(DType::F32);
}

void set_layer_tensor(Decoder& m, int i, const std::string& name, const Tensor& v) {
  const Target t = find_target(m, i, name);
  const Tensor cur = layer_tensor(m, i, name);
  if (v.shape() != cur.shape() || v.dtype() != DType::F32)
    throw FormatError("tensor '" + name + "' must be F32 " + shape_str(cur.shape()) + ", got " +
                      dtype_name(v.dtype()) + " " + shape_str(v.shape()));
  if (t.lin && !t.bias) t.lin->set_weight(v);
  else if (t.lin) t.lin->bias = v;
  else if (t.bias) t.norm->bias = v;
  else t.norm->weight = v;
}

void install_layer(Decoder& m, const LayerResult& r, const Json& activation) {
  for (const auto& [name, t] : r.replaced) set_layer_tensor(m, r.layer, name, t);
  for (const auto& [mod, qw] : r.weights) {
    Linear* l = m.find_linear(mod);
    if (!l) throw FormatError("quantization state names a linear '" + mod + "' the model does not have");
    l->set_weight(qw.dequantize());
  }
  if (activation.is_null() || !activation.is_object()) return;
  const int bits = int(json_get_int_or<FormatError>(activation, "bits", 8, "quantization state: activation", 2, 8));
  const ActGranularity g = parse_act_granularity(activation.value("granularity", std::string("none")));
  for (const auto& mod : activation.value("modules", std::vector<std::string>{})) {
    if (layer_of_name(mod) != r.layer) continue;
    Linear* l = m.find_linear(mod);
    if (!l) throw FormatError("quantization state names a linear '" + mod + "' the model does not have");
    if (auto t = make_dynamic_act_quant(g, bits)) {
      l->input_transform = t;
    } else if (g == ActGranularity::PerTensorStatic) {
      auto it = r.input_scales.find(mod);
      if (it == r.input_scales.end()) throw FormatError("quantization state: no static input scale for '" + mod + "'");
      l->input_transform = std::make_shared<PerTensorStaticActQuant>(bits, it->second);
    }
  }
}

void apply_quant_state(Decoder& m, const QuantState& qs) {
  if (qs.num_layers() != m.num_layers())
    throw FormatError(qs.dir() + ": state has " + std::to_string(qs.num_layers()) + " layers, the model " +
                      std::to_string(m.num_layers()));
  const Json act = qs.info().contains("activation") ? qs.info()["activation"] : Json();
  for (int i : qs.layers_done()) install_layer(m, qs.layer(i), act);
  // Changes outside the decoder layers (extra.safetensors): quantized linears such as lm_head.
  for (Linear* l : {&m.lm_head()})
    if (auto qw = qs.weight(l->name)) l->set_weight(qw->dequantize());
}

}  // namespace calq
