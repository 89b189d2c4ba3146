#include "formats/quantized_linears.h"

namespace calq {

QuantCodesView codes_view(const QuantizedWeight& w) {
  QuantCodesView v;
  v.bits = w.bits;
  v.rows = w.rows;
  v.cols = w.cols;
  v.q = w.q.data();
  v.scale = w.scale.data();
  v.zero = w.zero.data();
  v.groups = w.n_groups();
  v.g_idx = w.g_idx.empty() ? nullptr : w.g_idx.data();
  v.group_size = w.group_size;
  return v;
}

std::shared_ptr<QuantPackedWeight> pack_quantized_weight(const QuantizedWeight& w, ComputeType c, QActs acts,
                                                         const std::string& what) {
  w.validate(what);
  return pack_quantized(codes_view(w), c, what.c_str(), acts);  // codes: 4- or 8-bit storage, both run Int8
}

std::shared_ptr<QuantPackedWeight> pack_w8a8_weight(const QuantizedWeight& w, const W8A8Options& o, ComputeType c,
                                                    const std::string& what) {
  w.validate(what);
  return pack_w8a8(w8a8_pack(codes_view(w), what.c_str()), o, c);
}

}  // namespace calq
