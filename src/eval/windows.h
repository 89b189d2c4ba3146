// Perplexity protocols: how a token stream is cut into windows and which predictions count.
//
// GPTQ / AutoGPTQ (Frantar et al. 2022, datautils + llama_eval; HF perplexity docs): ids = BOS +
//   encode(text) (BOS once, at the very start), nsamples = len(ids) / ctx non-overlapping windows
//   ids[i*ctx, (i+1)*ctx) (the tail is dropped), each evaluated from scratch; in a window token t+1
//   is predicted from tokens 0..t for t = 0..ctx-2 (ctx-1 predictions); ppl = exp(mean NLL).
// llama.cpp (examples/perplexity): the same stream and windows, but the first token of every
//   window is replaced by BOS and only the second half is scored: logits at positions
//   ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1 (ctx - 1 - ctx/2 predictions per window), so
//   every scored token sees at least ctx/2 tokens of context.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace calq::eval {

enum class Protocol { Gptq, LlamaCpp };
const char* protocol_name(Protocol p);          // "gptq", "llama.cpp"
Protocol parse_protocol(const std::string& s);  // also accepts "llamacpp"; ArgError otherwise

struct Window {
  int64_t start = 0;           // offset of the window in the token stream
  std::vector<int32_t> ids;    // ctx tokens as fed to the model (BOS substituted for llama.cpp)
  int64_t first_scored = 0;    // logits at positions first_scored .. ctx-2 are scored,
                               // position t predicting ids[t+1]
  int64_t predictions() const { return int64_t(ids.size()) - 1 - first_scored; }
};

// Cuts `stream` (already BOS-prefixed when the tokenizer has one) into windows. max_windows > 0
// keeps only the first ones (--chunks). bos_id < 0: no substitution (tokenizer without BOS).
// Throws ArgError when ctx < 2 or the stream is shorter than one window.
std::vector<Window> make_windows(const std::vector<int32_t>& stream, int64_t ctx, Protocol p, int32_t bos_id,
                                 int64_t max_windows = 0);

// End of the forward pass that starts at window w0 of n: w0 + 1 when `done(w0)` (a window a resume
// log holds: nothing to run), else w0 extended over up to `batch` consecutive windows not done, so
// a resumed run recomputes no finished window.
size_t pass_end(size_t w0, size_t n, size_t batch, const std::function<bool(size_t)>& done);

}  // namespace calq::eval
