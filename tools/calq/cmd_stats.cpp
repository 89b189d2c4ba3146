// calq stats MODEL --calib SET -o STATS.safetensors [--batch B] [--range A:B] [--resume] ...
// calq stats merge A.safetensors B.safetensors [...] -o C.safetensors
// Collects per-channel activation statistics of every linear input and residual stream
// (src/observe/act_stats.h), writes them (+ a JSON summary STATS.json) and prints a summary table.
// Long runs checkpoint into the output file; --resume continues from it.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "analysis/summary.h"
#include "calib/calib_set.h"
#include "cmd_stats_common.h"
#include "command.h"
#include "interrupt.h"
#include "formats/loader.h"
#include "io/file_lock.h"
#include "io/mapped_file.h"
#include "observe/stats_runner.h"
#include "progress_bar.h"

namespace calq::cli {
namespace {

struct StatsOpts {
  std::string model, calib, out, range;
  StatsRunOptions run;
  bool resume = false, allow_tok = false, quiet = false;
  double t0 = 6.0, t1 = 20.0;
  std::vector<std::string> merge_in;
  std::string merge_out;
};

void parse_range(const std::string& r, int64_t* b, int64_t* e) {
  const size_t c = r.find(':');
  try {
    if (c == std::string::npos) throw std::invalid_argument(r);
    *b = c == 0 ? 0 : std::stoll(r.substr(0, c));
    *e = c + 1 == r.size() ? -1 : std::stoll(r.substr(c + 1));
  } catch (const std::logic_error&) {
    throw UsageError("--range '" + r + "': expected START:END sample indices (END may be empty)");
  }
}

void finish(const ActStats& s, const std::string& out, bool quiet) {
  save_stats(s, out);
  write_json_atomic(sidecar_json(out), stats_summary_json(s), 2);
  if (!quiet) std::printf("%s", format_stats_summary(s).c_str());
  info("wrote " + out + " (" + std::to_string(s.tensors.size()) + " tensors, " +
       std::to_string(s.meta.value("samples", int64_t(0))) + " samples, " +
       std::to_string(int64_t(s.meta.value("tokens", 0.0))) + " tokens) and " + sidecar_json(out));
}

int run_stats(StatsOpts& o) {
  if (o.model.empty() || o.calib.empty() || o.out.empty())
    throw UsageError("usage: calq stats MODEL --calib SET -o STATS (or: calq stats merge A B -o C)");
  o.run.collect.thresholds[0] = o.t0;
  o.run.collect.thresholds[1] = o.t1;
  o.run.check_tokenizer = !o.allow_tok;
  o.run.progress = bar("stats");
  o.run.threads = threads();
  if (!o.range.empty()) parse_range(o.range, &o.run.begin, &o.run.end);
  // Refused up front rather than after the run: an output path that is a device, and a second run
  // checkpointing into the same file (which would interleave with this one's checkpoints).
  check_output_target(o.out);
  const FileLock lock(o.out);
  const CalibSet set = load_calib_set(o.calib);
  auto model = load_model(o.model);
  std::unique_ptr<ActStats> resume;
  if (o.resume && std::filesystem::exists(o.out)) {
    resume = std::make_unique<ActStats>(load_stats(o.out));
    info("resuming from " + o.out + " (" + std::to_string(resume->meta.value("samples", int64_t(0))) + " samples done)");
  }
  set_resume_hint("the samples done so far are checkpointed in " + o.out + "; rerun the same command with --resume to continue");
  const ActStats s = collect_stats(*model, set, o.run, resume.get(), [&](const ActStats& partial) {
    save_stats(partial, o.out);  // atomic: an interrupted run resumes from here
  });
  finish(s, o.out, o.quiet);
  return 0;
}

int run_merge(const StatsOpts& o) {
  if (o.merge_in.size() < 2) throw UsageError("stats merge: give at least two statistics files");
  ActStats m = load_stats(o.merge_in[0]);
  for (size_t i = 1; i < o.merge_in.size(); ++i) m.merge(load_stats(o.merge_in[i]));
  finish(m, o.merge_out, o.quiet);
  return 0;
}

CALQ_REGISTER_COMMAND({{"stats"}, "Collect per-channel activation statistics over a calibration set", [](CLI::App& app) -> Runner {
  auto o = std::make_shared<StatsOpts>();
  app.add_option("model", o->model, "model folder (or any format load_model opens)");
  app.add_option("--calib", o->calib, "calibration set (.safetensors from `calq calib build`)");
  app.add_option("-o,--out", o->out, "output statistics .safetensors (+ .json summary)");
  app.add_option("-b,--batch", o->run.batch, "samples per forward pass")->capture_default_str();
  app.add_option("--range", o->range, "samples START:END of the set (for split runs; merge them later)");
  app.add_flag("--resume", o->resume, "continue from the checkpoint in the output file");
  app.add_option("--checkpoint-every", o->run.checkpoint_every, "batches between checkpoints (0: none)")
      ->capture_default_str();
  app.add_option("--modules", o->run.collect.modules, "HF module names or '*' patterns to observe (default: all)");
  app.add_flag("--lm-head", o->run.collect.lm_head, "also observe lm_head's input");
  app.add_option("--topn", o->run.collect.topn, "largest-value tokens kept per tensor")->capture_default_str();
  app.add_option("--int8-threshold", o->t0, "magnitude for the LLM.int8 counts")->capture_default_str();
  app.add_option("--high-threshold", o->t1, "second magnitude counted per channel")->capture_default_str();
  app.add_flag("--allow-tokenizer-mismatch", o->allow_tok, "accept a set tokenized with another tokenizer");
  app.add_flag("-q,--quiet", o->quiet, "no summary table");
  o->run.checkpoint_every = 16;
  auto* merge = app.add_subcommand("merge", "Merge statistics files of disjoint sample ranges");
  merge->add_option("inputs", o->merge_in, "statistics files, in sample order")->required();
  merge->add_option("-o,--out", o->merge_out, "merged statistics .safetensors")->required();
  merge->add_flag("-q,--quiet", o->quiet, "no summary table");
  return [o, merge] { return merge->parsed() ? run_merge(*o) : run_stats(*o); };
}});

}  // namespace
}  // namespace calq::cli
