// lm-evaluation-harness `loglikelihood` requests on token ids: log p(continuation | context) summed
// over the continuation tokens, and whether greedy decoding reproduces every one of them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/logit_source.h"

namespace calq {
class Tokenizer;
}

namespace calq::eval {

struct TokenPair {
  std::vector<int32_t> context, continuation;
};

// The harness's HFLM._encode_pair: trailing whitespace of the context moves to the front of the
// continuation; whole = encode(context + continuation), ctx = encode(context), continuation =
// whole[len(ctx):]. Special tokens only when add_bos (the harness default for causal models is
// add_special_tokens=False). An empty context becomes [BOS] (or [EOS] without one), as
// HFLM.prefix_token_id. ArgError when the continuation encodes to no tokens.
TokenPair encode_pair(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                      bool add_bos);

struct LoglikResult {
  double logprob = 0;   // Σ log p(continuation tokens)
  bool greedy = false;  // every continuation token is the argmax of its logits
  int64_t tokens = 0;   // continuation tokens
};

// Scores `reqs` as one right-padded batch [reqs, L]: each sequence is (context + continuation)
// left-truncated to max_length + 1 tokens (0: no limit), without its last token (the harness's
// input). Right padding is exact for causal models (no real position attends to a pad). Pad id: 0.
std::vector<LoglikResult> loglikelihood_batch(const LogitSource& model, const std::vector<TokenPair>& reqs,
                                              int64_t max_length);

}  // namespace calq::eval
