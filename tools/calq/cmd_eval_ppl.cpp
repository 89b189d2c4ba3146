// calq eval ppl MODEL --data FILE [--protocol gptq|llama.cpp] [--ctx N] [--chunks N] [--out FILE]
// Perplexity under the GPTQ or llama.cpp protocol (src/eval/windows.h), printed per window with its
// running value ± standard error, a progress bar (tokens/s, ETA) and a one-line summary. The job
// itself is eval::run_ppl (src/eval/jobs.h).
#include <memory>

#include "cmd_eval_common.h"
#include "eval/results.h"
#include "io/mapped_file.h"
#include "progress_bar.h"

namespace calq::cli {
namespace {

using namespace calq::eval;

struct Opts {
  std::string out;
  PplJob job;
};

int run(Opts& o) {
  PplJob& job = o.job;
  auto note = std::make_shared<std::string>();
  job.hooks = {info, bar("ppl", [note] { return *note; }), threads()};
  evalcmd::set_eval_resume_hint(job.resume);
  job.on_window = [note](const PplProgress& p) {
    *note = "ppl " + evalcmd::fmt("%.4f", p.ppl) + " ± " + evalcmd::fmt("%.4f", p.ppl_stderr);
    evalcmd::print_line("[" + std::to_string(p.window) + "/" + std::to_string(p.windows) + "] ppl " +
                        evalcmd::fmt("%.4f", p.ppl) + " ± " + evalcmd::fmt("%.4f", p.ppl_stderr) + "  (window nll " +
                        evalcmd::fmt("%.4f", p.window_nll_sum / double(p.window_predictions)) + ")");
  };
  if (!o.out.empty()) check_output_target(o.out);  // before the run, not after it
  const PplRun r = run_ppl(job);
  std::printf("ppl %.4f ± %.4f  (mean NLL %.6f over %lld tokens; %s, ctx %lld, %lld windows; %s [%s]) %.1f s, %.0f tok/s\n",
              r.result.ppl, r.result.ppl_stderr, r.result.nll_mean, (long long)r.result.predictions, r.protocol.c_str(),
              (long long)r.ctx, (long long)r.result.windows, job.w.data.c_str(), r.text_mode.c_str(), r.seconds,
              r.tokens_per_s);
  if (!o.out.empty()) {
    write_results(o.out, r.results);
    info("wrote " + o.out);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"eval", "ppl"}, "Perplexity of a model on a text (GPTQ or llama.cpp protocol)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->job.model, "model folder (float, GPTQ, AWQ) or GGUF file")->required();
                         evalcmd::add_window_options(app, o->job.w);
                         app.add_option("--tokenizer", o->job.tokenizer, "tokenizer.json or folder (default: the model's)");
                         app.add_option("-o,--out", o->out, "results JSON");
                         app.add_option("--resume", o->job.resume,
                                        "log finished windows to this file and skip those it already holds");
                         app.add_flag("--bf16", o->job.bf16, "bf16 weights/activations (f32 accumulation)");
                         app.add_flag("--int8-acts", o->job.int8_acts,
                                      "int8 activations in blocks of 32: llama.cpp's arithmetic for GGUF Q4/Q8 weights");
                         evalcmd::add_kv_options(app, o->job.kv);
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
