// Greedy decoding: the continuation calq generate prints, and the decode throughput it reports.
//
// With the KV cache (the default) the prompt runs once (prefill: Decoder::forward_cached fills the
// cache) and every new token is one cached step of one row; without it every step recomputes the
// whole sequence with forward() (the reference the cached path is tested against: same tokens).
#pragma once
#include <cstdint>
#include <vector>

#include "model/decoder.h"

namespace calq::eval {

struct GenerateOptions {
  int n = 32;             // tokens to generate
  bool kv_cache = true;   // false: full recompute per step
  int threads = 0;        // worker threads (0: the caller's)
  KvQuant kv;             // simulated KV-cache quantization (applied as keys/values are stored)
};

struct GenerateResult {
  std::vector<int32_t> ids;       // the generated tokens (not the prompt)
  double prefill_seconds = 0;     // the prompt's forward pass, incl. the first token's logits
  double decode_seconds = 0;      // the n - 1 steps after the first token
  int64_t prompt_tokens = 0;
  double prefill_tokens_per_s() const { return prefill_seconds > 0 ? double(prompt_tokens) / prefill_seconds : 0; }
  double decode_tokens_per_s() const {
    return decode_seconds > 0 && ids.size() > 1 ? double(ids.size() - 1) / decode_seconds : 0;
  }
};

// Greedy continuation of `prompt` (argmax, lowest id on ties). Throws ArgError on an empty prompt.
GenerateResult generate_greedy(const Decoder& model, const std::vector<int32_t>& prompt, const GenerateOptions& o);

}  // namespace calq::eval
