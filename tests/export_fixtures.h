// Test fixtures for the writers of formats/: a tiny reference RTN quantizer that follows the export
// contract (docs/formats.md: scales rounded to fp16 before the codes are computed), a run held in
// memory and written as the QuantState every writer takes, the fake-quant decoder built from it,
// and scratch directories.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/loader.h"
#include "model/decoder.h"
#include "quant/qstate.h"
#include "test_util.h"

namespace calq::test {

struct RtnSpec {
  int bits = 4;
  int group_size = 32;  // -1: one group per row
  bool sym = false;
  bool act_order = false;  // g_idx from a seeded permutation, as GPTQ's desc_act produces
  bool include_lm_head = false;
};

// GPTQ's min/max grid (AutoGPTQ Quantizer.find_params): asym scale = (max(x,0) - min(x,0)) / maxq,
// zero = round(-min/scale); sym scale = 2·max|x| / maxq, zero = 2^(bits-1). Scale rounded to fp16.
QuantizedWeight rtn_quantize(const Tensor& w, const RtnSpec& s, uint32_t seed = 0);

// A quantization run held in memory (codes and replaced float tensors by HF name); the writers
// take it as a QuantState written by write_quant_state().
struct MemoryRun {
  std::string model;
  Json run_info = Json::object();
  std::map<std::string, QuantizedWeight> weights;  // by HF module name
  std::map<std::string, Tensor> tensors;           // replaced float tensors by HF tensor name
  std::vector<std::string> quantized_modules() const;
  std::vector<std::string> replaced_tensors() const;
};

// Quantizes every decoder linear of the HF model at `model_dir`.
MemoryRun rtn_quantize_model(const std::string& model_dir, const RtnSpec& s);

// The in-memory fake-quant model: the float model with every quantized weight replaced by
// dequantize() and every replaced tensor by the run's value.
std::unique_ptr<Decoder> fake_quant_decoder(const MemoryRun& q);

// Writes `q` as a QuantState directory (quant/qstate.h layout; weights outside the decoder layers,
// e.g. lm_head, go to extra.safetensors) with `num_layers` layers (-1: the model's), and opens it.
QuantState write_quant_state(const MemoryRun& q, const std::string& dir, int num_layers = -1);

// A GPTQ/AWQ folder, quantization state or GGUF file loaded the fake-quant way: every quantized
// weight dequantized to f32 (LoadOptions::float_weights), the path that must equal the in-memory
// fake-quant model bitwise. (load_model's default keeps them packed: tests/formats_packed_load_test.cpp.)
std::unique_ptr<Decoder> load_dequantized(const std::string& path);

// A fresh, empty scratch directory under /tmp (removed by ScratchDir's destructor).
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name);
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }
  // `q` written as a fresh QuantState inside this directory.
  QuantState state(const MemoryRun& q);

 private:
  std::string path_;
  int states_ = 0;
};

// Logits of `d` on each row of `model_dir`/golden/input_ids.json (rows may differ in length; each
// runs as its own batch), flattened into one [sum T_i * vocab] tensor.
Tensor fixture_logits(const Decoder& d, const std::string& model_dir);

// max |a - b| over two float32 tensors of equal shape (-1 on shape mismatch), and bitwise equality.
double max_abs_diff(const Tensor& a, const Tensor& b);
bool bitwise_equal(const Tensor& a, const Tensor& b);

}  // namespace calq::test
