// KL divergence of a model Q against a reference model P, from the compact top-k reference
// (eval/kld_ref.h). Per scored token, with S = P's top-k ids, T_P = P's mass outside S and
// T_Q = Q's mass outside S (both summed directly):
//   KLD ≈ Σ_{i∈S} p_i (log p_i − log q_i) + T_P (log T_P − log T_Q)
// This is the exact KL divergence between P and Q coarse-grained onto k+1 outcomes (the k ids and
// one "tail" bucket). By the log-sum inequality it never exceeds the full-vocabulary KL(P‖Q); the
// gap is T_P · KL(P_tail/T_P ‖ Q_tail/T_Q), the divergence inside the tail weighted by its mass
// (measured on stories260K in docs/eval.md).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "eval/kld_ref.h"
#include "eval/logit_source.h"

namespace calq::eval {

// Runs P over `windows` and keeps the top-k reference rows (meta.k, meta.ctx etc. are filled from
// the windows; the caller sets the identity fields).
KldReference build_kld_reference(const LogitSource& p, const std::vector<Window>& windows, int k,
                                 int64_t batch = 1, const std::function<void(int64_t, int64_t)>& on_window = {});

struct KldStats {
  int64_t tokens = 0;
  double kld_mean = 0, kld_mean_stderr = 0;
  double kld_median = 0, kld_p90 = 0, kld_p95 = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0;
  double same_top_pct = 0, same_top_pct_stderr = 0;  // argmax Q == argmax P, in %
  // Δp = q(correct token) - p(correct token), in percentage points (as llama.cpp prints it).
  double dp_mean_pct = 0, dp_mean_pct_stderr = 0, dp_rms_pct = 0;
  double dp_p01_pct = 0, dp_p05_pct = 0, dp_p10_pct = 0, dp_median_pct = 0, dp_p90_pct = 0, dp_p95_pct = 0,
         dp_p99_pct = 0;
  double ppl_ref = 0, ppl = 0;               // over the same scored tokens
  double ppl_ratio = 0, ppl_ratio_stderr = 0; // exp(mean(nll_Q - nll_P)), delta-method error
  double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;
};

// Per-token results of one reference row against a full Q row (logits of Q, vocab entries).
struct KldToken {
  double kld = 0, nll_q = 0, p_target_q = 0;
  double lp_ref_target = 0;  // log p_ref(correct token)
  bool same_top = false;
};
// The statistics of KldStats over per-token results (in order).
KldStats summarize_kld(const std::vector<KldToken>& tokens);
KldToken kld_token(const float* q_logits, int64_t vocab, const int32_t* topk_ids, const float* topk_logprobs,
                   int64_t k, double tail_mass_p, int32_t target, uint8_t* scratch);

class ResumeLog;
// Scores Q on the reference's windows. Throws ArgError when Q's vocabulary differs. `resume`:
// finished windows are logged / reused (eval/resume.h).
KldStats score_kld(const LogitSource& q, const KldReference& ref, int64_t batch = 1,
                   const std::function<void(int64_t, int64_t, double)>& on_window = {}, ResumeLog* resume = nullptr);

// The exact alternative to a reference file: runs P and Q side by side on `windows` and takes the
// full-vocabulary KL(P‖Q) per token (same statistics; same-top compares the two argmaxes). Holds
// P's logits of one batch ([batch * scored positions, vocab] floats) in memory.
KldStats score_kld_exact(const LogitSource& p, const LogitSource& q, const std::vector<Window>& windows,
                         int64_t batch = 1, const std::function<void(int64_t, int64_t, double)>& on_window = {},
                         ResumeLog* resume = nullptr);

// Full-vocabulary KL(P‖Q) of two logit rows (double precision, std::exp): the exact value the
// top-k approximation is measured against.
double kld_exact(const float* p_logits, const float* q_logits, int64_t vocab);

// Mean exact KL(P‖Q) and mean top-k approximation for each k in `ks`, over the scored tokens of
// `windows` (the approximation study of docs/eval.md). Runs both models.
struct KldApproxRow {
  int64_t k = 0;
  double kld_topk_mean = 0, max_abs_token_error = 0, mean_tail_mass = 0;
};
struct KldApproxStudy {
  int64_t tokens = 0;
  double kld_exact_mean = 0;
  std::vector<KldApproxRow> rows;
};
KldApproxStudy kld_approximation_study(const LogitSource& p, const LogitSource& q, const std::vector<Window>& windows,
                                       const std::vector<int64_t>& ks);

}  // namespace calq::eval
