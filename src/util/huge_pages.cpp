#include "util/huge_pages.h"

#include <cstdint>
#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace calq {

bool huge_pages_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("CALQ_HUGE_PAGES");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return on;
}

void advise_huge_pages(void* p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (!huge_pages_enabled()) return;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + n) / kHugePageBytes * kHugePageBytes;
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // advice only: failure is harmless
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace calq
