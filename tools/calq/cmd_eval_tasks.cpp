// calq eval tasks MODEL --tasks arc_challenge,arc_easy,piqa,hellaswag,winogrande,lambada [--limit N]
// Zero-shot scores exactly as lm-evaluation-harness computes them (src/eval/task_eval.h), from the
// task files in ../shared/data/tasks (or --task-dir).
#include <memory>
#include <sstream>

#include "cmd_eval_common.h"
#include "eval/resume.h"
#include "eval/session.h"
#include "eval/task_eval.h"
#include "util/paths.h"
#include "util/progress.h"

namespace calq::cli {
namespace {

using namespace calq::eval;

struct Opts {
  std::string model, tokenizer, tasks, task_dir, out, resume;
  int64_t limit = 0;
  TaskOptions t;
  bool bf16 = false;
};

std::vector<std::string> split_tasks(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(canonical_task_name(item));
  if (out.empty()) throw ArgError("--tasks: no task named");
  return out;
}

int run(const Opts& o) {
  const evalcmd::Stopwatch timer;
  const std::vector<std::string> names = split_tasks(o.tasks);
  const std::string dir = o.task_dir.empty() ? data_root() + "/data/tasks" : o.task_dir;
  std::vector<TaskData> tasks;
  for (const auto& n : names) tasks.push_back(load_task(n, dir, o.limit));  // validate every file first
  EvalSession s = open_session(o.model, o.tokenizer, true, o.bf16 ? ComputeType::BF16 : ComputeType::F32);
  DecoderLogits src(*s.model);
  TaskOptions topt = o.t;
  std::unique_ptr<ResumeLog> log;
  if (!o.resume.empty()) {
    Json files_id = Json::object();
    for (const TaskData& td : tasks) files_id[td.name] = td.file_sha256;
    log = std::make_unique<ResumeLog>(
        o.resume, run_key({{"eval", "tasks"}, {"model", s.info.hash}, {"tokenizer", s.info.tokenizer_sha256},
                           {"files", files_id}, {"add_bos", o.t.add_bos}, {"max_length", o.t.max_length},
                           {"compute", o.bf16 ? "bf16" : "f32"}}));
    if (log->restored()) info("resuming: " + std::to_string(log->restored()) + " documents already in " + o.resume);
    topt.resume = log.get();
  }
  Json metrics = Json::object(), files = Json::object(), details = Json::object();
  std::string summary;
  for (const TaskData& td : tasks) {
    Progress bar(td.name, int64_t(td.docs.size()), "doc");
    const TaskResult r = evaluate_task(src, *s.tokenizer, td, topt, [&](int64_t done, int64_t) { bar.update(done); });
    bar.finish();
    metrics[td.name + ".acc"] = r.acc;
    metrics[td.name + ".acc_stderr"] = r.acc_stderr;
    std::string line = td.name + ": acc " + evalcmd::fmt("%.4f", r.acc) + " ± " + evalcmd::fmt("%.4f", r.acc_stderr);
    if (td.kind == TaskKind::MultipleChoice) {
      metrics[td.name + ".acc_norm"] = r.acc_norm;
      metrics[td.name + ".acc_norm_stderr"] = r.acc_norm_stderr;
      line += ", acc_norm " + evalcmd::fmt("%.4f", r.acc_norm) + " ± " + evalcmd::fmt("%.4f", r.acc_norm_stderr);
    }
    if (td.kind == TaskKind::LastWord) {
      metrics[td.name + ".ppl"] = r.ppl;
      metrics[td.name + ".ppl_stderr"] = r.ppl_stderr;
      line += ", ppl " + evalcmd::fmt("%.4f", r.ppl) + " ± " + evalcmd::fmt("%.4f", r.ppl_stderr);
    }
    metrics[td.name + ".samples"] = r.samples;
    line += "  (" + std::to_string(r.samples) + " samples)";
    evalcmd::print_line(line);
    files[td.name] = {{"path", td.file}, {"sha256", td.file_sha256}};
    Json lls = Json::array();
    for (const auto& doc : r.per_doc) {
      Json d = Json::array();
      for (const auto& c : doc) d.push_back(c.logprob);
      lls.push_back(d);
    }
    details[td.name] = {{"loglikelihoods", lls}};
    summary += (summary.empty() ? "" : "  ") + td.name + " " +
               evalcmd::fmt("%.4f", td.kind == TaskKind::MultipleChoice && (td.name == "hellaswag" || td.name == "arc_challenge")
                                        ? r.acc_norm
                                        : r.acc);
  }
  const double el = timer.seconds();
  std::printf("tasks: %s  (acc_norm for hellaswag/arc_challenge, acc otherwise; %s) %.1f s\n", summary.c_str(),
              o.limit > 0 ? ("limit " + std::to_string(o.limit)).c_str() : "all samples", el);
  if (!o.out.empty()) {
    const Json settings = {{"tasks", names},
                           {"limit", o.limit},
                           {"add_bos", o.t.add_bos},
                           {"batch_size", o.t.batch_size},
                           {"max_length", o.t.max_length > 0 ? o.t.max_length : src.max_length()},
                           {"num_fewshot", 0},
                           {"compute", o.bf16 ? "bf16" : "f32"}};
    write_results(o.out, make_results("tasks", s.info, files, settings, metrics, el, details));
    info("wrote " + o.out);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"eval", "tasks"}, "Zero-shot multiple-choice tasks scored as lm-evaluation-harness does",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->model, "model folder (float, GPTQ, AWQ) or GGUF file")->required();
                         app.add_option("--tasks", o->tasks,
                                        "comma-separated: arc_challenge,arc_easy,piqa,hellaswag,winogrande,lambada")
                             ->required();
                         app.add_option("--limit", o->limit, "first N documents of each task (0 = all)")
                             ->check(CLI::NonNegativeNumber);
                         app.add_option("--task-dir", o->task_dir, "task files (default: <data>/data/tasks)");
                         app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or folder (default: the model's)");
                         app.add_option("--batch-size", o->t.batch_size, "sequences per forward pass")
                             ->check(CLI::PositiveNumber);
                         app.add_option("--max-length", o->t.max_length,
                                        "left-truncate inputs to this many tokens (default: max_position_embeddings)")
                             ->check(CLI::NonNegativeNumber);
                         app.add_flag("--add-bos", o->t.add_bos,
                                      "encode with special tokens (BOS); the harness default for causal models is off");
                         app.add_option("-o,--out", o->out, "results JSON");
                         app.add_option("--resume", o->resume,
                                        "log finished documents to this file and skip those it already holds");
                         app.add_flag("--bf16", o->bf16, "bf16 weights/activations (f32 accumulation)");
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
