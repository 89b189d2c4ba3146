// Progress of long library work (quantizing layers, collecting statistics, packing and writing
// tensors) is reported one way: through a ProgressFn the caller puts into the call's options. The
// library never draws and never reads the environment; the command line turns the events into
// progress bars (tools/calq/progress_bar.h), tests and other callers pass nothing.
//
// Cancellation goes the same way: a ProgressFn may throw Interrupted (the command line does on
// Ctrl-C). The library reports progress only at points where the work done so far is complete on
// disk or can be dropped — after a quantized layer is in the QuantState, after an evaluated window
// is in the --resume log — and never from inside a parallel region, so an interrupted run resumes
// from its last event. Callers that can save more on the way out (statistics checkpoints) catch
// Interrupted, save and rethrow.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "util/error.h"

namespace calq {

struct ProgressEvent {
  int64_t done = 0, total = 0;  // in `unit`s
  const char* unit = "it";
  std::string note;             // e.g. "layer 3"
  bool finished = false;        // the last event of this piece of work
};

using ProgressFn = std::function<void(const ProgressEvent&)>;

// Thrown by a ProgressFn to stop the work at that point.
class Interrupted : public Error {
  using Error::Error;
};

// Calls `fn` (when set) with one event.
inline void report_progress(const ProgressFn& fn, int64_t done, int64_t total, const char* unit, std::string note = "",
                   bool finished = false) {
  if (fn) fn(ProgressEvent{done, total, unit, std::move(note), finished});
}

}  // namespace calq
