// A decoder layer's tensors as the layer-wise methods see them: a snapshot to restore after a
// method changed them, access by Hugging Face tensor name, and installing stored results (a
// QuantState's layers) into a model — the in-memory fake-quantized model.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "quant/qstate.h"

namespace calq {

// Everything of layer i a method may change, for restoring it afterwards.
class LayerSnapshot {
 public:
  LayerSnapshot(Decoder& m, int i);
  void restore();

 private:
  struct Lin {
    Linear* l;
    Tensor w, b;
    std::shared_ptr<const InputTransform> t;
  };
  DecoderLayer* L_;
  std::vector<Lin> lins_;
  Norm attn_, mlp_;
};

// The current value of a tensor of layer i by HF name (linear weight/bias, norm weight/bias);
// FormatError when layer i has no such tensor.
Tensor layer_tensor(Decoder& m, int i, const std::string& name);
// Replaces it (F32 [same shape]).
void set_layer_tensor(Decoder& m, int i, const std::string& name, const Tensor& t);

// Puts stored results into the model: dequantized weights, replaced tensors, static activation
// scales (and per-token activation quantization when `act` says so). FormatError for names the
// model does not have.
void install_layer(Decoder& m, const LayerResult& r, const Json& activation);
// Installs every finished layer of a state: the in-memory fake-quantized model.
void apply_quant_state(Decoder& m, const QuantState& qs);

}  // namespace calq
