// The KLD jobs of eval/jobs.h: building a compact reference, and scoring a model against it (or,
// in exact mode, against a second model run side by side).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "eval/jobs.h"
#include "eval/resume.h"
#include "eval/session.h"
#include "eval/text_data.h"
#include "kernels/threads.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq::eval {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void log(const JobHooks& h, const std::string& line) {
  if (h.log) h.log(line);
}

const char* compute_name(bool bf16) { return bf16 ? "bf16" : "f32"; }

// The resume log of a KLD run (eval/resume.h), keyed by the scored model and the reference.
std::unique_ptr<ResumeLog> open_log(const KldJob& job, const EvalSession& s, const Json& reference) {
  if (job.resume.empty()) return nullptr;
  Json key = {{"eval", "kld"}, {"model", s.info.hash}, {"reference", reference}, {"compute", compute_name(job.bf16)}};
  if (job.int8_acts) key["activations"] = "int8";  // absent: float (keys of earlier runs unchanged)
  if (job.kv.enabled()) key["kv_cache"] = kv_quant_json(job.kv);
  auto log_file = std::make_unique<ResumeLog>(job.resume, run_key(key));
  if (log_file->restored())
    log(job.hooks, "resuming: " + std::to_string(log_file->restored()) + " windows already in " + job.resume);
  return log_file;
}

// A per-window callback that also reports the tokens scored.
std::function<void(int64_t, int64_t, double)> window_hook(const KldJob& job, int64_t ctx) {
  return [&job, ctx](int64_t done, int64_t total, double running) {
    if (job.on_window) job.on_window(done, total, running);
    report_progress(job.hooks.progress, done * ctx, total * ctx, "tok");
  };
}

// Exact mode: both models side by side, full-vocabulary KL per token, no reference file.
KldStats score_exact(const KldJob& job, const EvalSession& s, Json* data, Json* settings) {
  if (job.w.data.empty()) throw ArgError("--ref-model needs --data");
  EvalSession p = open_session(job.ref_model, job.tokenizer, true);
  if (p.info.arch != s.info.arch)
    throw ArgError(job.ref_model + " (" + p.info.arch + ") and " + job.model + " (" + s.info.arch +
                   ") are not versions of the same model");
  if (!s.info.tokenizer_sha256.empty() && s.info.tokenizer_sha256 != p.info.tokenizer_sha256)
    throw ArgError(job.ref_model + " and " + job.model + " have different tokenizers");
  const EvalText text = load_eval_text(job.w.data, parse_text_mode(job.w.text_mode), job.w.field);
  const Protocol proto = parse_protocol(job.w.protocol);
  const int64_t ctx = window_length(job.w.ctx, s.model->config().max_position, job.w.allow_long_ctx);
  const auto windows =
      make_windows(token_stream(*p.tokenizer, text.text), ctx, proto, p.tokenizer->bos_id(), job.w.chunks);
  DecoderLogits P(*p.model), Q(*s.model);
  Q.set_kv_quant(job.kv);
  const auto resume = open_log(job, s, {{"model", p.info.hash}, {"data", text.file_sha256},
                                        {"text_mode", text_mode_name(text.mode)}, {"protocol", protocol_name(proto)},
                                        {"ctx", ctx}, {"chunks", job.w.chunks}});
  // One window per pass unless asked: exact mode holds P's full-vocabulary rows of a whole pass.
  const int64_t batch = job.w.batch > 0 ? job.w.batch : 1;
  const KldStats k = score_kld_exact(P, Q, windows, batch, window_hook(job, ctx), resume.get());
  *data = {{"reference", "exact"},       {"path", job.w.data},
           {"sha256", text.file_sha256}, {"text_mode", text_mode_name(text.mode)},
           {"reference_model", job.ref_model}, {"reference_model_hash", p.info.hash}};
  *settings = {{"protocol", protocol_name(proto)}, {"ctx", ctx},           {"k", "full"},
               {"windows", windows.size()},       {"batch", batch}, {"compute", compute_name(job.bf16)}};
  report_progress(job.hooks.progress, int64_t(windows.size()) * ctx, int64_t(windows.size()) * ctx, "tok", "", true);
  return k;
}

}  // namespace

