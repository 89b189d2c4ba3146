// Pieces the layer-wise methods share: running one decoder layer over all calibration sequences
// in chunks, capturing linear inputs, per-architecture scale groups (AWQ, SmoothQuant), and
// snapshot / install / restore of a layer's tensors.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "quant/qstate.h"

namespace calq {

// Calibration activations of one layer: rows = n_seq * seq tokens.
struct LayerInputs {
  Tensor x;           // [n_seq * seq, hidden] F32
  int64_t n_seq = 0, seq = 0;
  int64_t batch = 8;  // sequences per forward chunk (bounds the intermediate memory)
  // Row mask of padded calibration sets (1 = real token), or null when every row is real.
  std::shared_ptr<const std::vector<uint8_t>> valid;
  bool row_valid(int64_t r) const { return !valid || (*valid)[size_t(r)] != 0; }
};

// Forwards linear inputs to `inner` without the rows a mask marks as padding (the pointer of a
// repeated input is preserved, so observers can still recognise inputs shared by q/k/v).
class RowMaskObserver final : public Observer {
 public:
  RowMaskObserver(Observer* inner, const uint8_t* mask) : inner_(inner), mask_(mask) {}
  bool wants(const std::string& module) const override { return inner_->wants(module); }
  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override;
  void on_layer_output(const std::string& module, int layer, const float* h, int64_t rows, int64_t cols) override {
    inner_->on_layer_output(module, layer, h, rows, cols);
  }

 private:
  Observer* inner_;
  const uint8_t* mask_;
  const float* last_src_ = nullptr;
  int64_t last_cols_ = 0;
  std::vector<float> buf_;
  int64_t buf_rows_ = 0;
};

// Output of decoder layer i for every sequence of `in` (forward in chunks of in.batch sequences).
// The observer sees each chunk (without padding rows when in.valid is set).
Tensor run_layer_chunked(const Decoder& m, int i, const LayerInputs& in, Observer* obs = nullptr);
// f(x_chunk, seqs_in_chunk) over chunks of `in` rows-aligned with x [n_seq*seq, cols]; concatenated.
Tensor map_chunks(const Tensor& x, int64_t n_seq, int64_t seq, int64_t batch,
                  const std::function<Tensor(const Tensor&, int64_t)>& f);

// Collects the full input [rows, cols] of the wanted linears over all chunks. Linears that read one
// input (q/k/v, gate/up) share one tensor: input(m) returns the same Tensor for each of them.
class InputCapture final : public Observer {
 public:
  explicit InputCapture(const std::vector<std::vector<std::string>>& groups);
  bool wants(const std::string& module) const override { return group_of_.count(module) != 0; }
  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override;
  // [rows, cols] F32 (shared storage within a group).
  Tensor input(const std::string& module);

 private:
  struct Group {
    std::vector<float> data;
    int64_t cols = 0;
    const float* last = nullptr;
    std::set<std::string> seen;
    Tensor t;
  };
  std::vector<Group> groups_;
  std::map<std::string, size_t> group_of_;
};

// Per-channel max |x| of the wanted linears' inputs (SmoothQuant get_act_scales).
class AbsMaxCapture final : public Observer {
 public:
  explicit AbsMaxCapture(std::vector<std::string> modules);
  bool wants(const std::string& module) const override { return absmax_.count(module) != 0; }
  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override;
  const std::vector<float>& absmax(const std::string& module) const;

 private:
  std::map<std::string, std::vector<float>> absmax_;
};

// Linears of a layer grouped by shared input: {q,k,v}, {o}, {gate,up}, {down} (OPT: {fc1}, {fc2}).
std::vector<std::vector<Linear*>> input_groups(DecoderLayer& L);
std::vector<std::vector<std::string>> input_group_names(DecoderLayer& L);

// A group of linears whose input channels are scaled by s while the preceding operator's outputs
// are divided by s (AWQ Fig. / SmoothQuant Eq. 3): prev is a norm (scaled weight and bias) or a
// linear (scaled output rows and bias).
struct ScaleGroup {
  std::string prev_name;         // HF module name of the preceding op
  Norm* prev_norm = nullptr;
  Linear* prev_linear = nullptr;
  std::vector<Linear*> layers;   // scaled input channels
  enum class Inspect { Attention, Mlp, Linear } inspect = Inspect::Linear;  // AWQ loss target
  std::string describe() const;
};

// AutoAWQ's get_layers_for_scaling (llama/mistral/qwen2 and opt): attn norm -> q,k,v (attention
// output), v -> o (only when v_proj and o_proj have equal shapes: MHA), mlp norm -> gate,up (MLP
// output; OPT: -> fc1), up -> down (OPT: fc1 -> fc2). UnsupportedError for other blocks.
std::vector<ScaleGroup> awq_scale_groups(Decoder& m, int i);
// SmoothQuant smooth_lm: attn norm -> q,k,v and mlp norm -> gate,up / fc1; a parallel block
// (Cohere) has one norm -> q,k,v,gate,up. UnsupportedError for post-LN OPT.
std::vector<ScaleGroup> smoothquant_groups(Decoder& m, int i);

// Divides the prev op's outputs by s and multiplies the layers' input columns by s (on fresh F32
// copies; views of the checkpoint are never written). Adds to `changed` the HF names of the tensors
// that are not quantized afterwards (norm weight/bias, prev linear bias).
void apply_channel_scale(ScaleGroup& g, const std::vector<float>& s, std::set<std::string>* changed);

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

// Relative output error ||X (W_ref - W_q)ᵀ||² / ||X W_refᵀ||² over every ⌈N/max_rows⌉-th row of
// x [N, in] (W [out, in] F32). The layer-reconstruction metric reported per linear.
double relative_output_error(const Tensor& x, const Tensor& w_ref, const Tensor& w_q, int64_t max_rows = 2048);

// Mutable F32 copy of a tensor.
Tensor f32_copy(const Tensor& t);

}  // namespace calq
