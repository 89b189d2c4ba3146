// Running one decoder layer over all calibration sequences in chunks (the same code path for every
// layer-wise method): the layer inputs X_i, and the layer's output for them with an observer
// attached.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model/decoder.h"

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

// Output of decoder layer i for every sequence of `in` (forward in chunks of in.batch sequences).
// The observer sees each chunk (without padding rows when in.valid is set).
Tensor run_layer_chunked(const Decoder& m, int i, const LayerInputs& in, Observer* obs = nullptr);
// f(x_chunk, seqs_in_chunk) over chunks of `in` rows-aligned with x [n_seq*seq, cols]; concatenated.
Tensor map_chunks(const Tensor& x, int64_t n_seq, int64_t seq, int64_t batch,
                  const std::function<Tensor(const Tensor&, int64_t)>& f);

}  // namespace calq
