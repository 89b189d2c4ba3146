// Perplexity over fixed windows of a token stream (protocols in eval/windows.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/logit_source.h"
#include "eval/windows.h"

namespace calq {
class Tokenizer;
}

namespace calq::eval {

// The token stream both protocols cut: encode(text) with the tokenizer's special tokens (its
// post-processor prepends BOS once for Llama-style tokenizers), as GPTQ's datautils
// (`tokenizer(text)`) and llama.cpp (`add_bos`) do.
std::vector<int32_t> token_stream(const Tokenizer& tok, const std::string& text);

class ResumeLog;

struct PplOptions {
  int64_t batch = 1;             // windows per forward pass
  ResumeLog* resume = nullptr;   // finished windows are logged / reused (eval/resume.h)
  int threads = 0;               // worker threads (kernels/threads.h; 0: the caller's)
};

// Reported after every window, in order.
struct PplProgress {
  int64_t window = 0, windows = 0;  // 1-based index of the window just finished, total
  double window_nll_sum = 0;
  int64_t window_predictions = 0;
  int64_t tokens_done = 0;          // tokens fed to the model so far (windows * ctx)
  double ppl = 0, ppl_stderr = 0;   // running estimate over all windows so far
};

struct PplResult {
  int64_t windows = 0, ctx = 0;
  int64_t predictions = 0;          // scored tokens
  double nll_sum = 0, nll_mean = 0;
  double ppl = 0, ppl_stderr = 0;   // delta method on the per-token NLLs (see eval/stats.h)
  std::vector<double> window_nll_sum;
};

// Scores every window; NLL = logsumexp(logits) - logit[target] per prediction, summed per window
// in position order and then over windows in order (independent of thread count, batch size and
// resumption).
PplResult perplexity(const LogitSource& model, const std::vector<Window>& windows, const PplOptions& opt = {},
                     const std::function<void(const PplProgress&)>& on_window = {});

// Per-token NLLs of the scored positions of windows[w0, w1) run as one batch, window-major.
std::vector<double> window_nlls(const LogitSource& model, const std::vector<Window>& windows, size_t w0, size_t w1);

}  // namespace calq::eval
