// Shared pieces of the `calq eval ...` commands: text/window options, chunk-line printing beside the
// progress bar, and the one-line summaries.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "command.h"
#include "eval/text_data.h"
#include "eval/windows.h"

namespace calq::cli::evalcmd {

struct WindowOpts {
  std::string data, text_mode = "auto", field = "text", protocol = "gptq";
  int64_t ctx = 0, chunks = 0, batch = 1;
};

inline void add_window_options(CLI::App& app, WindowOpts& o, bool data_required = true) {
  auto* d = app.add_option("--data", o.data, "evaluation text: plain text, jsonl (with a text field) or sentence-per-line");
  if (data_required) d->required();
  app.add_option("--text-mode", o.text_mode,
                 "how the file becomes one text: auto|raw|hf-rows|jsonl|lines (auto: by extension; raw otherwise)");
  app.add_option("--field", o.field, "jsonl field holding the text");
  app.add_option("--protocol", o.protocol, "gptq (all shifted tokens of each window) | llama.cpp (BOS per window, "
                                           "second half scored)");
  app.add_option("--ctx", o.ctx, "window length in tokens (default: 2048, GPTQ's seqlen, or the model's "
                                 "max_position_embeddings when smaller)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--chunks", o.chunks, "score only the first N windows (0 = all)")->check(CLI::NonNegativeNumber);
  app.add_option("--batch", o.batch, "windows per forward pass")->check(CLI::PositiveNumber);
}

// --ctx, else GPTQ's fixed seqlen 2048 capped at the model's context.
inline int64_t window_length(const WindowOpts& o, int64_t max_position) {
  if (o.ctx > 0) return o.ctx;
  return max_position > 0 ? std::min<int64_t>(2048, max_position) : 2048;
}

// Prints a result line on stdout without tearing the progress bar on a terminal's stderr.
inline void print_line(const std::string& s) {
  if (isatty(STDERR_FILENO)) std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

inline std::string fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}

}  // namespace calq::cli::evalcmd
