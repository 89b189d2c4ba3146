#include "interrupt.h"

#include <unistd.h>

#include <csignal>

#include "util/progress.h"

namespace calq::cli {

namespace {
volatile std::sig_atomic_t g_signal = 0;
std::string g_hint;

extern "C" void on_signal(int sig) {
  g_signal = sig;
  std::signal(sig, SIG_DFL);  // the second one ends the process
  const char msg[] = "\ncalq: stopping at the next safe point (press Ctrl-C again to stop at once)\n";
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
}
}  // namespace

void install_interrupt_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

int interrupt_signal() { return int(g_signal); }

void check_interrupt() {
  if (g_signal) throw Interrupted("interrupted");
}

void set_resume_hint(std::string hint) { g_hint = std::move(hint); }
const std::string& resume_hint() { return g_hint; }

}  // namespace calq::cli
