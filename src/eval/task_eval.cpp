#include "eval/task_eval.h"

#include <cmath>
#include <limits>

#include "eval/resume.h"
#include "eval/stats.h"
#include "kernels/threads.h"
#include "util/error.h"

namespace calq::eval {

namespace {

int first_argmax(const std::vector<double>& v) {
  int best = 0;
  for (int i = 1; i < int(v.size()); ++i)
    if (v[size_t(i)] > v[size_t(best)]) best = i;
  return best;
}

}  // namespace

TaskResult score_task(const TaskData& td, std::vector<std::vector<LoglikResult>> per_doc) {
  if (per_doc.size() != td.docs.size()) throw ArgError("score_task: one result list per document expected");
  TaskResult r;
  r.name = td.name;
  r.kind = td.kind;
  r.samples = int64_t(td.docs.size());
  MeanAccumulator acc, acc_norm, nll;
  for (size_t d = 0; d < td.docs.size(); ++d) {
    const TaskDoc& doc = td.docs[d];
    const auto& res = per_doc[d];
    if (res.size() != doc.choices.size()) throw ArgError("score_task: one result per choice expected");
    if (td.kind == TaskKind::LastWord) {
      acc.add(res[0].greedy ? 1.0 : 0.0);
      nll.add(-res[0].logprob);
      continue;
    }
    std::vector<double> ll, lln;
    for (size_t c = 0; c < res.size(); ++c) {
      ll.push_back(res[c].logprob);
      const double len = doc.choices[c].norm_length;
      lln.push_back(len > 0 ? res[c].logprob / len : -std::numeric_limits<double>::infinity());
    }
    acc.add(first_argmax(ll) == doc.gold ? 1.0 : 0.0);
    acc_norm.add(first_argmax(lln) == doc.gold ? 1.0 : 0.0);
  }
  r.acc = acc.mean();
  r.acc_stderr = acc.stderr_of_mean();
  if (td.kind == TaskKind::MultipleChoice) {
    r.acc_norm = acc_norm.mean();
    r.acc_norm_stderr = acc_norm.stderr_of_mean();
  }
  if (td.kind == TaskKind::LastWord) {
    const PerplexityEstimate e = perplexity_of(nll);
    r.ppl = e.ppl;
    r.ppl_stderr = e.ppl_stderr;
  }
  r.per_doc = std::move(per_doc);
  return r;
}

TaskResult evaluate_encoded(const LogitSource& model, const TaskData& td, const std::vector<std::vector<TokenPair>>& enc,
                            const TaskOptions& opt, const std::function<void(int64_t, int64_t)>& on_docs) {
  if (enc.size() != td.docs.size()) throw ArgError("evaluate_encoded: one encoding per document expected");
  const int64_t max_len = opt.max_length > 0 ? opt.max_length : model.max_length();
  const size_t cap = size_t(std::max<int64_t>(1, opt.batch_size));
  std::vector<std::vector<LoglikResult>> per_doc(td.docs.size());
  size_t d0 = 0;
  while (d0 < td.docs.size()) {
    // Whole documents, in file order, while they fit in `cap` sequences (at least one document).
    size_t d1 = d0 + 1, n = enc[d0].size();
    while (d1 < td.docs.size() && n + enc[d1].size() <= cap) n += enc[d1++].size();
    auto unit = [&](size_t d) { return td.name + "/" + std::to_string(d); };
    bool all_logged = opt.resume != nullptr;
    for (size_t d = d0; d < d1 && all_logged; ++d) all_logged = opt.resume->find(unit(d)) != nullptr;
    std::vector<LoglikResult> res;
    if (!all_logged) {
      std::vector<TokenPair> batch;
      for (size_t d = d0; d < d1; ++d) batch.insert(batch.end(), enc[d].begin(), enc[d].end());
      res = loglikelihood_batch(model, batch, max_len);
    }
    size_t k = 0;
    for (size_t d = d0; d < d1; ++d) {
      const Json* v = opt.resume ? opt.resume->find(unit(d)) : nullptr;
      if (v && v->size() != enc[d].size()) throw ArgError("resume log: " + unit(d) + " does not match the task file");
      Json logged = Json::array();
      for (size_t c = 0; c < enc[d].size(); ++c, ++k) {
        LoglikResult r;
        if (v) {
          r.logprob = (*v)[c].at(0).get<double>();
          r.greedy = (*v)[c].at(1).get<bool>();
          r.tokens = json_int<ArgError>((*v)[c].at(2), "tokens", "resume log: " + unit(d), 0, INT64_MAX);
        } else {
          r = res[k];
          logged.push_back(Json::array({r.logprob, r.greedy, r.tokens}));
        }
        per_doc[d].push_back(r);
      }
      if (!v && opt.resume) opt.resume->put(unit(d), logged);
    }
    d0 = d1;
    if (on_docs) on_docs(int64_t(d0), int64_t(td.docs.size()));
  }
  return score_task(td, std::move(per_doc));
}

TaskResult evaluate_task(const LogitSource& model, const Tokenizer& tok, const TaskData& td, const TaskOptions& opt,
                         const std::function<void(int64_t, int64_t)>& on_docs) {
  const ThreadScope threads(opt.threads);
  std::vector<std::vector<TokenPair>> enc(td.docs.size());
  for (size_t d = 0; d < td.docs.size(); ++d) {
    for (const TaskChoice& c : td.docs[d].choices) {
      try {
        enc[d].push_back(encode_pair(tok, c.context, c.continuation, opt.add_bos));
      } catch (const ArgError& e) {
        throw ArgError(td.file + ":" + std::to_string(td.docs[d].line) + ": " + e.what());
      }
    }
  }
  return evaluate_encoded(model, td, enc, opt, on_docs);
}

}  // namespace calq::eval
