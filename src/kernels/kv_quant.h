// KV-cache quantization, simulated in the forward pass: the keys (after RoPE) and values every
// attention layer stores are fake-quantized per token before attention reads them, as qllm-eval
// does (Li et al. 2024, "Evaluating Quantized Large Language Models"; thu-nics/qllm-eval
// quant_funcs.pseudo_quantize_tensor applied to key_states/value_states in qattn/sw/*_attn.py):
// every row of one KV head is cut into groups of `group` channels along head_dim, each group
// quantized on its own.
//   asymmetric (qllm-eval's default): scale = max(max - min, 1e-5) / (2^b - 1),
//       zero = clamp(-round(min / scale), 0, 2^b - 1), x' = (clamp(round(x / scale) + zero, 0, 2^b - 1) - zero)·scale
//   symmetric: scale = max(absmax, 1e-5) / (2^(b-1) - 1), x' = clamp(round(x / scale), -2^(b-1), 2^(b-1) - 1)·scale
// round() is round-half-to-even (torch.round). bits 16 is "off": the forward pass is unchanged.
#pragma once
#include <cstdint>
#include <string>

namespace calq {

struct KvQuant {
  int bits = 16;     // 2..8, or 16 = not quantized
  int group = 0;     // channels per group along head_dim; 0 = the whole head (one group per head)
  bool sym = false;  // false: asymmetric with a zero point (qllm-eval's default)

  bool enabled() const { return bits < 16; }
  // ArgError unless bits is 16 or in 2..8 and group >= 0; with head_dim > 0 also unless group
  // divides head_dim.
  void validate(int head_dim = 0) const;
  // "kv4 g32 asym", "kv8 sym", "" when off.
  std::string describe() const;
  bool operator==(const KvQuant& o) const { return bits == o.bits && group == o.group && sym == o.sym; }
};

// Fake-quantizes `rows` rows of `heads` heads of `head_dim` floats each (row stride `ld` floats,
// 0 = heads*head_dim) in place. The reference (one group at a time) and the fast path (rows in
// parallel, the same arithmetic per group) give bitwise the same result.
void kv_fake_quant_ref(float* x, int64_t rows, int heads, int head_dim, int64_t ld, const KvQuant& q);
void kv_fake_quant(float* x, int64_t rows, int heads, int head_dim, int64_t ld, const KvQuant& q);

}  // namespace calq
