#include "eval/kld.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "eval/logprob.h"
#include "eval/resume.h"
#include "eval/stats.h"
#include "util/error.h"

namespace calq::eval {

namespace {

std::vector<int32_t> targets_of(const std::vector<Window>& windows, size_t w0, size_t w1) {
  std::vector<int32_t> t;
  for (size_t w = w0; w < w1; ++w)
    for (int64_t i = windows[w].first_scored; i + 1 < int64_t(windows[w].ids.size()); ++i)
      t.push_back(windows[w].ids[size_t(i + 1)]);
  return t;
}

// Coarse-grained KL over the k ids of S and one tail bucket (see kld.h).
double topk_kld(const float* q_logits, double lse_q, const int32_t* ids, const float* lp, int64_t k, double tail_p,
                double tail_q) {
  double kl = 0;
  for (int64_t j = 0; j < k; ++j) {
    const double lpj = lp[j];
    kl += std::exp(lpj) * (lpj - (double(q_logits[ids[j]]) - lse_q));
  }
  if (tail_p > 0) kl += tail_p * (std::log(tail_p) - std::log(std::max(tail_q, 1e-300)));
  return kl;
}

// One window's per-token results in a resume log, and back.
Json tokens_json(const std::vector<KldToken>& t, size_t b, size_t e) {
  Json kl = Json::array(), nq = Json::array(), pq = Json::array(), lp = Json::array(), same = Json::array();
  for (size_t i = b; i < e; ++i) {
    kl.push_back(t[i].kld);
    nq.push_back(t[i].nll_q);
    pq.push_back(t[i].p_target_q);
    lp.push_back(t[i].lp_ref_target);
    same.push_back(t[i].same_top ? 1 : 0);
  }
  return {{"kld", kl}, {"nll_q", nq}, {"p_q", pq}, {"lp_ref", lp}, {"same_top", same}};
}

void tokens_from_json(const Json& j, std::vector<KldToken>& t, size_t b, size_t e) {
  if (j.at("kld").size() != e - b) throw ArgError("resume log: a KLD window does not match the reference");
  for (size_t i = b; i < e; ++i) {
    t[i].kld = j.at("kld")[i - b].get<double>();
    t[i].nll_q = j.at("nll_q")[i - b].get<double>();
    t[i].p_target_q = j.at("p_q")[i - b].get<double>();
    t[i].lp_ref_target = j.at("lp_ref")[i - b].get<double>();
    t[i].same_top = json_int<ArgError>(j.at("same_top")[i - b], "same_top", "resume log: a KLD window", 0, 1) != 0;
  }
}

std::string kld_unit(size_t w) { return "kld/window/" + std::to_string(w); }
bool logged(const ResumeLog* log, size_t w) { return log && log->find(kld_unit(w)) != nullptr; }

// Runs `compute(w0, w1)` for a batch unless the log holds every window of it, then logs the new
// windows or restores the logged ones (token range of window w: [offs[w], offs[w + 1])).
void with_resume(ResumeLog* log, size_t w0, size_t w1, const std::vector<size_t>& offs, std::vector<KldToken>& tok,
                 const std::function<void()>& compute) {
  const auto& unit = kld_unit;
  bool all_logged = log != nullptr;
  for (size_t w = w0; w < w1 && all_logged; ++w) all_logged = log->find(unit(w)) != nullptr;
  if (!all_logged) compute();
  if (!log) return;
  for (size_t w = w0; w < w1; ++w) {
    if (const Json* v = log->find(unit(w)))
      tokens_from_json(*v, tok, offs[w], offs[w + 1]);
    else
      log->put(unit(w), tokens_json(tok, offs[w], offs[w + 1]));
  }
}

std::vector<size_t> window_offsets(const std::vector<Window>& windows) {
  std::vector<size_t> o = {0};
  for (const Window& w : windows) o.push_back(o.back() + size_t(w.predictions()));
  return o;
}

}  // namespace

KldReference build_kld_reference(const LogitSource& p, const std::vector<Window>& windows, int k, int64_t batch,
                                 const std::function<void(int64_t, int64_t)>& on_window) {
  if (windows.empty()) throw ArgError("KLD reference: no windows");
  const int64_t V = p.vocab_size();
  if (k < 1 || k > V) throw ArgError("KLD reference: k must be in [1, vocab size " + std::to_string(V) + "]");
  KldReference r;
  r.meta.ctx = int64_t(windows[0].ids.size());
  r.meta.first_scored = windows[0].first_scored;
  r.meta.k = k;
  r.meta.vocab_size = V;
  r.windows = int64_t(windows.size());
  for (const Window& w : windows) {
    if (int64_t(w.ids.size()) != r.meta.ctx || w.first_scored != r.meta.first_scored)
      throw ArgError("KLD reference: all windows must share ctx and scored range");
    r.tokens.insert(r.tokens.end(), w.ids.begin(), w.ids.end());
  }
  const int64_t N = r.windows * r.per_window();
  r.topk_ids.resize(size_t(N * k));
  r.topk_logprobs.resize(size_t(N * k));
  r.tail_mass.resize(size_t(N));
  r.target_logprob.resize(size_t(N));
  const size_t B = size_t(std::max<int64_t>(1, batch));
  for (size_t w0 = 0; w0 < windows.size(); w0 += B) {
    const size_t w1 = std::min(windows.size(), w0 + B);
    const std::vector<int32_t> targets = targets_of(windows, w0, w1);
    const int64_t base = int64_t(w0) * r.per_window();
    window_logits(p, windows, w0, w1, [&](const float* lg, int64_t n, int64_t off) {
#pragma omp parallel
      {
        std::vector<uint8_t> scratch(static_cast<size_t>(V), 0);
        std::vector<float> vals(static_cast<size_t>(k));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
          const float* row = lg + i * V;
          const int64_t o = base + off + i;
          const double lse = row_logsumexp(row, V);
          int32_t* ids = r.topk_ids.data() + o * k;
          row_topk(row, V, k, ids, vals.data());
          for (int j = 0; j < k; ++j) r.topk_logprobs[size_t(o * k + j)] = float(double(vals[size_t(j)]) - lse);
          r.tail_mass[size_t(o)] = float(row_tail_mass(row, V, lse, ids, k, scratch.data()));
          r.target_logprob[size_t(o)] = float(double(row[targets[size_t(off + i)]]) - lse);
        }
      }
    });
    if (on_window) on_window(int64_t(w1), r.windows);
  }
  return r;
}

