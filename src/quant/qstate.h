// On-disk state of a layer-wise quantization run. It is both the resume point of
// `calq quantize` (a killed run restarts after the last finished layer) and the input of every
// exporter (fake-quant safetensors, GPTQ, AWQ, GGUF), which stream it layer by layer.
//
// Layout of DIR (written by quant/, read by formats/):
//   DIR/state.json             {"format": "calq-qstate", "version": 1, "source_model", "source_sha256",
//                               "method", "settings": {...}, "calib": {manifest}, "num_layers",
//                               "layers_done": [0, 1, ...], "quantized": [module names]}
//                              plus "reports": {"<i>": {<module>: {metrics}}} (per-layer errors, timings)
//                              and, for W8A8, "activation": {"bits", "granularity"} (see act_quant.h).
//                              and "layer_sha256": {"<i>": hash, "-1": hash of extra.safetensors}.
//   DIR/layer.<i>.safetensors  for every quantized linear <m> of layer i:
//                                <m>.q      U8  [out, in]   codes in [0, 2^bits-1]
//                                <m>.scale  F32 [out, G]
//                                <m>.zero   F32 [out, G]
//                                <m>.g_idx  I32 [in]
//                              metadata "<m>.bits", "<m>.group_size", "<m>.sym"; plus every float
//                              tensor the method changed, under its HF tensor name (e.g. a smoothed
//                              "model.layers.0.input_layernorm.weight", or a fake-quantized weight
//                              of a method that has no integer codes), F32;
//                              plus "<m>.input_scale" F32 [1] for a static per-tensor activation
//                              scale (W8A8 per_tensor_static only).
//                              Every layer file also carries "content_sha256" (io/content_hash.h: all
//                              tensors and metadata) and "calq.run", the run identity (method,
//                              settings, source_sha256, num_layers, activation, calib sha256).
//   DIR/extra.safetensors      changed tensors outside the decoder layers (e.g. lm_head), optional.
// Writers (formats/) take a QuantState and ask it for names and tensors; only this file knows the
// file names and suffixes above.
// Each file is written to a temporary name and renamed, so a file that exists is complete;
// state.json is rewritten (atomically) only after the layer file it lists is in place.
// Integrity: opening a state verifies every finished file: its own content hash, the hash state.json
// records for it, and that its run identity is state.json's; any difference is a FormatError naming
// the file (a flipped byte, a file of another run, a hand-edited state.json). States without
// "layer_sha256" (written before the hashes) are refused: calq is pre-1.0, re-run quantize.
//
// Conventions of the codes (QuantizedWeight): W ≈ scale * (q - zero) with G = ceil(in / group_size)
// groups per row (the last group may be partial when group_size does not divide `in`);
// group_size = -1 means one group per row (G = 1). sym=true stores zero = 2^(bits-1).
// Scales are float32 values; with the default settings of rtn/gptq/awq they are exactly
// representable in fp16 (settings.scale_dtype = "f16"), so fp16 exports dequantize bitwise alike.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "quant/qtensor.h"
#include "util/json.h"

namespace calq {

// What one layer of a run produced (written by quant/, read back on resume).
struct LayerResult {
  int layer = 0;
  std::map<std::string, QuantizedWeight> weights;  // HF module name -> codes
  std::map<std::string, Tensor> replaced;          // HF tensor name -> F32 tensor
  std::map<std::string, float> input_scales;       // HF module name -> static activation scale
  Json report = Json::object();                    // per-module metrics
};

class QuantState {
 public:
  // Opens DIR; throws FormatError naming the file when state.json or a layer file is corrupt.
  static QuantState open(const std::string& dir);
  // Creates DIR (and parents) with a fresh state.json from `info` (source_model, source_sha256,
  // method, settings, calib, num_layers; format/version/layers_done/quantized are filled in).
  static QuantState create(const std::string& dir, Json info);
  // Whether DIR holds a state.json (complete or not).
  static bool exists(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const Json& info() const { return info_; }  // state.json
  int num_layers() const;
  std::vector<int> layers_done() const;
  bool layer_done(int i) const;
  bool complete() const;
  // FormatError naming state.json unless every layer is done (what every writer of formats/ needs).
  void require_complete() const;
  // The float model the run started from (state.json "source_model"; a relative path that does not
  // exist from the working directory is taken relative to DIR).
  std::string source_model() const;

  // Every quantized linear (HF module names) and every float tensor the run replaced (HF tensor
  // names) in the finished layers and extra.safetensors, sorted. The codes and tensors are read
  // only when asked for (weight(), replaced()).
  std::vector<std::string> quantized_modules() const;
  std::vector<std::string> replaced_tensors() const;

  // Quantized linear weight of `module` (HF module name), if this run quantized it.
  std::optional<QuantizedWeight> weight(const std::string& module) const;
  // Drops the resident pages of `module`'s codes, scales, zeros and g_idx (read back from the
  // mapped layer file if asked for again): called once they are packed.
  void release(const std::string& module) const;
  // A float tensor (HF tensor name) this run replaced, if any.
  std::optional<Tensor> replaced(const std::string& tensor) const;
  // Static per-tensor activation scale of `module`'s input, if the run calibrated one.
  std::optional<float> input_scale(const std::string& module) const;
  // Everything stored for finished layer i (FormatError when i is not done).
  LayerResult layer(int i) const;

  // Writes layer.<i>.safetensors atomically, then state.json listing layer i as done and recording
  // the file's content hash. r.layer = -1 writes extra.safetensors (changes outside the layers).
  void write_layer(const LayerResult& r);
  // Sets a top-level state.json field (e.g. "activation") and rewrites state.json atomically.
  void set_field(const std::string& key, const Json& value);

 private:
  struct Files {
    std::mutex mu;
    std::map<int, std::shared_ptr<SafetensorsFile>> open;  // layer index (-1: extra) -> file
  };
  std::shared_ptr<SafetensorsFile> file_for(int layer) const;  // null when absent
  std::string layer_path(int layer) const;
  // The files of the finished layers, then extra.safetensors when present.
  std::vector<std::shared_ptr<SafetensorsFile>> finished_files() const;
  void write_info() const;
  // The content hash of a layer file (layer -1: extra.safetensors), the hash state.json records for it,
  // and the run identity it was written for: FormatError naming the file when any differs.
  void verify_file(const SafetensorsFile& f, int layer) const;

  std::string dir_;
  Json info_;
  std::shared_ptr<Files> files_ = std::make_shared<Files>();
};

// Layer index of an HF module or tensor name ("model.layers.3.mlp.up_proj" -> 3), -1 when outside.
int layer_of_name(const std::string& name);

// Reads/validates "<m>.q/.scale/.zero/.g_idx" + metadata from a layer file (FormatError naming it).
QuantizedWeight read_quantized_weight(const SafetensorsFile& f, const std::string& module);
// Adds "<m>.q/.scale/.zero/.g_idx" + metadata for `qw` to a writer (validates qw: ArgError).
void add_quantized_weight(SafetensorsWriter& w, const std::string& module, const QuantizedWeight& qw);

}  // namespace calq
