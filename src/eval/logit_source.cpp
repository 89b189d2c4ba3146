#include "eval/logit_source.h"

#include <algorithm>
#include <cstring>

#include "model/decoder.h"
#include "util/error.h"

namespace calq::eval {

int64_t DecoderLogits::vocab_size() const { return m_.config().vocab_size; }
int64_t DecoderLogits::max_length() const { return m_.config().max_position; }

void DecoderLogits::logits(const int32_t* ids, int64_t batch, int64_t seq, const std::vector<int64_t>& rows,
                           const RowSink& sink) const {
  if (rows.empty()) return;
  const int64_t total = batch * seq;
  for (int64_t r : rows)
    if (r < 0 || r >= total) throw ArgError("DecoderLogits: row index out of range");
  ForwardOptions fo;
  // Final hidden states of `rows` only (the last layer's MLP and the final norm skip the others);
  // lm_head runs below on them, chunk_rows at a time.
  fo.logits = ForwardOptions::Logits::None;
  fo.rows = rows;
  fo.kv = kv_;
  const Tensor fh = m_.forward(ids, batch, seq, fo).last_hidden_state;  // [1, rows.size(), H]
  const int64_t H = fh.dim(2);
  for (size_t c = 0; c < rows.size(); c += size_t(chunk_)) {
    const size_t n = std::min(rows.size() - c, size_t(chunk_));
    Tensor part = Tensor::empty(DType::F32, {int64_t(n), H});
    std::memcpy(part.f32_mut(), fh.f32() + int64_t(c) * H, n * size_t(H) * sizeof(float));
    const Tensor lg = m_.lm_logits(part);
    sink(lg.f32(), int64_t(n), rows.data() + c);
  }
}

void window_logits(const LogitSource& model, const std::vector<Window>& windows, size_t w0, size_t w1,
                   const PredictionSink& fn) {
  if (w0 >= w1 || w1 > windows.size()) throw ArgError("window_logits: bad window range");
  const int64_t T = int64_t(windows[w0].ids.size());
  const int64_t V = model.vocab_size();
  std::vector<int32_t> ids;
  std::vector<int64_t> rows;
  for (size_t w = w0; w < w1; ++w) {
    const Window& x = windows[w];
    if (int64_t(x.ids.size()) != T) throw ArgError("window_logits: windows of one batch must have equal lengths");
    for (int32_t id : x.ids)
      if (id < 0 || id >= V)
        throw ArgError("token id " + std::to_string(id) + " is outside the model's vocabulary (" +
                       std::to_string(V) + " ids): tokenizer and model do not match");
    ids.insert(ids.end(), x.ids.begin(), x.ids.end());
    for (int64_t t = x.first_scored; t + 1 < T; ++t) rows.push_back(int64_t(w - w0) * T + t);
  }
  int64_t done = 0;
  model.logits(ids.data(), int64_t(w1 - w0), T, rows, [&](const float* lg, int64_t n, const int64_t*) {
    fn(lg, n, done);
    done += n;
  });
}

}  // namespace calq::eval
