// Transparent huge pages for large read-mostly buffers (packed weights), opt-in: CALQ_HUGE_PAGES=1.
// A decode step streams every weight once; on 2 MiB pages one thread's streaming read measured
// 33-34 GB/s against 26-28 on 4 KiB pages (this machine, AMD EPYC, THP "madvise" mode). But
// faulting them in compacts memory: loading the 4.4 GB f32 copy of a 1.1 B model took 12-14 s
// instead of 1.7-2.1 s, and `calq generate -n 64` on a Q4_0 GGUF 5.1-7.0 s instead of 3.7-3.8 s,
// for +4 % (f32 prefill) and +0-6 % (Q4_0 decode) afterwards (docs/performance.md), so they are off by default.
#pragma once
#include <cstddef>

namespace calq {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// Asks the kernel to back the whole 2 MiB pages inside [p, p + n) with huge pages (madvise
// MADV_HUGEPAGE) when huge_pages_enabled(); call it before the buffer is first written. Advice
// only: a refusal (THP off, another OS) changes nothing but speed.
void advise_huge_pages(void* p, size_t n);

// True when the environment asks for huge pages (CALQ_HUGE_PAGES set and not "0"); read once.
bool huge_pages_enabled();

}  // namespace calq
