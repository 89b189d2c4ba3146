// What every evaluation needs from a model: the logits at chosen positions of a [batch, seq] block
// of token ids. DecoderLogits runs any model load_model() returns (float or dequantized GPTQ/AWQ/
// GGUF); tests plug in hand-computable sources. Logits are streamed in row chunks, so scoring a
// 2048-token window of a 128K-vocabulary model never holds [seq, vocab] floats at once.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "eval/windows.h"
#include "kernels/kv_quant.h"

namespace calq {
class Decoder;
}

namespace calq::eval {

// Receives `n` logit rows ([n, vocab], row-major); rows[i] = b * seq + t names row i.
using RowSink = std::function<void(const float* logits, int64_t n, const int64_t* rows)>;

class LogitSource {
 public:
  virtual ~LogitSource() = default;
  virtual int64_t vocab_size() const = 0;
  // The longest sequence the model is meant to see (config max_position_embeddings); 0 if unknown.
  virtual int64_t max_length() const = 0;
  // Runs the causal model on `batch` sequences of `seq` ids and hands the logits of `rows`
  // (flat indices b*seq + t, ascending) to `sink`, in order, in one or more chunks.
  virtual void logits(const int32_t* ids, int64_t batch, int64_t seq, const std::vector<int64_t>& rows,
                      const RowSink& sink) const = 0;
};

class DecoderLogits final : public LogitSource {
 public:
  // chunk_rows: logit rows computed per lm_head call.
  explicit DecoderLogits(const Decoder& m, int64_t chunk_rows = 128) : m_(m), chunk_(chunk_rows) {}
  // Runs every forward pass with this simulated KV-cache quantization (kernels/kv_quant.h).
  void set_kv_quant(const KvQuant& kv) { kv_ = kv; }
  int64_t vocab_size() const override;
  int64_t max_length() const override;
  // Decoder::forward over the whole block with ForwardOptions::rows = `rows` and no logits (the
  // last layer's MLP and the final norm run on those rows only), then lm_head on them, chunk_rows
  // at a time.
  void logits(const int32_t* ids, int64_t batch, int64_t seq, const std::vector<int64_t>& rows,
              const RowSink& sink) const override;

 private:
  const Decoder& m_;
  int64_t chunk_;
  KvQuant kv_;
};

// Runs windows[w0, w1) (equal lengths) as one batch and streams the logits of their scored
// positions: fn(logits [n, vocab], n, index) where index numbers the predictions of the batch
// window-major (position t of a window predicts ids[t + 1]). Checks ids against the vocabulary.
using PredictionSink = std::function<void(const float* logits, int64_t n, int64_t index)>;
void window_logits(const LogitSource& model, const std::vector<Window>& windows, size_t w0, size_t w1,
                   const PredictionSink& fn);

}  // namespace calq::eval
