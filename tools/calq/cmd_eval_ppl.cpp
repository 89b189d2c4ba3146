// calq eval ppl MODEL --data FILE [--protocol gptq|llama.cpp] [--ctx N] [--chunks N] [--out FILE]
// Perplexity under the GPTQ or llama.cpp protocol (src/eval/windows.h), printed per window with its
// running value ± standard error, a progress bar (tokens/s, ETA) and a one-line summary.
#include <memory>

#include "cmd_eval_common.h"
#include "eval/ppl.h"
#include "eval/resume.h"
#include "eval/session.h"
#include "util/progress.h"

namespace calq::cli {
namespace {

using namespace calq::eval;

struct Opts {
  std::string model, tokenizer, out, resume;
  evalcmd::WindowOpts w;
  bool bf16 = false;
};

int run(const Opts& o) {
  const TextMode mode = parse_text_mode(o.w.text_mode);
  const Protocol proto = parse_protocol(o.w.protocol);
  const evalcmd::Stopwatch timer;
  EvalSession s = open_session(o.model, o.tokenizer, true, o.bf16 ? ComputeType::BF16 : ComputeType::F32);
  const EvalText text = load_eval_text(o.w.data, mode, o.w.field);
  const std::vector<int32_t> stream = token_stream(*s.tokenizer, text.text);
  const int64_t ctx = evalcmd::window_length(o.w, s.model->config().max_position);
  const auto windows = make_windows(stream, ctx, proto, s.tokenizer->bos_id(), o.w.chunks);
  info("ppl: " + std::to_string(stream.size()) + " tokens, " + std::to_string(windows.size()) + " windows of " +
       std::to_string(ctx) + " (" + protocol_name(proto) + ", text mode " + text_mode_name(text.mode) + ")");

  DecoderLogits src(*s.model);
  const evalcmd::Stopwatch scoring;
  Progress bar("ppl", int64_t(windows.size()) * ctx, "tok");
  PplOptions po;
  po.batch = o.w.batch;
  std::unique_ptr<ResumeLog> log;
  if (!o.resume.empty()) {
    log = std::make_unique<ResumeLog>(
        o.resume, run_key({{"eval", "ppl"}, {"model", s.info.hash}, {"tokenizer", s.info.tokenizer_sha256},
                           {"data", text.file_sha256}, {"text_mode", text_mode_name(text.mode)}, {"field", o.w.field},
                           {"protocol", protocol_name(proto)}, {"ctx", ctx}, {"compute", o.bf16 ? "bf16" : "f32"}}));
    if (log->restored()) info("resuming: " + std::to_string(log->restored()) + " windows already in " + o.resume);
    po.resume = log.get();
  }
  const PplResult r = perplexity(src, windows, po, [&](const PplProgress& p) {
    evalcmd::print_line("[" + std::to_string(p.window) + "/" + std::to_string(p.windows) + "] ppl " +
                        evalcmd::fmt("%.4f", p.ppl) + " ± " + evalcmd::fmt("%.4f", p.ppl_stderr) + "  (window nll " +
                        evalcmd::fmt("%.4f", p.window_nll_sum / double(p.window_predictions)) + ")");
    bar.set_note("ppl " + evalcmd::fmt("%.4f", p.ppl) + " ± " + evalcmd::fmt("%.4f", p.ppl_stderr));
    bar.update(p.tokens_done);
  });
  bar.finish();
  const double score_s = scoring.seconds(), el = timer.seconds();
  const double tok_s = double(r.windows * ctx) / std::max(score_s, 1e-9);

  std::printf("ppl %.4f ± %.4f  (mean NLL %.6f over %lld tokens; %s, ctx %lld, %lld windows; %s [%s]) %.1f s, %.0f tok/s\n",
              r.ppl, r.ppl_stderr, r.nll_mean, (long long)r.predictions, protocol_name(proto), (long long)ctx,
              (long long)r.windows, o.w.data.c_str(), text_mode_name(text.mode), el, tok_s);
  if (!o.out.empty()) {
    const Json data = {{"path", o.w.data}, {"sha256", text.file_sha256}, {"text_mode", text_mode_name(text.mode)},
                       {"documents", text.documents}, {"stream_tokens", stream.size()}};
    const Json settings = {{"protocol", protocol_name(proto)}, {"ctx", ctx},
                           {"chunks", o.w.chunks},            {"windows", r.windows},
                           {"batch", o.w.batch},              {"compute", o.bf16 ? "bf16" : "f32"},
                           {"bos_id", s.tokenizer->bos_id()}, {"jsonl_field", o.w.field}};
    const Json metrics = {{"ppl", r.ppl}, {"ppl_stderr", r.ppl_stderr}, {"nll_mean", r.nll_mean},
                          {"nll_sum", r.nll_sum}, {"tokens", r.predictions}};
    write_results(o.out, make_results("ppl", s.info, data, settings, metrics, el,
                                      {{"window_nll_sum", r.window_nll_sum}, {"scoring_s", score_s}, {"tokens_per_s", tok_s}}));
    info("wrote " + o.out);
  }
  return 0;
}

CALQ_REGISTER_COMMAND({{"eval", "ppl"}, "Perplexity of a model on a text (GPTQ or llama.cpp protocol)",
                       [](CLI::App& app) -> Runner {
                         auto o = std::make_shared<Opts>();
                         app.add_option("model", o->model, "model folder (float, GPTQ, AWQ) or GGUF file")->required();
                         evalcmd::add_window_options(app, o->w);
                         app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or folder (default: the model's)");
                         app.add_option("-o,--out", o->out, "results JSON");
                         app.add_option("--resume", o->resume,
                                        "log finished windows to this file and skip those it already holds");
                         app.add_flag("--bf16", o->bf16, "bf16 weights/activations (f32 accumulation)");
                         return [o] { return run(*o); };
                       }});

}  // namespace
}  // namespace calq::cli
