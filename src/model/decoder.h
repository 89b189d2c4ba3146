// The generic decoder-only transformer: one forward pass for OPT, Llama-2/3, Mistral, Qwen2 and
// Cohere, configured by ModelConfig flags. Batched prefill over [batch, seq] token ids with a
// causal mask (positions 0..seq-1 in every sequence, no padding), and incremental decoding of one
// sequence with a KV cache (forward_cached: model/kv_cache.h).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "kernels/kv_quant.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/naming.h"
#include "model/observer.h"

namespace calq {

// Rows of an embedding table [rows, cols] dequantized on lookup (TensorSource::embedding_rows).
class EmbeddingRows {
 public:
  virtual ~EmbeddingRows() = default;
  virtual int64_t rows() const = 0;
  virtual int64_t cols() const = 0;
  virtual void row(int64_t i, float* out) const = 0;  // cols floats
};

// Where the decoder gets its tensors (a checkpoint, or an in-memory map for synthetic models).
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual bool has(const std::string& name) const = 0;
  virtual Tensor get(const std::string& name) const = 0;  // throws FormatError naming the tensor
  virtual std::string describe() const = 0;               // a path, for error messages
  // A linear layer's weight ("<module>.weight") kept in its quantized form and packed for `c`
  // (GPTQ/AWQ/qstate codes, GGUF blocks, W8A8); null when the source holds it as a float tensor,
  // which the decoder then views through get().
  virtual std::shared_ptr<QuantPackedWeight> quantized_linear(const std::string& module, ComputeType c) const {
    return nullptr;
  }
  // Token embeddings the source keeps in a form that is not a float tensor (GGUF blocks): rows are
  // dequantized when looked up. Null: get() gives the table.
  virtual std::shared_ptr<const EmbeddingRows> embedding_rows(const std::string& name) const { return nullptr; }
  // `name` has been packed: the source may drop its resident pages (a mapped file stays mapped and
  // reads them back if the tensor is asked for again). Default: nothing.
  virtual void release(const std::string& name) const {}
  // Where tensor `name` comes from, for error messages: "<file>: tensor '<name>'" (the shard file
  // when the source knows it; the GGUF name too for GGUF files).
  virtual std::string where(const std::string& name) const { return describe() + ": tensor '" + name + "'"; }
};

class CheckpointSource final : public TensorSource {
 public:
  explicit CheckpointSource(std::shared_ptr<const Checkpoint> c) : c_(std::move(c)) {}
  bool has(const std::string& name) const override { return c_->has(name); }
  Tensor get(const std::string& name) const override { return c_->get(name); }
  std::string describe() const override { return c_->dir(); }
  void release(const std::string& name) const override { c_->release(name); }
  std::string where(const std::string& name) const override { return c_->where(name); }

 private:
  std::shared_ptr<const Checkpoint> c_;
};

class MapSource final : public TensorSource {
 public:
  std::map<std::string, Tensor> tensors;
  bool has(const std::string& name) const override { return tensors.count(name) != 0; }
  Tensor get(const std::string& name) const override;
  std::string describe() const override { return "<in-memory tensors>"; }
};

struct DecoderLayer {
  int index = 0;
  Norm attn_norm, mlp_norm;  // mlp_norm unused for parallel blocks
  Linear q, k, v, o;
  Linear gate, up, down;     // gate unused without a gated MLP (OPT: up = fc1, down = fc2)
  Tensor q_norm, k_norm;     // Cohere QK-norm weights, [heads, head_dim] / [kv_heads, head_dim]
  std::vector<Linear*> linears();  // in execution order
};

struct ForwardOptions {
  enum class Logits { All, Last, None };
  Logits logits = Logits::All;
  bool hidden_states = false;   // fill ForwardOutput::hidden_states and last_hidden_state
  Observer* observer = nullptr;
  int threads = 0;              // worker threads of this call (kernels/threads.h; 0: the caller's)
  KvQuant kv;                   // simulated KV-cache quantization of every attention layer (off by default)
  // Only these rows (flat indices b * seq + t, each < batch * seq, any order) are wanted: logits
  // (with Logits::All) and last_hidden_state (Logits::None) hold them alone, in this order, as
  // [1, rows.size(), ·]. Empty: every row. The last layer then runs its attention on every row
  // (keys and values need all positions) and its o_proj, MLP and the final norm only on these, as
  // llama.cpp does for the positions it returns logits for; each row's arithmetic is the same as
  // in a full pass (EvalGolden tests: bitwise-equal NLLs), given GEMMs whose rows do not depend on
  // the row count, as oneDNN's AVX-512 kernels (its AVX2 ones differ in the last bits, as batched
  // windows do: ONEDNN_MAX_CPU_ISA=AVX2 fails these tests and PerplexityDoesNotDependOnBatch
  // alike). Not with Logits::Last or hidden_states;
  // with an observer every row runs (it sees what a full pass shows) and the rows are picked after.
  std::vector<int64_t> rows;
};

