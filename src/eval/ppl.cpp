#include "eval/ppl.h"

#include <algorithm>

#include "eval/logprob.h"
#include "eval/resume.h"
#include "eval/stats.h"
#include "kernels/threads.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace calq::eval {

std::vector<int32_t> token_stream(const Tokenizer& tok, const std::string& text) {
  EncodeOptions o;
  o.add_special_tokens = true;
  return tok.encode(text, o);
}

std::vector<double> window_nlls(const LogitSource& model, const std::vector<Window>& windows, size_t w0, size_t w1) {
  std::vector<int32_t> targets;
  for (size_t w = w0; w < w1; ++w)
    for (int64_t t = windows[w].first_scored; t + 1 < int64_t(windows[w].ids.size()); ++t)
      targets.push_back(windows[w].ids[size_t(t + 1)]);
  const int64_t V = model.vocab_size();
  std::vector<double> nll(targets.size());
  window_logits(model, windows, w0, w1, [&](const float* lg, int64_t n, int64_t off) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float* row = lg + i * V;
      nll[size_t(off + i)] = row_logsumexp(row, V) - double(row[targets[size_t(off + i)]]);
    }
  });
  return nll;
}

PplResult perplexity(const LogitSource& model, const std::vector<Window>& windows, const PplOptions& opt,
                     const std::function<void(const PplProgress&)>& on_window) {
  if (windows.empty()) throw ArgError("perplexity: no windows to score");
  const ThreadScope threads(opt.threads);
  PplResult r;
  r.windows = int64_t(windows.size());
  r.ctx = int64_t(windows[0].ids.size());
  MeanAccumulator acc;
  ResumeLog* log = opt.resume;
  auto unit = [](size_t w) { return "window/" + std::to_string(w); };
  const size_t B = size_t(std::max<int64_t>(1, opt.batch));
  auto logged = [&](size_t w) { return log && log->find(unit(w)) != nullptr; };
  for (size_t w0 = 0, w1 = 0; w0 < windows.size(); w0 = w1) {
    w1 = pass_end(w0, windows.size(), B, logged);
    const std::vector<double> nll = logged(w0) ? std::vector<double>{} : window_nlls(model, windows, w0, w1);
    size_t k = 0;
    for (size_t w = w0; w < w1; ++w) {
      const int64_t n = windows[w].predictions();
      double s = 0, s2 = 0;
      if (const Json* v = log ? log->find(unit(w)) : nullptr) {
        s = v->at(0).get<double>();
        s2 = v->at(1).get<double>();
        const std::string at = "resume log: " + unit(w);
        if (json_int<ArgError>(v->at(2), "predictions", at, 0, INT64_MAX) != n) throw ArgError(at + " does not match");
      } else {
        for (int64_t i = 0; i < n; ++i) {
          s += nll[k + size_t(i)];
          s2 += nll[k + size_t(i)] * nll[k + size_t(i)];
        }
        if (log) log->put(unit(w), Json::array({s, s2, n}));
      }
      k += size_t(n);
      acc.merge(s, s2, n);
      r.window_nll_sum.push_back(s);
      if (on_window) {
        PplProgress p;
        p.window = int64_t(w + 1);
        p.windows = r.windows;
        p.window_nll_sum = s;
        p.window_predictions = n;
        p.tokens_done = int64_t(w + 1) * r.ctx;
        const PerplexityEstimate e = perplexity_of(acc);
        p.ppl = e.ppl;
        p.ppl_stderr = e.ppl_stderr;
        on_window(p);
      }
    }
  }
  r.predictions = acc.count();
  r.nll_sum = acc.sum();
  r.nll_mean = acc.mean();
  const PerplexityEstimate e = perplexity_of(acc);
  r.ppl = e.ppl;
  r.ppl_stderr = e.ppl_stderr;
  return r;
}

}  // namespace calq::eval
