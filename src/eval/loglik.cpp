#include "eval/loglik.h"

#include <algorithm>

#include "eval/logprob.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace calq::eval {

TokenPair encode_pair(const Tokenizer& tok, const std::string& context_in, const std::string& continuation_in,
                      bool add_bos) {
  std::string context = context_in, continuation = continuation_in;
  const size_t keep = context.find_last_not_of(" \t\n\r\f\v");
  const size_t cut = keep == std::string::npos ? 0 : keep + 1;
  if (cut < context.size()) {
    continuation = context.substr(cut) + continuation;
    context.resize(cut);
  }
  EncodeOptions eo;
  eo.add_special_tokens = add_bos;
  TokenPair p;
  if (context.empty()) {
    const int32_t prefix = tok.bos_id() >= 0 ? tok.bos_id() : tok.eos_id();
    if (prefix < 0) throw ArgError("empty context and the tokenizer has neither BOS nor EOS");
    p.context = {prefix};
    EncodeOptions plain;
    plain.add_special_tokens = false;
    p.continuation = tok.encode(continuation, plain);
  } else {
    const std::vector<int32_t> whole = tok.encode(context + continuation, eo);
    p.context = tok.encode(context, eo);
    if (p.context.size() > whole.size()) throw ArgError("context encodes longer than context + continuation");
    p.continuation.assign(whole.begin() + int64_t(p.context.size()), whole.end());
  }
  if (p.continuation.empty())
    throw ArgError("continuation '" + continuation_in + "' encodes to no tokens after its context");
  return p;
}

std::vector<LoglikResult> loglikelihood_batch(const LogitSource& model, const std::vector<TokenPair>& reqs,
                                              int64_t max_length) {
  const size_t B = reqs.size();
  std::vector<LoglikResult> out(B);
  if (B == 0) return out;
  const int64_t V = model.vocab_size();
  // Per request: the model input (without the last token) and where the continuation starts in it.
  std::vector<std::vector<int32_t>> inputs(B);
  std::vector<int64_t> first(B);
  int64_t L = 0;
  for (size_t i = 0; i < B; ++i) {
    const TokenPair& r = reqs[i];
    if (r.continuation.empty()) throw ArgError("loglikelihood: empty continuation");
    std::vector<int32_t> all = r.context;
    all.insert(all.end(), r.continuation.begin(), r.continuation.end());
    const int64_t cont = int64_t(r.continuation.size());
    if (max_length > 0 && int64_t(all.size()) > max_length + 1) {
      if (cont > max_length)
        throw ArgError("loglikelihood: continuation of " + std::to_string(cont) + " tokens exceeds max length " +
                       std::to_string(max_length));
      all.erase(all.begin(), all.end() - (max_length + 1));
    }
    for (int32_t id : all)
      if (id < 0 || id >= V) throw ArgError("loglikelihood: token id " + std::to_string(id) + " outside the vocabulary");
    all.pop_back();
    first[i] = int64_t(all.size()) - cont;  // logits at [len - cont, len) predict the continuation
    L = std::max<int64_t>(L, int64_t(all.size()));
    inputs[i] = std::move(all);
  }
  std::vector<int32_t> ids(B * size_t(L), 0);
  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  std::vector<size_t> owner;
  for (size_t i = 0; i < B; ++i) {
    std::copy(inputs[i].begin(), inputs[i].end(), ids.begin() + int64_t(i) * L);
    const std::vector<int32_t>& cont = reqs[i].continuation;
    for (size_t j = 0; j < cont.size(); ++j) {
      rows.push_back(int64_t(i) * L + first[i] + int64_t(j));
      targets.push_back(cont[j]);
      owner.push_back(i);
    }
  }
  std::vector<double> lp(rows.size());
  std::vector<uint8_t> hit(rows.size());
  size_t done = 0;
  model.logits(ids.data(), int64_t(B), L, rows, [&](const float* lg, int64_t n, const int64_t*) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const float* row = lg + r * V;
      const size_t k = done + size_t(r);
      lp[k] = double(row[targets[k]]) - row_logsumexp(row, V);
      hit[k] = row_argmax(row, V) == targets[k];
    }
    done += size_t(n);
  });
  for (size_t i = 0; i < B; ++i) out[i].greedy = true;
  for (size_t k = 0; k < rows.size(); ++k) {  // in order: sums independent of threads
    LoglikResult& r = out[owner[k]];
    r.logprob += lp[k];
    r.greedy = r.greedy && hit[k];
    ++r.tokens;
  }
  return out;
}

}  // namespace calq::eval
