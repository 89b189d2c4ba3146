// Ctrl-C (SIGINT) and SIGTERM: the first one sets a flag and long work stops at its next safe point
// — the progress callbacks of the library's options poll the flag (progress_bar.h) and throw
// calq::Interrupted there, after the last finished step was written (a quantized layer, a stats
// checkpoint, an evaluated window of a --resume log) — and the command line prints one line and
// exits 128 + the signal (130 for Ctrl-C). A second signal ends the process at once.
#pragma once
#include <string>

namespace calq::cli {

void install_interrupt_handlers();
// 0, or the signal received.
int interrupt_signal();
// Throws calq::Interrupted when a signal was received.
void check_interrupt();

// What the "interrupted" line adds, set by a command before its long work: e.g. "rerun the same
// command to resume" for a resumable job. Empty: nothing is kept.
void set_resume_hint(std::string hint);
const std::string& resume_hint();

}  // namespace calq::cli
