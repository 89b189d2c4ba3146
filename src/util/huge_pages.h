// Transparent huge pages for large read-mostly buffers (packed weights). A decode step streams
// every weight once; on 2 MiB pages one thread's streaming read measured 33-34 GB/s against 26-28
// on 4 KiB pages (this machine, AMD EPYC, THP "madvise" mode; docs/performance.md).
#pragma once
#include <cstddef>

namespace calq {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// Asks the kernel to back the whole 2 MiB pages inside [p, p + n) with huge pages (madvise
// MADV_HUGEPAGE); call it before the buffer is first written. Advice only: a refusal (THP off,
// another OS) changes nothing but speed.
void advise_huge_pages(void* p, size_t n);

}  // namespace calq