struct ForwardOutput {
  Tensor logits;                      // [batch, seq, vocab] (All), [batch, 1, vocab] (Last), [1, rows, vocab] (rows)
  std::vector<Tensor> hidden_states;  // num_layers + 1 tensors [batch, seq, hidden], before the final norm
  Tensor last_hidden_state;           // final norm (+ OPT project_out) of the last one: lm_head's input
                                      // (also filled when logits == None, for callers that run lm_head
                                      // on selected rows themselves)
};

class Decoder {
 public:
  // Loads a Hugging Face folder; weights stay memory-mapped until first use.
  static std::unique_ptr<Decoder> load(const std::string& dir, ComputeType compute = ComputeType::F32);
  static std::unique_ptr<Decoder> from_source(const ModelConfig& cfg, std::shared_ptr<const TensorSource> src,
                                              ComputeType compute = ComputeType::F32);

  const ModelConfig& config() const { return cfg_; }
  // Packs every linear layer for the current compute type now (q|k|v fused where possible) and
  // lets the source drop the pages the float weights were packed from: what runs is then the
  // packed copy alone (weight() fetches the float tensor again when asked). Quantized layers are
  // packed when loaded. Returns the bytes of weights held in memory (packed linears, embeddings
  // and norms that are not mapped views).
  size_t pack_weights();
  // Bytes of weights the model holds in memory now (as pack_weights returns).
  size_t resident_weight_bytes() const;
  const ModuleNames& names() const { return names_; }
  // Null for synthetic models.
  const Checkpoint* checkpoint() const { return checkpoint_.get(); }
  ComputeType compute() const { return compute_; }
  void set_compute(ComputeType c) { compute_ = c; }

  ForwardOutput forward(const int32_t* ids, int64_t batch, int64_t seq, const ForwardOptions& opt = {}) const;

  // --- incremental decoding (one sequence) ---
  // A cache for this model's layers, sized for `max_positions` (it grows when needed; layers with a
  // sliding window keep a ring of window + KvCache::kMaxStep positions).
  KvCache new_cache(int64_t max_positions = 0) const;
  // Runs `n` new tokens at positions cache.length() .. + n - 1, attending to every cached position,
  // appends their keys and values, and returns the logits ([1, n, vocab] for Logits::All, [1, 1,
  // vocab] for Last). The same computation as forward() on the whole sequence, up to float summation
  // order (the first call, on an empty cache, runs forward()'s attention kernel). Observers and
  // hidden_states are not supported here.
  ForwardOutput forward_cached(const int32_t* ids, int64_t n, KvCache& cache, const ForwardOptions& opt = {}) const;

  // --- layer-wise pieces (the same code forward() runs) ---
  // Residual stream after the embeddings, [batch*seq, hidden]. Throws ArgError on an id >= vocab.
  Tensor embed(const int32_t* ids, int64_t batch, int64_t seq) const;
  // h [batch*seq, hidden] -> output of decoder layer i, in place (through layer_forward).
  void run_layer(int i, Tensor& h, int64_t batch, int64_t seq, Observer* obs = nullptr) const;
  // Output of decoder layer i for x [batch*seq, hidden] (x unchanged).
  //
  // Non-finite activations are never passed on: forward(), run_layer/layer_forward and lm_logits
  // check every layer's output (the residual stream) and the logits, and throw NonFiniteError
  // naming the layer and the first module whose output went NaN/inf. The check is one read of the
  // [rows, hidden] output per layer, outside the GEMMs (bench_prefill: < 1 %); the module is
  // located only on the failure path, by running the layer again module by module.
  Tensor layer_forward(int i, const Tensor& x, int64_t batch, int64_t seq, Observer* obs = nullptr) const;
  // Failure path: what first produces a non-finite value when layer i runs on x, e.g. "the output
  // of model.layers.3.self_attn.q_proj" ("" when the layer output is finite).
  std::string locate_non_finite(int i, const Tensor& x, int64_t batch, int64_t seq) const;
  // Final norm (+ OPT project_out): the lm_head input, [rows, proj_dim].
  Tensor final_hidden(const Tensor& h) const;
  // lm_head (× logit_scale) over rows of a final hidden state, [rows, vocab].
  Tensor lm_logits(const Tensor& final_h, Observer* obs = nullptr) const;
  // x = attn_norm(h) etc.: the sub-blocks, for methods that score block outputs (AWQ).
  Tensor apply_norm(const Norm& n, const Tensor& x) const;
  Tensor attention_block(int i, const Tensor& x_normed, int64_t batch, int64_t seq, Observer* obs = nullptr) const;
  Tensor mlp_block(int i, const Tensor& x_normed, Observer* obs = nullptr) const;

