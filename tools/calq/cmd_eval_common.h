// Shared pieces of the `calq eval ...` commands: the text/window options (parsed into
// eval::WindowSpec, whose defaults and policy live in src/eval/jobs.h), result lines printed beside
// the progress bar, and number formatting.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <string>

#include "command.h"
#include "interrupt.h"
#include "eval/jobs.h"

namespace calq::cli::evalcmd {

inline void add_window_options(CLI::App& app, eval::WindowSpec& o, bool data_required = true) {
  auto* d = app.add_option("--data", o.data, "evaluation text: plain text, jsonl (with a text field) or sentence-per-line");
  if (data_required) d->required();
  app.add_option("--text-mode", o.text_mode,
                 "how the file becomes one text: auto|raw|hf-rows|jsonl|lines (auto: by extension; raw otherwise)")
      ->check(one_of({"auto", "raw", "hf-rows", "jsonl", "lines"}));
  app.add_option("--field", o.field, "jsonl field holding the text");
  app.add_option("--protocol", o.protocol, "gptq (all shifted tokens of each window) | llama.cpp (BOS per window, "
                                           "second half scored)")
      ->check(one_of({"gptq", "llama.cpp", "llamacpp"}));
  app.add_option("--ctx", o.ctx, "window length in tokens (default: 2048, GPTQ's seqlen, or the model's "
                                 "max_position_embeddings when smaller)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--chunks", o.chunks, "score only the first N windows (0 = all)")->check(CLI::NonNegativeNumber);
  app.add_option("--batch", o.batch, "windows per forward pass (default: as many as fill 2048 positions, "
                                     "e.g. 4 at --ctx 512)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--allow-long-ctx", o.allow_long_ctx,
               "accept a --ctx beyond the model's max_position_embeddings (refused otherwise)");
}

// What Ctrl-C says: with --resume FILE the finished windows (or documents) are kept.
inline void set_eval_resume_hint(const std::string& resume) {
  set_resume_hint(resume.empty() ? "nothing kept (--resume FILE keeps finished windows for a rerun)"
                                 : "finished windows are in " + resume + "; rerun the same command to resume");
}

// Simulated KV-cache quantization of the evaluated model (kernels/kv_quant.h; qllm-eval's KV axis).
inline void add_kv_options(CLI::App& app, KvQuant& kv) {
  app.add_option("--kv-bits", kv.bits, "KV-cache bits: keys (after RoPE) and values fake-quantized per token, "
                                       "2..8 (16 = off)")
      ->capture_default_str();
  app.add_option("--kv-group", kv.group, "KV-cache channels per group along head_dim (0 = the whole head)")
      ->capture_default_str();
  app.add_flag("--kv-sym", kv.sym, "symmetric KV-cache quantization (default: asymmetric, with zero point)");
}

// Prints a result line on stdout without tearing the progress bar on a terminal's stderr.
inline void print_line(const std::string& s) {
  if (isatty(STDERR_FILENO)) std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

inline std::string fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}

}  // namespace calq::cli::evalcmd
