// The command line's progress bars: done/total, rate (units/s) and ETA on stderr, redrawn at most
// ~10 times a second. Quiet when stderr is not a terminal unless CALQ_PROGRESS=1 (then one line
// per update, for logs); CALQ_PROGRESS=0 silences them. The library never draws: it reports through
// the ProgressFn callbacks of its options (util/progress.h), which bar() turns into a bar.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "util/progress.h"

namespace calq::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  ~ProgressBar();
  void add(int64_t n = 1) { update(done_ + n); }
  void update(int64_t done);
  // Extra text shown after the bar (e.g. "ppl 12.3 ± 0.4").
  void set_note(std::string note) { note_ = std::move(note); }
  void finish();
  double elapsed_s() const;

 private:
  void draw(bool final_line);
  std::string label_, unit_, note_;
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int mode_;  // 0 off, 1 terminal redraw, 2 plain lines
  bool finished_ = false;
};

// A callback for the library's ProgressFn that draws one bar named `label` (created at the first
// event, finished by the event that says so). `note`, when given, is asked for the text shown after
// the bar at every event (e.g. a running perplexity the command keeps).
ProgressFn bar(const std::string& label, std::function<std::string()> note = {});

}  // namespace calq::cli
