// What the store records about where a step ran, and how much memory it took.
#pragma once
#include <string>

#include "util/json.h"

namespace calq::study {

// {"host", "cpu", "cores", "memory_gb", "os"} from /proc and uname.
Json machine_json();
// "2025-01-31T12:00:00Z".
std::string utc_now();

// The process's peak resident memory over a stretch of work: Linux's VmHWM, reset at the start
// through /proc/self/clear_refs ("5"); where that is refused, getrusage's lifetime maximum. With
// several steps running side by side (--jobs N) it is the process's peak, not one step's.
class PeakRss {
 public:
  PeakRss();          // resets the high-water mark when it can
  double mb() const;  // the peak since construction (or since process start), MiB
};

}  // namespace calq::study
