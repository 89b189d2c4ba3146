// calq eval kld-ref MODEL --data FILE -o REF.safetensors [--k 32]   (run the float model once)
// calq eval kld MODEL --ref REF.safetensors [--out FILE]             (score any model against it)
// The compact top-k reference and the statistics are described in src/eval/kld.h and docs/eval.md;
// the jobs are eval::run_kld_reference and eval::run_kld (src/eval/jobs.h).
#include <memory>

#include "cmd_eval_common.h"
#include "eval/results.h"
#include "io/mapped_file.h"
#include "progress_bar.h"
#include "util/error.h"

namespace calq::cli {
namespace {

using namespace calq::eval;

struct RefOpts {
  std::string dtype = "f32";
  KldRefJob job;
};

int run_ref(RefOpts& o) {
  KldRefJob& job = o.job;
  if (o.dtype != "f32" && o.dtype != "f16") throw UsageError("--logprob-dtype must be f32 or f16");
  job.logprob_dtype = o.dtype == "f16" ? DType::F16 : DType::F32;
  job.hooks = {info, bar("kld-ref"), threads()};
  check_output_target(job.out);  // before the run, not after it
  set_resume_hint("nothing written (the reference is written when complete; --chunks N makes it shorter)");
  const KldRefRun r = run_kld_reference(job);
  std::printf("kld-ref: %lld tokens, top-%d, %s: %.2f MB (a full-vocabulary llama.cpp file would be %.2f MB, %.0fx)"
              " in %.1f s\n",
              (long long)r.predictions, job.k, job.out.c_str(), double(r.bytes) / 1e6, double(r.llamacpp_bytes) / 1e6,
              double(r.llamacpp_bytes) / double(r.bytes), r.seconds);
  return 0;
}

struct KldOpts {
  std::string out;
  KldJob job;
};

int run_kld(KldOpts& o) {
  KldJob& job = o.job;
  auto note = std::make_shared<std::string>();
  job.hooks = {info, bar("kld", [note] { return *note; }), threads()};
  evalcmd::set_eval_resume_hint(job.resume);
  const bool with_ref = !job.ref.empty();
  job.on_window = [note, with_ref](int64_t done, int64_t total, double running) {
    evalcmd::print_line("[" + std::to_string(done) + "/" + std::to_string(total) + "] mean KLD " +
                        evalcmd::fmt("%.6f", running));
    if (with_ref) *note = "KLD " + evalcmd::fmt("%.6f", running);
  };
  if (!o.out.empty()) check_output_target(o.out);  // before the run, not after it
  const KldRun r = eval::run_kld(job);
  const KldStats& k = r.stats;
  std::printf("KLD %.6f ± %.6f  p99 %.6f  same top %.3f%%  PPL ratio %.5f ± %.5f (PPL %.4f vs %.4f)  over %lld tokens"
              " (%s reference %s) %.1f s\n",
              k.kld_mean, k.kld_mean_stderr, k.kld_p99, k.same_top_pct, k.ppl_ratio, k.ppl_ratio_stderr, k.ppl,
              k.ppl_ref, (long long)k.tokens, r.topk ? ("top-" + std::to_string(r.topk)).c_str() : "exact",
              job.ref.empty() ? job.ref_model.c_str() : job.ref.c_str(), r.seconds);
  std::printf("  KLD median %.6f p90 %.6f p95 %.6f p99.9 %.6f max %.6f | Δp mean %.3f ± %.3f %% rms %.3f %% "
              "p1 %.3f p5 %.3f p10 %.3f median %.3f p90 %.3f p95 %.3f p99 %.3f %%\n",
              k.kld_median, k.kld_p90, k.kld_p95, k.kld_p999, k.kld_max, k.dp_mean_pct, k.dp_mean_pct_stderr,
              k.dp_rms_pct, k.dp_p01_pct, k.dp_p05_pct, k.dp_p10_pct, k.dp_median_pct, k.dp_p90_pct, k.dp_p95_pct,
              k.dp_p99_pct);
  if (!o.out.empty()) {
    write_results(o.out, r.results);
    info("wrote " + o.out);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"eval", "kld-ref"},
                       "Run the reference (float) model once and store its compact top-k KLD reference",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<RefOpts>();
                         app.add_option("model", o->job.model, "reference model folder or GGUF file")->required();
                         evalcmd::add_window_options(app, o->job.w);
                         app.add_option("-o,--out", o->job.out, "reference file (.safetensors)")->required();
                         app.add_option("-k,--k", o->job.k, "log-probabilities kept per token")->check(CLI::PositiveNumber);
                         app.add_option("--logprob-dtype", o->dtype, "f32 (default) or f16 top-k log-probabilities");
                         app.add_option("--tokenizer", o->job.tokenizer, "tokenizer.json or folder (default: the model's)");
                         return [o] { return run_ref(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"eval", "kld"}, "KL divergence of a model against a compact reference (calq eval kld-ref)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<KldOpts>();
                         app.add_option("model", o->job.model, "model folder (float, GPTQ, AWQ) or GGUF file")->required();
                         app.add_option("--ref", o->job.ref, "reference from calq eval kld-ref");
                         app.add_option("--ref-model", o->job.ref_model,
                                        "exact mode: run this (float) model beside MODEL, full-vocabulary KL (needs --data)");
                         evalcmd::add_window_options(app, o->job.w, /*data_required=*/false);
                         app.add_option("--tokenizer", o->job.tokenizer, "tokenizer.json or folder (identity check)");
                         app.add_option("-o,--out", o->out, "results JSON");
                         app.add_option("--resume", o->job.resume,
                                        "log finished windows to this file and skip those it already holds");
                         app.add_flag("--bf16", o->job.bf16, "bf16 weights/activations (f32 accumulation)");
                         app.add_flag("--int8-acts", o->job.int8_acts,
                                      "int8 activations in blocks of 32: llama.cpp's arithmetic for GGUF Q4/Q8 weights");
                         evalcmd::add_kv_options(app, o->job.kv);
                         return [o] { return run_kld(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
