// Opt-in time accounting of the kernels (for benchmarks' time breakdowns). Off by default: the
// cost when off is one relaxed atomic load per kernel call. Wall time and process CPU time (all
// threads: on a shared machine, CPU time / threads approximates the uncontended wall time) are
// summed over calls; the forward pass calls the kernels from one thread, so sums are per pass.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace calq {

enum class KernelKind { Gemm, Attention, Count };

struct KernelProfile {
  std::atomic<bool> enabled{false};
  std::atomic<int64_t> ns[int(KernelKind::Count)] = {};
  std::atomic<int64_t> cpu_ns[int(KernelKind::Count)] = {};
  std::atomic<int64_t> calls[int(KernelKind::Count)] = {};
  std::atomic<int64_t> flops[int(KernelKind::Count)] = {};  // useful multiply-add work x2
  void reset() {
    for (int i = 0; i < int(KernelKind::Count); ++i) ns[i] = 0, cpu_ns[i] = 0, calls[i] = 0, flops[i] = 0;
  }
  double seconds(KernelKind k) const { return double(ns[int(k)].load()) * 1e-9; }
  double cpu_seconds(KernelKind k) const { return double(cpu_ns[int(k)].load()) * 1e-9; }
};
KernelProfile& kernel_profile();

// RAII timer: adds the scope's duration to `kind` when profiling is on.
class KernelTimer {
 public:
  KernelTimer(KernelKind k, int64_t flops) : k_(k), flops_(flops), on_(kernel_profile().enabled.load(std::memory_order_relaxed)) {
    if (on_) {
      t0_ = std::chrono::steady_clock::now();
      c0_ = process_cpu_ns();
    }
  }
  ~KernelTimer() {
    if (!on_) return;
    const auto dt = std::chrono::steady_clock::now() - t0_;
    auto& p = kernel_profile();
    p.ns[int(k_)] += std::chrono::duration_cast<std::chrono::nanoseconds>(dt).count();
    p.cpu_ns[int(k_)] += process_cpu_ns() - c0_;
    p.calls[int(k_)] += 1;
    p.flops[int(k_)] += flops_;
  }
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;

 private:
  KernelKind k_;
  int64_t flops_;
  bool on_;
  std::chrono::steady_clock::time_point t0_;
  int64_t c0_ = 0;
  static int64_t process_cpu_ns() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
};

}  // namespace calq