KldToken kld_token(const float* q, int64_t vocab, const int32_t* ids, const float* lp, int64_t k, double tail_p,
                   int32_t target, uint8_t* scratch) {
  KldToken t;
  const double lse = row_logsumexp(q, vocab);
  const double tail_q = row_tail_mass(q, vocab, lse, ids, int(k), scratch);
  t.kld = topk_kld(q, lse, ids, lp, k, tail_p, tail_q);
  t.nll_q = lse - double(q[target]);
  t.p_target_q = std::exp(-t.nll_q);
  t.same_top = row_argmax(q, vocab) == ids[0];
  return t;
}

KldStats summarize_kld(const std::vector<KldToken>& tok) {
  const int64_t N = int64_t(tok.size());
  KldStats s;
  s.tokens = N;
  MeanAccumulator kl, same, dp, dnll, nll_p, nll_q;
  std::vector<double> kls(static_cast<size_t>(N)), dps(static_cast<size_t>(N));
  double dp2 = 0;
  for (int64_t o = 0; o < N; ++o) {
    const KldToken& t = tok[size_t(o)];
    const double lp_ref = t.lp_ref_target;
    const double d = 100.0 * (t.p_target_q - std::exp(lp_ref));
    kl.add(t.kld);
    same.add(t.same_top ? 100.0 : 0.0);
    dp.add(d);
    dp2 += d * d;
    dnll.add(t.nll_q + lp_ref);
    nll_p.add(-lp_ref);
    nll_q.add(t.nll_q);
    kls[size_t(o)] = t.kld;
    dps[size_t(o)] = d;
  }
  s.kld_mean = kl.mean();
  s.kld_mean_stderr = kl.stderr_of_mean();
  const auto kq = percentiles(kls, {0.5, 0.9, 0.95, 0.99, 0.999, 1.0});
  s.kld_median = kq[0], s.kld_p90 = kq[1], s.kld_p95 = kq[2], s.kld_p99 = kq[3], s.kld_p999 = kq[4], s.kld_max = kq[5];
  s.same_top_pct = same.mean();
  s.same_top_pct_stderr = same.stderr_of_mean();
  s.dp_mean_pct = dp.mean();
  s.dp_mean_pct_stderr = dp.stderr_of_mean();
  s.dp_rms_pct = N ? std::sqrt(dp2 / double(N)) : 0;
  const auto dq = percentiles(dps, {0.01, 0.05, 0.10, 0.5, 0.90, 0.95, 0.99});
  s.dp_p01_pct = dq[0], s.dp_p05_pct = dq[1], s.dp_p10_pct = dq[2], s.dp_median_pct = dq[3];
  s.dp_p90_pct = dq[4], s.dp_p95_pct = dq[5], s.dp_p99_pct = dq[6];
  s.ppl_ref = std::exp(nll_p.mean());
  s.ppl = std::exp(nll_q.mean());
  s.ln_ppl_ratio = dnll.mean();
  s.ln_ppl_ratio_stderr = dnll.stderr_of_mean();
  s.ppl_ratio = std::exp(s.ln_ppl_ratio);
  s.ppl_ratio_stderr = s.ppl_ratio * s.ln_ppl_ratio_stderr;
  return s;
}

