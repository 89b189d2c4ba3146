// Zero-shot task scoring as lm-evaluation-harness does it (api/task.py process_results):
//   acc      = [argmax_i Σ log p(continuation_i) == gold]     (np.argmax: first maximum)
//   acc_norm = [argmax_i Σ log p(continuation_i) / len_i == gold], len_i = characters of choice i
//   LAMBADA  acc = greedy decoding reproduces every continuation token;
//            ppl = exp(-mean over documents of Σ log p(continuation))  (harness `perplexity`)
//   stderr   = sample standard deviation / sqrt(n) (harness mean_stderr); for ppl the delta
//              method, ppl * stderr(per-document NLL).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/logit_source.h"
#include "eval/loglik.h"
#include "eval/task_data.h"

namespace calq {
class Tokenizer;
}

namespace calq::eval {

class ResumeLog;

struct TaskOptions {
  bool add_bos = false;     // harness default for causal HF models: no special tokens
  int64_t batch_size = 8;   // sequences per forward pass; a document's choices always share one
  int64_t max_length = 0;   // left-truncation length; 0 = the model's max_position_embeddings
  ResumeLog* resume = nullptr;  // finished documents are logged / reused (eval/resume.h)
  int threads = 0;              // worker threads (kernels/threads.h; 0: the caller's)
};

struct TaskResult {
  std::string name;
  TaskKind kind = TaskKind::MultipleChoice;
  int64_t samples = 0;
  double acc = 0, acc_stderr = 0;
  double acc_norm = 0, acc_norm_stderr = 0;  // MultipleChoice only
  double ppl = 0, ppl_stderr = 0;            // LastWord only
  std::vector<std::vector<LoglikResult>> per_doc;  // per document, per choice
};

// Metrics from the per-document results (no model: the hand-checkable part).
TaskResult score_task(const TaskData& td, std::vector<std::vector<LoglikResult>> per_doc);

// Encodes, batches and scores every document of `td`; on_docs(done, total) after each batch.
TaskResult evaluate_task(const LogitSource& model, const Tokenizer& tok, const TaskData& td, const TaskOptions& opt = {},
                         const std::function<void(int64_t, int64_t)>& on_docs = {});

// The scoring half of evaluate_task on already-encoded documents (tests use it without a tokenizer).
TaskResult evaluate_encoded(const LogitSource& model, const TaskData& td, const std::vector<std::vector<TokenPair>>& enc,
                            const TaskOptions& opt, const std::function<void(int64_t, int64_t)>& on_docs = {});

}  // namespace calq::eval
