#include "eval/jobs.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "eval/resume.h"
#include "eval/session.h"
#include "eval/text_data.h"
#include "kernels/threads.h"
#include "util/error.h"

namespace calq::eval {

namespace {

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

void log(const JobHooks& h, const std::string& line) {
  if (h.log) h.log(line);
}

}  // namespace

Json kv_quant_json(const KvQuant& kv) {
  if (!kv.enabled()) return nullptr;
  return {{"bits", kv.bits}, {"group", kv.group}, {"sym", kv.sym}};
}

namespace {
// The KV-cache setting joins a results file's settings and a resume key only when it is on.
void add_kv(Json& j, const KvQuant& kv) {
  if (kv.enabled()) j["kv_cache"] = kv_quant_json(kv);
}
}  // namespace

int64_t window_length(int64_t ctx, int64_t max_position, bool allow_long) {
  if (ctx <= 0) return max_position > 0 ? std::min<int64_t>(2048, max_position) : 2048;
  if (max_position > 0 && ctx > max_position && !allow_long)
    throw ArgError("--ctx " + std::to_string(ctx) + " is longer than the model's context (" + std::to_string(max_position) +
                   " positions, max_position_embeddings): positions it was never trained on give meaningless numbers "
                   "without any error; use --ctx " + std::to_string(max_position) +
                   " or less, or --allow-long-ctx to measure it anyway");
  return ctx;
}

int64_t windows_per_pass(int64_t batch, int64_t ctx) {
  if (batch > 0) return batch;
  return std::max<int64_t>(1, 2048 / std::max<int64_t>(1, ctx));
}

// ---- perplexity -------------------------------------------------------------------------------

PplRun run_ppl(const PplJob& job) {
  const ThreadScope threads(job.hooks.threads);
  const TextMode mode = parse_text_mode(job.w.text_mode);
  const Protocol proto = parse_protocol(job.w.protocol);
  const Stopwatch timer;
  // The text is read and tokenized (single-threaded) while the model loads and packs.
  EvalText text;
  std::vector<int32_t> stream;
  double tokenize_s = 0;
  EvalSession s = open_session(job.model, job.tokenizer, true, job.bf16 ? ComputeType::BF16 : ComputeType::F32,
                               job.int8_acts ? QActs::Int8 : QActs::Float, [&](const Tokenizer& tok) {
                                 const Stopwatch t;
                                 text = load_eval_text(job.w.data, mode, job.w.field);
                                 stream = token_stream(tok, text.text);
                                 tokenize_s = t.seconds();
                               });
  const double load_s = timer.seconds();
  if (const std::string n = compute_type_note(s, job.bf16 ? ComputeType::BF16 : ComputeType::F32); !n.empty())
    log(job.hooks, n);
  PplRun run;
  run.load_seconds = load_s;
  run.ctx = window_length(job.w.ctx, s.model->config().max_position, job.w.allow_long_ctx);
  run.tokenize_seconds = tokenize_s;
  run.stream_tokens = int64_t(stream.size());
  run.protocol = protocol_name(proto);
  run.text_mode = text_mode_name(text.mode);
  const auto windows = make_windows(stream, run.ctx, proto, s.tokenizer->bos_id(), job.w.chunks);
  log(job.hooks, "ppl: " + std::to_string(stream.size()) + " tokens, " + std::to_string(windows.size()) +
                     " windows of " + std::to_string(run.ctx) + " (" + run.protocol + ", text mode " + run.text_mode + ")");

  job.kv.validate(int(s.model->config().head_dim));
  DecoderLogits src(*s.model);
  src.set_kv_quant(job.kv);
  const Stopwatch scoring;
  PplOptions po;
  po.batch = windows_per_pass(job.w.batch, run.ctx);
  std::unique_ptr<ResumeLog> resume;
  if (!job.resume.empty()) {
    Json key = {{"eval", "ppl"}, {"model", s.info.hash}, {"tokenizer", s.info.tokenizer_sha256},
                {"data", text.file_sha256}, {"text_mode", run.text_mode}, {"field", job.w.field},
                {"protocol", run.protocol}, {"ctx", run.ctx}, {"compute", job.bf16 ? "bf16" : "f32"}};
    if (job.int8_acts) key["activations"] = "int8";  // absent: float (keys of earlier runs unchanged)
    add_kv(key, job.kv);
    resume = std::make_unique<ResumeLog>(job.resume, run_key(key));
    if (resume->restored())
      log(job.hooks, "resuming: " + std::to_string(resume->restored()) + " windows already in " + job.resume);
    po.resume = resume.get();
  }
  const int64_t total = int64_t(windows.size()) * run.ctx;
  run.result = perplexity(src, windows, po, [&](const PplProgress& p) {
    if (job.on_window) job.on_window(p);
    report_progress(job.hooks.progress, p.tokens_done, total, "tok");
  });
  report_progress(job.hooks.progress, total, total, "tok", "", true);
  const PplResult& r = run.result;
  run.scoring_seconds = scoring.seconds();
  run.seconds = timer.seconds();
  run.tokens_per_s = double(r.windows * run.ctx) / std::max(run.scoring_seconds, 1e-9);

  const Json data = {{"path", job.w.data}, {"sha256", text.file_sha256}, {"text_mode", run.text_mode},
                     {"documents", text.documents}, {"stream_tokens", stream.size()}};
  Json settings = {{"protocol", run.protocol},          {"ctx", run.ctx},
                   {"chunks", job.w.chunks},            {"windows", r.windows},
                   {"batch", po.batch},                 {"compute", job.bf16 ? "bf16" : "f32"},
                   {"bos_id", s.tokenizer->bos_id()},   {"jsonl_field", job.w.field}};
  if (job.int8_acts) settings["activations"] = "int8";
  add_kv(settings, job.kv);
  const Json metrics = {{"ppl", r.ppl}, {"ppl_stderr", r.ppl_stderr}, {"nll_mean", r.nll_mean},
                        {"nll_sum", r.nll_sum}, {"tokens", r.predictions}};
  run.results = make_results("ppl", s.info, data, settings, metrics, run.seconds,
                             {{"window_nll_sum", r.window_nll_sum}, {"load_s", run.load_seconds},
                              {"tokenize_s", run.tokenize_seconds}, {"scoring_s", run.scoring_seconds},
                              {"tokens_per_s", run.tokens_per_s}});
  return run;
}

// ---- zero-shot tasks --------------------------------------------------------------------------

TasksRun run_tasks(const TasksJob& job) {
  const ThreadScope threads(job.hooks.threads);
  const Stopwatch timer;
  if (job.tasks.empty()) throw ArgError("tasks: no task named");
  std::vector<std::string> names;
  for (const auto& t : job.tasks) names.push_back(canonical_task_name(t));
  std::vector<TaskData> tasks;
  for (const auto& n : names) tasks.push_back(load_task(n, job.task_dir, job.limit));  // validate every file first
  EvalSession s = open_session(job.model, job.tokenizer, true, job.bf16 ? ComputeType::BF16 : ComputeType::F32,
                               job.int8_acts ? QActs::Int8 : QActs::Float);
  if (const std::string n = compute_type_note(s, job.bf16 ? ComputeType::BF16 : ComputeType::F32); !n.empty())
    log(job.hooks, n);
  job.kv.validate(int(s.model->config().head_dim));
  DecoderLogits src(*s.model);
  src.set_kv_quant(job.kv);
  TaskOptions topt = job.options;
  std::unique_ptr<ResumeLog> resume;
  if (!job.resume.empty()) {
    Json files_id = Json::object();
    for (const TaskData& td : tasks) files_id[td.name] = td.file_sha256;
    Json key = {{"eval", "tasks"}, {"model", s.info.hash}, {"tokenizer", s.info.tokenizer_sha256},
                {"files", files_id}, {"add_bos", topt.add_bos}, {"max_length", topt.max_length},
                {"compute", job.bf16 ? "bf16" : "f32"}};
    if (job.int8_acts) key["activations"] = "int8";  // absent: float (keys of earlier runs unchanged)
    add_kv(key, job.kv);
    resume = std::make_unique<ResumeLog>(job.resume, run_key(key));
    if (resume->restored())
      log(job.hooks, "resuming: " + std::to_string(resume->restored()) + " documents already in " + job.resume);
    topt.resume = resume.get();
  }
  TasksRun run;
  Json metrics = Json::object(), files = Json::object(), details = Json::object();
  for (const TaskData& td : tasks) {
    const int64_t n = int64_t(td.docs.size());
    TaskResult r = evaluate_task(src, *s.tokenizer, td, topt,
                                 [&](int64_t done, int64_t) { report_progress(job.hooks.progress, done, n, "doc", td.name); });
    report_progress(job.hooks.progress, n, n, "doc", td.name, true);
    metrics[td.name + ".acc"] = r.acc;
    metrics[td.name + ".acc_stderr"] = r.acc_stderr;
    if (td.kind == TaskKind::MultipleChoice) {
      metrics[td.name + ".acc_norm"] = r.acc_norm;
      metrics[td.name + ".acc_norm_stderr"] = r.acc_norm_stderr;
    }
    if (td.kind == TaskKind::LastWord) {
      metrics[td.name + ".ppl"] = r.ppl;
      metrics[td.name + ".ppl_stderr"] = r.ppl_stderr;
    }
    metrics[td.name + ".samples"] = r.samples;
    files[td.name] = {{"path", td.file}, {"sha256", td.file_sha256}};
    Json lls = Json::array();
    for (const auto& doc : r.per_doc) {
      Json d = Json::array();
      for (const auto& c : doc) d.push_back(c.logprob);
      lls.push_back(d);
    }
    details[td.name] = {{"loglikelihoods", lls}};
    if (job.on_task) job.on_task(td, r);
    run.results.push_back(std::move(r));
  }
  run.seconds = timer.seconds();
  Json settings = {{"tasks", names},
                   {"limit", job.limit},
                   {"add_bos", topt.add_bos},
                   {"batch_size", topt.batch_size},
                   {"max_length", topt.max_length > 0 ? topt.max_length : src.max_length()},
                   {"num_fewshot", 0},
                   {"compute", job.bf16 ? "bf16" : "f32"}};
  if (job.int8_acts) settings["activations"] = "int8";
  add_kv(settings, job.kv);
  run.results_file = make_results("tasks", s.info, files, settings, metrics, run.seconds, details);
  return run;
}

}  // namespace calq::eval