KldStats score_kld(const LogitSource& q, const KldReference& ref, int64_t batch,
                   const std::function<void(int64_t, int64_t, double)>& on_window, ResumeLog* resume) {
  const int64_t V = q.vocab_size(), k = ref.meta.k;
  if (V != ref.meta.vocab_size)
    throw ArgError("KLD reference was made with a vocabulary of " + std::to_string(ref.meta.vocab_size) +
                   " ids; this model has " + std::to_string(V) + ": not the same model family/tokenizer");
  const std::vector<Window> windows = ref.to_windows();
  const std::vector<size_t> offs = window_offsets(windows);
  const int64_t N = ref.predictions();
  std::vector<KldToken> tok(static_cast<size_t>(N));
  const size_t B = size_t(std::max<int64_t>(1, batch));
  MeanAccumulator running;
  for (size_t w0 = 0, w1 = 0; w0 < windows.size(); w0 = w1) {
    w1 = pass_end(w0, windows.size(), B, [&](size_t w) { return logged(resume, w); });
    const std::vector<int32_t> targets = targets_of(windows, w0, w1);
    const int64_t base = int64_t(w0) * ref.per_window();
    with_resume(resume, w0, w1, offs, tok, [&] {
      window_logits(q, windows, w0, w1, [&](const float* lg, int64_t n, int64_t off) {
#pragma omp parallel
        {
          std::vector<uint8_t> scratch(static_cast<size_t>(V), 0);
#pragma omp for schedule(static)
          for (int64_t i = 0; i < n; ++i) {
            const int64_t o = base + off + i;
            tok[size_t(o)] = kld_token(lg + i * V, V, ref.topk_ids.data() + o * k, ref.topk_logprobs.data() + o * k, k,
                                       ref.tail_mass[size_t(o)], targets[size_t(off + i)], scratch.data());
            tok[size_t(o)].lp_ref_target = ref.target_logprob[size_t(o)];
          }
        }
      });
    });
    for (int64_t o = base; o < int64_t(w1) * ref.per_window(); ++o) running.add(tok[size_t(o)].kld);
    if (on_window) on_window(int64_t(w1), ref.windows, running.mean());
  }

  return summarize_kld(tok);
}

