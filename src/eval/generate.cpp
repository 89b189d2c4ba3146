#include "eval/generate.h"

#include <chrono>

#include "eval/logprob.h"
#include "util/error.h"

namespace calq::eval {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int32_t argmax_last(const Tensor& logits) {  // logits [1, 1, vocab]
  return int32_t(row_argmax(logits.f32(), logits.dim(2)));
}

}  // namespace

GenerateResult generate_greedy(const Decoder& model, const std::vector<int32_t>& prompt, const GenerateOptions& o) {
  if (prompt.empty()) throw ArgError("generate: the prompt has no tokens");
  GenerateResult r;
  r.prompt_tokens = int64_t(prompt.size());
  if (o.n <= 0) return r;
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::Last;
  fo.threads = o.threads;
  fo.kv = o.kv;
  auto t0 = std::chrono::steady_clock::now();
  if (!o.kv_cache) {  // the reference: the whole sequence again for every token
    std::vector<int32_t> ids = prompt;
    for (int s = 0; s < o.n; ++s) {
      const ForwardOutput out = model.forward(ids.data(), 1, int64_t(ids.size()), fo);
      ids.push_back(argmax_last(out.logits));
      r.ids.push_back(ids.back());
      if (s == 0) {
        r.prefill_seconds = seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
      }
    }
    r.decode_seconds = seconds_since(t0);
    return r;
  }
  KvCache cache = model.new_cache(int64_t(prompt.size()) + o.n);
  ForwardOutput out = model.forward_cached(prompt.data(), int64_t(prompt.size()), cache, fo);
  r.ids.push_back(argmax_last(out.logits));
  r.prefill_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  for (int s = 1; s < o.n; ++s) {
    out = model.forward_cached(&r.ids.back(), 1, cache, fo);
    r.ids.push_back(argmax_last(out.logits));
  }
  r.decode_seconds = seconds_since(t0);
  return r;
}

}  // namespace calq::eval
