// llama.cpp GGUF files for the Llama family (llama, mistral -> arch "llama"; qwen2 -> arch
// "qwen2"), written as llama.cpp's convert_hf_to_gguf.py + llama-quantize would, and read back.
//
// Export: architecture metadata (<arch>.context_length, embedding_length, block_count,
// feed_forward_length, attention.head_count(_kv), rope.freq_base, rope.dimension_count,
// attention.layer_norm_rms_epsilon, general.file_type, ...), tokenizer metadata (tokenizer.ggml.*),
// and the weights re-quantized with ggml's reference quantizers:
//   * 1-D tensors (norms, biases): F32;
//   * 2-D tensors: the chosen type; rows whose length is not a multiple of the block size (e.g. a
//     172-wide FFN) fall back to F16, as convert_hf_to_gguf.py does;
//   * output.weight (token_embd.weight when the embeddings are tied) gets Q8_0 when the chosen type
//     is a 4/5-bit one (llama-quantize uses Q6_K there, which calq does not write) unless `pure`.
//   * llama/mistral q_proj and k_proj rows are permuted from HF's rotate_half layout to the
//     interleaved pairs llama.cpp's rope expects (convert_hf_to_gguf.py LlamaModel.permute);
//     loading applies the inverse.
// From a QuantState, the weights re-quantized are the fake-quant weights (dequantize()): GGUF's
// block formats cannot hold GPTQ's asymmetric g128 codes, so this is a second quantization, done
// only when asked for (GgufExportOptions::requantize); f32 keeps the fake-quant weights exactly.
//
// Load: the ModelConfig is rebuilt from the metadata (as an HF config.json), names are mapped back
// (formats/gguf_names.h), q/k rows un-permuted. Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 linears run as packed
// blocks (kernels/qgemm.h, the file's bits unchanged; a quantized token_embd is dequantized one row
// per lookup), F32/F16/BF16 tensors are views into the mapping; other types are dequantized to
// float32. LoadOptions::float_weights dequantizes everything to float32 (as before).
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "formats/loader.h"
#include "formats/output.h"
#include "io/gguf.h"
#include "model/decoder.h"
#include "quant/qstate.h"
#include "util/progress.h"

namespace calq {

struct GgufExportOptions {
  ggml::Type type = ggml::Type::Q8_0;     // 2-D weights
  std::optional<ggml::Type> output_type;  // output.weight / tied token_embd; default see above
  bool pure = false;                      // every 2-D tensor in `type` (F16 only where impossible)
  // A quantization run (or a fake-quant checkpoint) written in any type but f32 is quantized a
  // second time (GGUF's blocks cannot hold GPTQ/AWQ codes): refused with ArgError unless set.
  bool requantize = false;
  std::string name;                       // general.name; default: the source folder's name
  ProgressFn progress;                    // tensors written
};

// A float model folder, or a finished quantization run (its source model with the run's fake-quant
// weights). The output protocol of formats/output.h: `out_path` must not exist.
ExportReport export_gguf(const std::string& model_dir, const std::string& out_path, const GgufExportOptions& o = {});
ExportReport export_gguf(const QuantState& q, const std::string& out_path, const GgufExportOptions& o = {});

// The ggml type a tensor gets under `o` (exposed for tests): `gguf_name` of a tensor with row
// length ne0 and `ndim` dimensions; `tied` when token_embd doubles as the output matrix.
ggml::Type gguf_tensor_type(const std::string& gguf_name, int64_t ne0, int ndim, bool tied, const GgufExportOptions& o);

// convert_hf_to_gguf.py's permute for q_proj/k_proj rows (weights or biases): within each of
// n_head heads, HF row j·(d/2) + i goes to GGUF row 2i + j. Float32 result.
Tensor permute_qk_to_gguf(const Tensor& w, int n_head);
Tensor permute_qk_from_gguf(const Tensor& w, int n_head);

// An HF-style config.json rebuilt from a GGUF file's metadata (FormatError / UnsupportedError).
Json gguf_to_hf_config(const gguf::File& f);

class GgufSource final : public TensorSource {
 public:
  explicit GgufSource(std::shared_ptr<const gguf::File> f, const LoadOptions& o = {});
  bool has(const std::string& name) const override;
  Tensor get(const std::string& name) const override;
  std::string describe() const override { return f_->path(); }
  std::shared_ptr<QuantPackedWeight> quantized_linear(const std::string& module, ComputeType c) const override;
  std::shared_ptr<const EmbeddingRows> embedding_rows(const std::string& name) const override;
  void release(const std::string& name) const override;
  std::string where(const std::string& name) const override;

 private:
  // NonFiniteError naming the tensor when a block's f16 scale (or minimum) is NaN/inf.
  void check_block_scales(ggml::Type type, const uint8_t* data, size_t bytes, const std::string& name) const;
  const gguf::TensorInfo* info(const std::string& hf_name) const;  // null when absent
  bool permuted(const std::string& hf_name) const;  // llama q/k: rows in GGUF's rope order
  int heads_of(const std::string& hf_name) const;
  std::shared_ptr<const gguf::File> f_;
  LoadOptions o_;
  std::string arch_;
  int n_head_ = 0, n_head_kv_ = 0;
};

std::unique_ptr<Decoder> load_gguf_model(const std::string& path, ComputeType compute = ComputeType::F32,
                                         const LoadOptions& o = {});

}  // namespace calq
