// The evaluation jobs behind `calq eval ppl | kld-ref | kld | tasks`, as library calls: open the
// model (any format load_model() reads) and its tokenizer, check identities, cut the text into
// windows, score, and assemble the results file (eval/results.h). The command line only parses its
// options into these structs, prints the per-window lines and draws progress bars from the
// callbacks; tests call the jobs directly.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/kld.h"
#include "eval/ppl.h"
#include "eval/task_eval.h"
#include "kernels/kv_quant.h"
#include "tensor/dtype.h"
#include "util/json.h"
#include "util/progress.h"

namespace calq::eval {

// Which text is scored and how it is cut (the --data, --text-mode, --field, --protocol, --ctx,
// --chunks and --batch options).
struct WindowSpec {
  std::string data;                // evaluation text file
  std::string text_mode = "auto";  // eval/text_data.h
  std::string field = "text";      // jsonl field
  std::string protocol = "gptq";   // eval/windows.h
  int64_t ctx = 0;                 // window length; 0: window_length()'s default
  int64_t chunks = 0;              // score only the first N windows (0: all)
  int64_t batch = 0;               // windows per forward pass (0: windows_per_pass()'s default)
  bool allow_long_ctx = false;     // accept a ctx beyond the model's max_position_embeddings
};

// The default window policy: `ctx` when positive, else GPTQ's fixed seqlen 2048, capped at the
// model's context (max_position_embeddings) when that is smaller. A ctx beyond the model's context
// is refused (ArgError) unless `allow_long`: positions the model was never trained on make the
// numbers meaningless without any error (stories260K: ppl 175 at 2048 against 4.1 at 512).
int64_t window_length(int64_t ctx, int64_t max_position, bool allow_long = false);

// Windows run as one forward pass: `batch` when positive, else as many windows as fill 2048
// positions (at least one), as llama-perplexity does (n_batch 2048 = n_ctx · n_seq). Several short
// windows per pass make larger GEMMs and fewer parallel regions per token; the results do not
// depend on it (every row of a pass is computed as in a pass of its own; eval/ppl.h).
int64_t windows_per_pass(int64_t batch, int64_t ctx);

// What every job shares: where to report, how many threads.
struct JobHooks {
  std::function<void(const std::string&)> log;  // info lines ("resuming: 2 windows already in ...")
  ProgressFn progress;                          // tokens (ppl, kld) or documents (tasks)
  int threads = 0;                              // kernels/threads.h
};

// ---- perplexity -------------------------------------------------------------------------------
struct PplJob {
  std::string model, tokenizer, resume;  // tokenizer "": the model's; resume "": no resume log
  WindowSpec w;
  bool bf16 = false;
  bool int8_acts = false;  // QActs::Int8 (--int8-acts): llama.cpp's arithmetic for GGUF Q4/Q8 weights
  KvQuant kv;  // simulated KV-cache quantization (--kv-bits ...; off by default)
  JobHooks hooks;
  std::function<void(const PplProgress&)> on_window;
};
struct PplRun {
  PplResult result;
  int64_t stream_tokens = 0, ctx = 0;
  std::string protocol, text_mode;
  double seconds = 0, scoring_seconds = 0, tokens_per_s = 0;
  // Opening the model (packing included); reading and tokenizing the text, which runs alongside.
  double load_seconds = 0, tokenize_seconds = 0;
  Json results;  // the results file, "ppl"
};
PplRun run_ppl(const PplJob& job);

// ---- KL divergence ----------------------------------------------------------------------------
struct KldRefJob {
  std::string model, tokenizer, out;
  WindowSpec w;
  int k = 32;                        // log-probabilities kept per token
  DType logprob_dtype = DType::F32;  // F32 or F16
  JobHooks hooks;
};
struct KldRefRun {
  int64_t predictions = 0;
  uint64_t bytes = 0, llamacpp_bytes = 0;  // the file, and llama.cpp's full-vocabulary equivalent
  double seconds = 0;
};
// Runs the reference model once and writes its compact top-k reference to job.out.
KldRefRun run_kld_reference(const KldRefJob& job);

struct KldJob {
  std::string model, tokenizer, resume;
  std::string ref;        // a reference file from run_kld_reference, or
  std::string ref_model;  // exact mode: this model runs beside `model`, full-vocabulary KL
  WindowSpec w;           // exact mode: the text; with `ref`: optional data checked against it
  bool bf16 = false;
  bool int8_acts = false;  // QActs::Int8 (--int8-acts) for the scored model; the exact-mode reference stays float
  KvQuant kv;             // of the scored model (the reference is what it is)
  JobHooks hooks;
  std::function<void(int64_t done, int64_t total, double running_kld)> on_window;
};
struct KldRun {
  KldStats stats;
  int64_t topk = 0;  // 0: exact mode
  double seconds = 0;
  Json results;      // the results file, "kld"
};
// Checks that the reference belongs to the model (architecture, tokenizer, data), then scores.
KldRun run_kld(const KldJob& job);
// The metrics block of a KLD results file (every field of KldStats).
Json kld_metrics(const KldStats& k);

// ---- zero-shot tasks --------------------------------------------------------------------------
struct TasksJob {
  std::string model, tokenizer, resume;
  std::vector<std::string> tasks;  // names (aliases allowed)
  std::string task_dir;            // the folder holding the task files
  int64_t limit = 0;               // first N documents of each task (0: all)
  TaskOptions options;
  bool bf16 = false;
  bool int8_acts = false;  // QActs::Int8 (--int8-acts): llama.cpp's arithmetic for GGUF Q4/Q8 weights
  KvQuant kv;
  JobHooks hooks;  // progress: one run per task (the note names it)
  std::function<void(const TaskData&, const TaskResult&)> on_task;
};
struct TasksRun {
  std::vector<TaskResult> results;
  double seconds = 0;
  Json results_file;  // "tasks"
};
TasksRun run_tasks(const TasksJob& job);

// What results files and resume keys record of a KV-cache setting: {"bits", "group", "sym"}, or
// null when off (then nothing is added, and files are as before the option existed).
Json kv_quant_json(const KvQuant& kv);

}  // namespace calq::eval
