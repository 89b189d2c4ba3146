// calq eval tasks MODEL --tasks arc_challenge,arc_easy,piqa,hellaswag,winogrande,lambada [--limit N]
// Zero-shot scores exactly as lm-evaluation-harness computes them (src/eval/task_eval.h), from the
// task files in ../shared/data/tasks (or --task-dir).
#include <algorithm>
#include <map>
#include <memory>
#include <sstream>

#include "cmd_eval_common.h"
#include "interrupt.h"
#include "data_root.h"
#include "eval/results.h"
#include "io/mapped_file.h"
#include "progress_bar.h"
#include "suggest.h"

namespace calq::cli {
namespace {

using namespace calq::eval;

struct Opts {
  std::string tasks, out;
  TasksJob job;
};

std::vector<std::string> split_tasks(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  if (out.empty()) throw UsageError("--tasks: no task named");
  std::vector<std::string> known = known_tasks();
  known.push_back("lambada_openai");
  for (const auto& t : out)
    if (std::find(known.begin(), known.end(), t) == known.end())
      throw UsageError("--tasks: unknown task '" + t + "'" + did_you_mean(t, known) + "; known: arc_challenge, "
                       "arc_easy, piqa, hellaswag, winogrande, lambada");
  return out;
}

// One bar per task (the events name the task in their note).
ProgressFn task_bars() {
  auto bars = std::make_shared<std::map<std::string, ProgressFn>>();
  return [bars](const ProgressEvent& e) {
    auto it = bars->find(e.note);
    if (it == bars->end()) it = bars->emplace(e.note, bar(e.note)).first;
    it->second(e);
  };
}

int run(Opts& o) {
  TasksJob& job = o.job;
  job.tasks = split_tasks(o.tasks);
  const bool default_dir = job.task_dir.empty();
  if (default_dir) job.task_dir = data_root() + "/data/tasks";
  job.hooks = {info, task_bars(), threads()};
  set_resume_hint(job.resume.empty() ? "nothing kept (--resume FILE keeps finished documents for a rerun)"
                                     : "finished documents are in " + job.resume + "; rerun the same command to resume");
  std::string summary;
  job.on_task = [&summary](const TaskData& td, const TaskResult& r) {
    std::string line = td.name + ": acc " + evalcmd::fmt("%.4f", r.acc) + " ± " + evalcmd::fmt("%.4f", r.acc_stderr);
    if (td.kind == TaskKind::MultipleChoice)
      line += ", acc_norm " + evalcmd::fmt("%.4f", r.acc_norm) + " ± " + evalcmd::fmt("%.4f", r.acc_norm_stderr);
    if (td.kind == TaskKind::LastWord)
      line += ", ppl " + evalcmd::fmt("%.4f", r.ppl) + " ± " + evalcmd::fmt("%.4f", r.ppl_stderr);
    line += "  (" + std::to_string(r.samples) + " samples)";
    evalcmd::print_line(line);
    const bool norm = td.kind == TaskKind::MultipleChoice && (td.name == "hellaswag" || td.name == "arc_challenge");
    summary += (summary.empty() ? "" : "  ") + td.name + " " + evalcmd::fmt("%.4f", norm ? r.acc_norm : r.acc);
  };
  if (!o.out.empty()) check_output_target(o.out);  // before the run, not after it
  const TasksRun r = [&] {
    try {
      return run_tasks(job);
    } catch (const IoError& e) {  // a task file missing: say which data pack was searched
      if (!default_dir) throw;
      throw IoError(std::string(e.what()) + "; " + data_root_origin());
    }
  }();
  std::printf("tasks: %s  (acc_norm for hellaswag/arc_challenge, acc otherwise; %s) %.1f s\n", summary.c_str(),
              job.limit > 0 ? ("limit " + std::to_string(job.limit)).c_str() : "all samples", r.seconds);
  if (!o.out.empty()) {
    write_results(o.out, r.results_file);
    info("wrote " + o.out);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"eval", "tasks"}, "Zero-shot multiple-choice tasks scored as lm-evaluation-harness does",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->job.model, "model folder (float, GPTQ, AWQ) or GGUF file")->required();
                         app.add_option("--tasks", o->tasks,
                                        "comma-separated: arc_challenge,arc_easy,piqa,hellaswag,winogrande,lambada")
                             ->required();
                         app.add_option("--limit", o->job.limit, "first N documents of each task (0 = all)")
                             ->check(CLI::NonNegativeNumber);
                         app.add_option("--task-dir", o->job.task_dir, "task files (default: <data>/data/tasks)");
                         app.add_option("--tokenizer", o->job.tokenizer, "tokenizer.json or folder (default: the model's)");
                         app.add_option("--batch-size", o->job.options.batch_size, "sequences per forward pass")
                             ->check(CLI::PositiveNumber);
                         app.add_option("--max-length", o->job.options.max_length,
                                        "left-truncate inputs to this many tokens (default: max_position_embeddings)")
                             ->check(CLI::NonNegativeNumber);
                         app.add_flag("--add-bos", o->job.options.add_bos,
                                      "encode with special tokens (BOS); the harness default for causal models is off");
                         app.add_option("-o,--out", o->out, "results JSON");
                         app.add_option("--resume", o->job.resume,
                                        "log finished documents to this file and skip those it already holds");
                         app.add_flag("--bf16", o->job.bf16, "bf16 weights/activations (f32 accumulation)");
                         app.add_flag("--int8-acts", o->job.int8_acts,
                                      "int8 activations in blocks of 32: llama.cpp's arithmetic for GGUF Q4/Q8 weights");
                         evalcmd::add_kv_options(app, o->job.kv);
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
