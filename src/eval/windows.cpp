#include "eval/windows.h"

#include "util/error.h"

namespace calq::eval {

const char* protocol_name(Protocol p) { return p == Protocol::Gptq ? "gptq" : "llama.cpp"; }

Protocol parse_protocol(const std::string& s) {
  if (s == "gptq") return Protocol::Gptq;
  if (s == "llama.cpp" || s == "llamacpp") return Protocol::LlamaCpp;
  throw ArgError("unknown perplexity protocol '" + s + "' (expected gptq or llama.cpp)");
}

std::vector<Window> make_windows(const std::vector<int32_t>& stream, int64_t ctx, Protocol p, int32_t bos_id,
                                 int64_t max_windows) {
  if (ctx < 2) throw ArgError("perplexity context must be at least 2 tokens (got " + std::to_string(ctx) + ")");
  const int64_t n = int64_t(stream.size()) / ctx;
  if (n == 0)
    throw ArgError("text too short: " + std::to_string(stream.size()) + " tokens, less than one window of " +
                   std::to_string(ctx));
  const int64_t count = max_windows > 0 && max_windows < n ? max_windows : n;
  std::vector<Window> w(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    Window& x = w[size_t(i)];
    x.start = i * ctx;
    x.ids.assign(stream.begin() + x.start, stream.begin() + x.start + ctx);
    if (p == Protocol::LlamaCpp) {
      if (bos_id >= 0) x.ids[0] = bos_id;
      x.first_scored = ctx / 2;
    }
  }
  return w;
}

size_t pass_end(size_t w0, size_t n, size_t batch, const std::function<bool(size_t)>& done) {
  size_t w1 = w0 + 1;
  if (!done(w0))
    while (w1 < n && w1 - w0 < batch && !done(w1)) ++w1;
  return w1;
}

}  // namespace calq::eval
