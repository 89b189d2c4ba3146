// calq eval kld-ref MODEL --data FILE -o REF.safetensors [--k 32]   (run the float model once)
// calq eval kld MODEL --ref REF.safetensors [--out FILE]             (score any model against it)
// The compact top-k reference and the statistics are described in src/eval/kld.h and docs/eval.md.
#include <filesystem>
#include <memory>

#include "cmd_eval_common.h"
#include "eval/kld.h"
#include "eval/ppl.h"
#include "eval/resume.h"
#include "eval/session.h"
#include "io/mapped_file.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/sha256.h"

namespace calq::cli {
namespace {

using namespace calq::eval;

struct RefOpts {
  std::string model, tokenizer, out, dtype = "f32";
  evalcmd::WindowOpts w;
  int k = 32;
};

int run_ref(const RefOpts& o) {
  const TextMode mode = parse_text_mode(o.w.text_mode);
  const Protocol proto = parse_protocol(o.w.protocol);
  if (o.dtype != "f32" && o.dtype != "f16") throw ArgError("--logprob-dtype must be f32 or f16");
  const evalcmd::Stopwatch timer;
  EvalSession s = open_session(o.model, o.tokenizer, true);
  const EvalText text = load_eval_text(o.w.data, mode, o.w.field);
  const std::vector<int32_t> stream = token_stream(*s.tokenizer, text.text);
  const int64_t ctx = evalcmd::window_length(o.w, s.model->config().max_position);
  const auto windows = make_windows(stream, ctx, proto, s.tokenizer->bos_id(), o.w.chunks);
  DecoderLogits src(*s.model);
  Progress bar("kld-ref", int64_t(windows.size()) * ctx, "tok");
  KldReference ref = build_kld_reference(src, windows, o.k, o.w.batch,
                                         [&](int64_t done, int64_t) { bar.update(done * ctx); });
  bar.finish();
  KldRefMeta& m = ref.meta;
  m.model = o.model;
  m.model_hash = s.info.hash;
  m.model_arch = s.info.arch;
  m.tokenizer_sha256 = s.info.tokenizer_sha256;
  m.data = o.w.data;
  m.data_sha256 = text.file_sha256;
  m.text_mode = text_mode_name(text.mode);
  m.protocol = protocol_name(proto);
  m.calq_version = CALQ_VERSION;
  write_kld_reference(ref, o.out, o.dtype == "f16" ? DType::F16 : DType::F32);
  const uint64_t bytes = std::filesystem::file_size(o.out);
  const uint64_t full = llamacpp_kld_base_bytes(ref.windows, ctx, ref.predictions(), m.vocab_size);
  std::printf("kld-ref: %lld tokens, top-%d, %s: %.2f MB (a full-vocabulary llama.cpp file would be %.2f MB, %.0fx)"
              " in %.1f s\n",
              (long long)ref.predictions(), o.k, o.out.c_str(), double(bytes) / 1e6, double(full) / 1e6,
              double(full) / double(bytes), timer.seconds());
  return 0;
}

struct KldOpts {
  std::string model, tokenizer, ref, ref_model, out, resume;
  evalcmd::WindowOpts w;  // --data etc.: with --ref-model; --data alone checks a reference file
  bool bf16 = false;
};

// Exact mode: both models side by side, full-vocabulary KL per token, no reference file.
std::unique_ptr<ResumeLog> open_log(const KldOpts& o, const EvalSession& s, const Json& reference) {
  if (o.resume.empty()) return nullptr;
  auto log = std::make_unique<ResumeLog>(o.resume, run_key({{"eval", "kld"}, {"model", s.info.hash},
                                                            {"reference", reference},
                                                            {"compute", o.bf16 ? "bf16" : "f32"}}));
  if (log->restored()) info("resuming: " + std::to_string(log->restored()) + " windows already in " + o.resume);
  return log;
}

KldStats run_exact(const KldOpts& o, const EvalSession& s, Json* data, Json* settings) {
  if (o.w.data.empty()) throw ArgError("--ref-model needs --data");
  EvalSession p = open_session(o.ref_model, o.tokenizer, true);
  if (p.info.arch != s.info.arch)
    throw ArgError(o.ref_model + " (" + p.info.arch + ") and " + o.model + " (" + s.info.arch +
                   ") are not versions of the same model");
  if (!s.info.tokenizer_sha256.empty() && s.info.tokenizer_sha256 != p.info.tokenizer_sha256)
    throw ArgError(o.ref_model + " and " + o.model + " have different tokenizers");
  const EvalText text = load_eval_text(o.w.data, parse_text_mode(o.w.text_mode), o.w.field);
  const Protocol proto = parse_protocol(o.w.protocol);
  const int64_t ctx = evalcmd::window_length(o.w, s.model->config().max_position);
  const auto windows = make_windows(token_stream(*p.tokenizer, text.text), ctx, proto, p.tokenizer->bos_id(), o.w.chunks);
  DecoderLogits P(*p.model), Q(*s.model);
  const auto log = open_log(o, s, {{"model", p.info.hash}, {"data", text.file_sha256}, {"text_mode", text_mode_name(text.mode)},
                                   {"protocol", protocol_name(proto)}, {"ctx", ctx}, {"chunks", o.w.chunks}});
  Progress bar("kld", int64_t(windows.size()) * ctx, "tok");
  const KldStats k = score_kld_exact(P, Q, windows, o.w.batch, [&](int64_t done, int64_t total, double running) {
    evalcmd::print_line("[" + std::to_string(done) + "/" + std::to_string(total) + "] mean KLD " +
                        evalcmd::fmt("%.6f", running));
    bar.update(done * ctx);
  }, log.get());
  bar.finish();
  *data = {{"reference", "exact"},       {"path", o.w.data},
           {"sha256", text.file_sha256}, {"text_mode", text_mode_name(text.mode)},
           {"reference_model", o.ref_model}, {"reference_model_hash", p.info.hash}};
  *settings = {{"protocol", protocol_name(proto)}, {"ctx", ctx},          {"k", "full"},
               {"windows", windows.size()},        {"batch", o.w.batch}, {"compute", o.bf16 ? "bf16" : "f32"}};
  return k;
}

int run_kld(const KldOpts& o) {
  const evalcmd::Stopwatch timer;
  if (o.ref.empty() == o.ref_model.empty()) throw ArgError("give exactly one of --ref (a reference file) or --ref-model");
  EvalSession s = open_session(o.model, o.tokenizer, false, o.bf16 ? ComputeType::BF16 : ComputeType::F32);
  if (s.info.tokenizer_sha256.empty()) info("kld: no tokenizer beside the model; tokenizer identity not checked");
  Json data, settings;
  KldStats k;
  int64_t topk = 0;
  if (!o.ref_model.empty()) {
    k = run_exact(o, s, &data, &settings);
  } else {
    const KldReference ref = read_kld_reference(o.ref);
    check_reference_matches(ref, o.ref, s.info.arch, s.info.tokenizer_sha256, o.w.data);
    const KldRefMeta& m = ref.meta;
    topk = m.k;
    DecoderLogits src(*s.model);
    const int64_t ctx = m.ctx;
    const auto log = open_log(o, s, sha256_file(o.ref));
    Progress bar("kld", ref.windows * ctx, "tok");
    k = score_kld(src, ref, o.w.batch, [&](int64_t done, int64_t total, double running) {
      evalcmd::print_line("[" + std::to_string(done) + "/" + std::to_string(total) + "] mean KLD " +
                          evalcmd::fmt("%.6f", running));
      bar.set_note("KLD " + evalcmd::fmt("%.6f", running));
      bar.update(done * ctx);
    }, log.get());
    bar.finish();
    data = {{"reference", o.ref},          {"reference_sha256", sha256_file(o.ref)},
            {"path", m.data},              {"sha256", m.data_sha256},
            {"text_mode", m.text_mode},    {"reference_model", m.model},
            {"reference_model_hash", m.model_hash}};
    settings = {{"protocol", m.protocol}, {"ctx", m.ctx},       {"k", m.k},
                {"windows", ref.windows}, {"batch", o.w.batch}, {"compute", o.bf16 ? "bf16" : "f32"}};
  }
  const double el = timer.seconds();
  std::printf("KLD %.6f ± %.6f  p99 %.6f  same top %.3f%%  PPL ratio %.5f ± %.5f (PPL %.4f vs %.4f)  over %lld tokens"
              " (%s reference %s) %.1f s\n",
              k.kld_mean, k.kld_mean_stderr, k.kld_p99, k.same_top_pct, k.ppl_ratio, k.ppl_ratio_stderr, k.ppl,
              k.ppl_ref, (long long)k.tokens, topk ? ("top-" + std::to_string(topk)).c_str() : "exact",
              o.ref.empty() ? o.ref_model.c_str() : o.ref.c_str(), el);
  std::printf("  KLD median %.6f p90 %.6f p95 %.6f p99.9 %.6f max %.6f | Δp mean %.3f ± %.3f %% rms %.3f %% "
              "p1 %.3f p5 %.3f p10 %.3f median %.3f p90 %.3f p95 %.3f p99 %.3f %%\n",
              k.kld_median, k.kld_p90, k.kld_p95, k.kld_p999, k.kld_max, k.dp_mean_pct, k.dp_mean_pct_stderr,
              k.dp_rms_pct, k.dp_p01_pct, k.dp_p05_pct, k.dp_p10_pct, k.dp_median_pct, k.dp_p90_pct, k.dp_p95_pct,
              k.dp_p99_pct);
  if (!o.out.empty()) {
    const Json metrics = {{"kld_mean", k.kld_mean},
                          {"kld_mean_stderr", k.kld_mean_stderr},
                          {"kld_median", k.kld_median},
                          {"kld_p90", k.kld_p90},
                          {"kld_p95", k.kld_p95},
                          {"kld_p99", k.kld_p99},
                          {"kld_p999", k.kld_p999},
                          {"kld_max", k.kld_max},
                          {"same_top_pct", k.same_top_pct},
                          {"same_top_pct_stderr", k.same_top_pct_stderr},
                          {"dp_mean_pct", k.dp_mean_pct},
                          {"dp_mean_pct_stderr", k.dp_mean_pct_stderr},
                          {"dp_rms_pct", k.dp_rms_pct},
                          {"dp_p01_pct", k.dp_p01_pct},
                          {"dp_p05_pct", k.dp_p05_pct},
                          {"dp_p10_pct", k.dp_p10_pct},
                          {"dp_median_pct", k.dp_median_pct},
                          {"dp_p90_pct", k.dp_p90_pct},
                          {"dp_p95_pct", k.dp_p95_pct},
                          {"dp_p99_pct", k.dp_p99_pct},
                          {"ppl", k.ppl},
                          {"ppl_ref", k.ppl_ref},
                          {"ppl_ratio", k.ppl_ratio},
                          {"ppl_ratio_stderr", k.ppl_ratio_stderr},
                          {"ln_ppl_ratio", k.ln_ppl_ratio},
                          {"ln_ppl_ratio_stderr", k.ln_ppl_ratio_stderr},
                          {"tokens", k.tokens}};
    write_results(o.out, make_results("kld", s.info, data, settings, metrics, el));
    info("wrote " + o.out);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"eval", "kld-ref"},
                       "Run the reference (float) model once and store its compact top-k KLD reference",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<RefOpts>();
                         app.add_option("model", o->model, "reference model folder or GGUF file")->required();
                         evalcmd::add_window_options(app, o->w);
                         app.add_option("-o,--out", o->out, "reference file (.safetensors)")->required();
                         app.add_option("-k,--k", o->k, "log-probabilities kept per token")->check(CLI::PositiveNumber);
                         app.add_option("--logprob-dtype", o->dtype, "f32 (default) or f16 top-k log-probabilities");
                         app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or folder (default: the model's)");
                         return [o] { return run_ref(*o); };
                       }});

CALQ_REGISTER_COMMAND({{"eval", "kld"}, "KL divergence of a model against a compact reference (calq eval kld-ref)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<KldOpts>();
                         app.add_option("model", o->model, "model folder (float, GPTQ, AWQ) or GGUF file")->required();
                         app.add_option("--ref", o->ref, "reference from calq eval kld-ref");
                         app.add_option("--ref-model", o->ref_model,
                                        "exact mode: run this (float) model beside MODEL, full-vocabulary KL (needs --data)");
                         evalcmd::add_window_options(app, o->w, /*data_required=*/false);
                         app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or folder (identity check)");
                         app.add_option("-o,--out", o->out, "results JSON");
                         app.add_option("--resume", o->resume,
                                        "log finished windows to this file and skip those it already holds");
                         app.add_flag("--bf16", o->bf16, "bf16 weights/activations (f32 accumulation)");
                         return [o] { return run_kld(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
