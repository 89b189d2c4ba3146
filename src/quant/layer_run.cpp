#include "quant/layer_run.h"

#include <algorithm>
#include <cstring>

#include "observe/capture.h"
#include "util/error.h"

namespace calq {

Tensor map_chunks(const Tensor& x, int64_t n_seq, int64_t seq, int64_t batch,
                  const std::function<Tensor(const Tensor&, int64_t)>& f) {
  if (x.ndim() != 2 || x.dim(0) != n_seq * seq) throw ArgError("map_chunks: x is not [n_seq*seq, cols]");
  batch = std::max<int64_t>(1, batch);
  Tensor out;
  for (int64_t s0 = 0; s0 < n_seq; s0 += batch) {
    const int64_t b = std::min(batch, n_seq - s0);
    const Tensor y = f(x.slice_rows(s0 * seq, (s0 + b) * seq), b);
    if (!out.defined()) out = Tensor::empty(DType::F32, {n_seq * seq, y.dim(1)});
    std::memcpy(out.f32_mut() + s0 * seq * y.dim(1), y.f32(), y.nbytes());
  }
  return out;
}

Tensor run_layer_chunked(const Decoder& m, int i, const LayerInputs& in, Observer* obs) {
  int64_t row0 = 0;
  return map_chunks(in.x, in.n_seq, in.seq, in.batch, [&](const Tensor& xc, int64_t b) {
    Tensor h;
    if (obs && in.valid) {
      RowMaskObserver mo(obs, in.valid->data() + row0);
      h = m.layer_forward(i, xc, b, in.seq, &mo);
    } else {
      h = m.layer_forward(i, xc, b, in.seq, obs);
    }
    row0 += b * in.seq;
    return h;
  });
}

}  // namespace calq