  int num_layers() const { return int(layers_.size()); }
  DecoderLayer& layer(int i) { return *layers_.at(size_t(i)); }
  const DecoderLayer& layer(int i) const { return *layers_.at(size_t(i)); }
  Linear& lm_head() { return lm_head_; }
  // The token embedding table [vocab, embed] (a float32 copy when the source keeps it quantized).
  Tensor embed_tokens() const;
  Linear* find_linear(const std::string& name);
  std::vector<Linear*> all_linears(bool include_lm_head = false);
  Norm& final_norm() { return final_norm_; }
  int64_t parameter_count() const;

 private:
  Decoder() = default;
  void build(std::shared_ptr<const TensorSource> src);
  // The tensor the input embedding is read from (the tied lm_head when only that is stored).
  std::string embedding_tensor_name() const;
  void load_linear(Linear& l, const std::string& name, int64_t out, int64_t in, bool bias, bool required = true);
  Norm load_norm(const std::string& name, int64_t n, bool bias) const;
  // Shared, so a concurrent forward() that replaces the cached table cannot pull it from under us.
  std::shared_ptr<const RopeTable> rope_table(int64_t seq) const;
  // The hot path: buffers of one forward pass reused by every layer (decoder.cpp); outputs are
  // written to `out` (accumulate: added to it, i.e. the residual add fused into the GEMM).
  struct Scratch;
  void run_layer(int i, Tensor& h, int64_t batch, int64_t seq, Observer* obs, Scratch& s, KvCache* cache = nullptr) const;
  // With a cache: batch 1, the `seq` rows are positions cache->length() .. + seq - 1.
  // keep: o_proj runs only on these rows of the attention output (out then has keep->size() rows).
  void attention_into(int i, const float* xn, int64_t batch, int64_t seq, Observer* obs, Scratch& s, float* out,
                      bool accumulate, KvCache* cache = nullptr, const std::vector<int64_t>* keep = nullptr) const;
  // Layer i with attention on every row of h and the rest on the `keep` rows alone: h becomes
  // [keep.size(), hidden] (ForwardOptions::rows; no observer).
  void run_layer_rows(int i, Tensor& h, int64_t batch, int64_t seq, const std::vector<int64_t>& keep, Scratch& s) const;
  void embed_rows(const int32_t* ids, int64_t rows, float* x) const;  // token embeddings, [rows, E]
  void add_positions(float* x, int64_t rows, int64_t seq, int64_t pos0) const;  // OPT learned positions
  // One step of forward_cached (at most the cache's step size).
  Tensor cached_step(const int32_t* ids, int64_t n, KvCache& cache, const ForwardOptions& opt) const;
  void mlp_into(int i, const float* xn, int64_t rows, Observer* obs, Scratch& s, float* out, bool accumulate) const;
  // The gated MLP on quantized gate|up stacked into one weight (fused_quantized_linear).
  void gated_mlp_stacked(const DecoderLayer& L, const FusedLinear& f, const float* xn, int64_t rows, Observer* obs,
                         Scratch& s, float* out, bool accumulate) const;
  void norm_into(const Norm& n, const float* x, int64_t rows, float* y) const;
  // The layer without the output check (locate_non_finite runs it with its probe).
  void run_layer_unchecked(int i, Tensor& h, int64_t batch, int64_t seq, Observer* obs) const;
  // Throws NonFiniteError for layer i, whose input was x and whose output `out` is not finite.
  [[noreturn]] void throw_non_finite_layer(int i, const Tensor& x, int64_t batch, int64_t seq, const Tensor& out) const;

  ModelConfig cfg_;
  ModuleNames names_;
  std::shared_ptr<const Checkpoint> checkpoint_;
  std::shared_ptr<const TensorSource> src_;
  ComputeType compute_ = ComputeType::F32;
  Tensor embed_tokens_, embed_positions_;
  std::shared_ptr<const EmbeddingRows> embed_rows_;  // set instead of embed_tokens_ for quantized tables
  Linear project_in_, project_out_;  // OPT when word_embed_proj_dim != hidden_size
  bool has_project_ = false;
  std::vector<std::unique_ptr<DecoderLayer>> layers_;
  Norm final_norm_;
  Linear lm_head_;
  std::vector<double> inv_freq_;
  mutable std::mutex rope_mu_;
  mutable std::shared_ptr<RopeTable> rope_;
};

}  // namespace calq
