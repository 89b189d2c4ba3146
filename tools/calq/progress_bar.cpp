#include "progress_bar.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "interrupt.h"

namespace calq::cli {

namespace {
std::string fmt_time(double s) {
  if (s < 0 || s > 1e7) return "?";
  char b[32];
  const int t = int(s + 0.5);
  if (t >= 3600)
    std::snprintf(b, sizeof b, "%dh%02dm", t / 3600, t / 60 % 60);
  else
    std::snprintf(b, sizeof b, "%dm%02ds", t / 60, t % 60);
  return b;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
  const char* env = std::getenv("CALQ_PROGRESS");
  if (env && std::string(env) == "0")
    mode_ = 0;
  else if (env && std::string(env) == "1")
    mode_ = 2;
  else
    mode_ = isatty(STDERR_FILENO) ? 1 : 0;
}

ProgressBar::~ProgressBar() {
  if (!finished_) finish();
}

double ProgressBar::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (mode_ == 0 || (since < (mode_ == 1 ? 0.1 : 2.0) && done_ < total_)) return;
  last_draw_ = now;
  draw(false);
}

void ProgressBar::draw(bool final_line) {
  const double el = elapsed_s();
  const double rate = el > 0 ? double(done_) / el : 0;
  const double eta = rate > 0 && total_ > 0 ? double(total_ - done_) / rate : -1;
  const double frac = total_ > 0 ? double(done_) / double(total_) : 0;
  const int width = 24, fill = int(frac * width + 0.5);
  std::string bar(size_t(fill), '#');
  bar.append(size_t(width - fill), '.');
  std::fprintf(stderr, "%s%s [%s] %lld/%lld %s  %.1f %s/s  %s %s%s%s", mode_ == 1 ? "\r\033[K" : "",
               label_.c_str(), bar.c_str(), (long long)done_, (long long)total_, unit_.c_str(), rate, unit_.c_str(),
               final_line ? "elapsed" : "ETA", fmt_time(final_line ? el : eta).c_str(), note_.empty() ? "" : "  ",
               note_.c_str());
  if (mode_ == 2 || final_line) std::fputc('\n', stderr);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  finished_ = true;
  if (mode_ != 0) draw(true);
}

ProgressFn bar(const std::string& label, std::function<std::string()> note) {
  auto b = std::make_shared<std::unique_ptr<ProgressBar>>();
  return [b, label, note](const ProgressEvent& e) {
    check_interrupt();  // every progress event is a safe point to stop at (util/progress.h)
    if (!*b) *b = std::make_unique<ProgressBar>(label, e.total, e.unit);
    if (note) (*b)->set_note(note());
    else if (!e.note.empty()) (*b)->set_note(e.note);
    (*b)->update(e.done);
    if (e.finished) b->reset();  // finishes the bar; a later event starts a new one
  };
}

}  // namespace calq::cli