KldStats score_kld_exact(const LogitSource& p, const LogitSource& q, const std::vector<Window>& windows, int64_t batch,
                         const std::function<void(int64_t, int64_t, double)>& on_window, ResumeLog* resume) {
  const int64_t V = p.vocab_size();
  if (q.vocab_size() != V)
    throw ArgError("exact KLD: the reference model has " + std::to_string(V) + " ids, the scored one " +
                   std::to_string(q.vocab_size()));
  std::vector<KldToken> tok;
  const std::vector<size_t> offs = window_offsets(windows);
  MeanAccumulator running;
  const size_t B = size_t(std::max<int64_t>(1, batch));
  for (size_t w0 = 0, w1 = 0; w0 < windows.size(); w0 = w1) {
    w1 = pass_end(w0, windows.size(), B, [&](size_t w) { return logged(resume, w); });
    const std::vector<int32_t> targets = targets_of(windows, w0, w1);
    const size_t base = tok.size();
    tok.resize(base + targets.size());
    with_resume(resume, w0, w1, offs, tok, [&] {
      std::vector<float> pl;  // P's rows of this batch: [predictions, V]
      pl.reserve(targets.size() * size_t(V));
      window_logits(p, windows, w0, w1,
                    [&](const float* lg, int64_t n, int64_t) { pl.insert(pl.end(), lg, lg + n * V); });
      window_logits(q, windows, w0, w1, [&](const float* lg, int64_t n, int64_t off) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
          const float* pr = pl.data() + (off + i) * V;
          const float* qr = lg + i * V;
          const int32_t target = targets[size_t(off + i)];
          KldToken& t = tok[base + size_t(off + i)];
          const double lse_p = row_logsumexp(pr, V), lse_q = row_logsumexp(qr, V);
          double kl = 0;
          for (int64_t j = 0; j < V; ++j) {
            const double a = double(pr[j]) - lse_p;
            kl += double(exp_neg(float(a))) * (a - (double(qr[j]) - lse_q));
          }
          t.kld = kl;
          t.nll_q = lse_q - double(qr[target]);
          t.p_target_q = std::exp(-t.nll_q);
          t.same_top = row_argmax(qr, V) == row_argmax(pr, V);
          t.lp_ref_target = double(pr[target]) - lse_p;
        }
      });
    });
    for (size_t o = base; o < tok.size(); ++o) running.add(tok[o].kld);
    if (on_window) on_window(int64_t(w1), int64_t(windows.size()), running.mean());
  }
  return summarize_kld(tok);
}

double kld_exact(const float* p, const float* q, int64_t vocab) {
  const double lp = row_logsumexp_ref(p, vocab), lq = row_logsumexp_ref(q, vocab);
  double kl = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const double a = double(p[i]) - lp;
    kl += std::exp(a) * (a - (double(q[i]) - lq));
  }
  return kl;
}

KldApproxStudy kld_approximation_study(const LogitSource& p, const LogitSource& q, const std::vector<Window>& windows,
                                       const std::vector<int64_t>& ks) {
  const int64_t V = p.vocab_size();
  if (q.vocab_size() != V) throw ArgError("KLD study: the two models have different vocabularies");
  KldApproxStudy st;
  st.rows.resize(ks.size());
  for (size_t j = 0; j < ks.size(); ++j) st.rows[j].k = ks[j];
  MeanAccumulator exact;
  std::vector<MeanAccumulator> approx(ks.size()), tails(ks.size());
  std::vector<uint8_t> scratch(static_cast<size_t>(V), 0);
  for (size_t w = 0; w < windows.size(); ++w) {
    std::vector<float> pl;  // P's scored rows, kept to pair with Q's
    window_logits(p, windows, w, w + 1, [&](const float* lg, int64_t n, int64_t) { pl.insert(pl.end(), lg, lg + n * V); });
    window_logits(q, windows, w, w + 1, [&](const float* lg, int64_t n, int64_t off) {
      for (int64_t i = 0; i < n; ++i) {
        const float* pr = pl.data() + (off + i) * V;
        const float* qr = lg + i * V;
        const double ex = kld_exact(pr, qr, V);
        exact.add(ex);
        const double lse_p = row_logsumexp(pr, V), lse_q = row_logsumexp(qr, V);
        for (size_t j = 0; j < ks.size(); ++j) {
          const int64_t k = std::min(ks[j], V);
          std::vector<int32_t> ids(static_cast<size_t>(k));
          std::vector<float> vals(static_cast<size_t>(k));
          row_topk(pr, V, int(k), ids.data(), vals.data());
          for (float& v : vals) v = float(double(v) - lse_p);
          const double tp = row_tail_mass(pr, V, lse_p, ids.data(), int(k), scratch.data());
          const double tq = row_tail_mass(qr, V, lse_q, ids.data(), int(k), scratch.data());
          const double a = topk_kld(qr, lse_q, ids.data(), vals.data(), k, tp, tq);
          approx[j].add(a);
          tails[j].add(tp);
          st.rows[j].max_abs_token_error = std::max(st.rows[j].max_abs_token_error, std::abs(ex - a));
        }
      }
    });
  }
  st.tokens = exact.count();
  st.kld_exact_mean = exact.mean();
  for (size_t j = 0; j < ks.size(); ++j) {
    st.rows[j].kld_topk_mean = approx[j].mean();
    st.rows[j].mean_tail_mass = tails[j].mean();
  }
  return st;
}

}  // namespace calq::eval
