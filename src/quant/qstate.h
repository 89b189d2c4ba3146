// On-disk state of a layer-wise quantization run. It is both the resume point of
// `calq quantize` (a killed run restarts after the last finished layer) and the input of every
// exporter (fake-quant safetensors, GPTQ, AWQ, GGUF), which stream it layer by layer.
//
// Layout of DIR (written by quant/, read by export/):
//   DIR/state.json             {"format": "calq-qstate", "version": 1, "source_model", "source_sha256",
//                               "method", "settings": {...}, "calib": {manifest}, "num_layers",
//                               "layers_done": [0, 1, ...], "quantized": [module names]}
//   DIR/layer.<i>.safetensors  for every quantized linear <m> of layer i:
//                                <m>.q      U8  [out, in]   codes in [0, 2^bits-1]
//                                <m>.scale  F32 [out, G]
//                                <m>.zero   F32 [out, G]
//                                <m>.g_idx  I32 [in]
//                              metadata "<m>.bits", "<m>.group_size", "<m>.sym"; plus every float
//                              tensor the method changed, under its HF tensor name (e.g. a smoothed
//                              "model.layers.0.input_layernorm.weight", or a fake-quantized weight
//                              of a method that has no integer codes), F32.
//   DIR/extra.safetensors      changed tensors outside the decoder layers (e.g. lm_head), optional.
// Each file is written to a temporary name and renamed, so a file that exists is complete.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quant/qtensor.h"
#include "util/json.h"

namespace calq {

class QuantState {
 public:
  // Opens DIR; throws FormatError naming the file when state.json or a layer file is corrupt.
  static QuantState open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const Json& info() const { return info_; }  // state.json
  std::vector<int> layers_done() const;
  bool complete() const;

  // Quantized linear weight of `module` (HF module name), if this run quantized it.
  std::optional<QuantizedWeight> weight(const std::string& module) const;
  // A float tensor (HF tensor name) this run replaced, if any.
  std::optional<Tensor> replaced(const std::string& tensor) const;

 private:
  std::string dir_;
  Json info_;
};

}  // namespace calq