Json kld_metrics(const KldStats& k) {
  return {{"kld_mean", k.kld_mean},
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
}

KldRefRun run_kld_reference(const KldRefJob& job) {
  const ThreadScope threads(job.hooks.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const TextMode mode = parse_text_mode(job.w.text_mode);
  const Protocol proto = parse_protocol(job.w.protocol);
  if (job.logprob_dtype != DType::F32 && job.logprob_dtype != DType::F16)
    throw ArgError("KLD reference log-probabilities are stored as f32 or f16");
  EvalSession s = open_session(job.model, job.tokenizer, true);
  const int64_t ctx = window_length(job.w.ctx, s.model->config().max_position, job.w.allow_long_ctx);
  const EvalText text = load_eval_text(job.w.data, mode, job.w.field);
  const std::vector<int32_t> stream = token_stream(*s.tokenizer, text.text);
  const auto windows = make_windows(stream, ctx, proto, s.tokenizer->bos_id(), job.w.chunks);
  {  // the size of what it is about to write, before the long run
    int64_t n = 0;
    for (const Window& w : windows) n += w.predictions();
    const double mb = double(kld_reference_bytes(int64_t(windows.size()), ctx, n, job.k, job.logprob_dtype)) / 1e6;
    char b[256];
    std::snprintf(b, sizeof b, "kld-ref: %zu windows of %lld tokens, %lld scored tokens: writing about %.1f MB to ",
                  windows.size(), (long long)ctx, (long long)n, mb);
    log(job.hooks, b + job.out + (windows.size() > 64 && job.w.chunks == 0 ? " (--chunks N keeps the first N windows)" : ""));
  }
  DecoderLogits src(*s.model);
  const int64_t total = int64_t(windows.size()) * ctx;
  KldReference ref = build_kld_reference(src, windows, job.k, windows_per_pass(job.w.batch, ctx), [&](int64_t done, int64_t) {
    report_progress(job.hooks.progress, done * ctx, total, "tok");
  });
  report_progress(job.hooks.progress, total, total, "tok", "", true);
  KldRefMeta& m = ref.meta;
  m.model = job.model;
  m.model_hash = s.info.hash;
  m.model_arch = s.info.arch;
  m.tokenizer_sha256 = s.info.tokenizer_sha256;
  m.data = job.w.data;
  m.data_sha256 = text.file_sha256;
  m.text_mode = text_mode_name(text.mode);
  m.protocol = protocol_name(proto);
  m.calq_version = CALQ_VERSION;
  write_kld_reference(ref, job.out, job.logprob_dtype);
  KldRefRun run;
  run.predictions = ref.predictions();
  run.bytes = std::filesystem::file_size(job.out);
  run.llamacpp_bytes = llamacpp_kld_base_bytes(ref.windows, ctx, ref.predictions(), m.vocab_size);
  run.seconds = seconds_since(t0);
  return run;
}

KldRun run_kld(const KldJob& job) {
  const ThreadScope threads(job.hooks.threads);
  const auto t0 = std::chrono::steady_clock::now();
  if (job.ref.empty() == job.ref_model.empty())
    throw ArgError("give exactly one of --ref (a reference file) or --ref-model");
  EvalSession s = open_session(job.model, job.tokenizer, false, job.bf16 ? ComputeType::BF16 : ComputeType::F32,
                               job.int8_acts ? QActs::Int8 : QActs::Float);
  if (const std::string n = compute_type_note(s, job.bf16 ? ComputeType::BF16 : ComputeType::F32); !n.empty())
    log(job.hooks, n);
  job.kv.validate(int(s.model->config().head_dim));
  if (s.info.tokenizer_sha256.empty()) log(job.hooks, "kld: no tokenizer beside the model; tokenizer identity not checked");
  Json data, settings;
  KldRun run;
  if (!job.ref_model.empty()) {
    run.stats = score_exact(job, s, &data, &settings);
  } else {
    const KldReference ref = read_kld_reference(job.ref);
    check_reference_matches(ref, job.ref, s.info.arch, s.info.tokenizer_sha256, job.w.data);
    const KldRefMeta& m = ref.meta;
    window_length(m.ctx, s.model->config().max_position, job.w.allow_long_ctx);  // the reference's windows fit
    run.topk = m.k;
    DecoderLogits src(*s.model);
    src.set_kv_quant(job.kv);
    const std::string ref_sha = sha256_file(job.ref);
    const auto resume = open_log(job, s, ref_sha);
    run.stats = score_kld(src, ref, windows_per_pass(job.w.batch, m.ctx), window_hook(job, m.ctx), resume.get());
    report_progress(job.hooks.progress, ref.windows * m.ctx, ref.windows * m.ctx, "tok", "", true);
    data = {{"reference", job.ref},     {"reference_sha256", ref_sha},
            {"path", m.data},           {"sha256", m.data_sha256},
            {"text_mode", m.text_mode}, {"reference_model", m.model},
            {"reference_model_hash", m.model_hash}};
    settings = {{"protocol", m.protocol}, {"ctx", m.ctx},         {"k", m.k},
                {"windows", ref.windows}, {"batch", windows_per_pass(job.w.batch, m.ctx)}, {"compute", compute_name(job.bf16)}};
  }
  if (job.int8_acts) settings["activations"] = "int8";
  if (job.kv.enabled()) settings["kv_cache"] = kv_quant_json(job.kv);
  run.seconds = seconds_since(t0);
  run.results = make_results("kld", s.info, data, settings, kld_metrics(run.stats), run.seconds);
  return run;
}

}  // namespace calq::eval
