// Threads are explicit. Every long-running library entry point takes a thread count in its options
// (ForwardOptions, QuantizeOptions, StatsRunOptions, PplOptions, TaskOptions, KldJob, ...) and
// applies it to that call only through a ThreadScope, as ggml passes n_threads per call and
// gemma.cpp a ThreadingContext: there is no process-wide setting. 0 means "inherit": the caller's
// OpenMP setting (every core by default, or OMP_NUM_THREADS), so nested calls keep the count of the
// entry point that opened the scope.
#pragma once

namespace calq {

class ThreadScope {
 public:
  // threads > 0: parallel regions started by this thread until the scope ends use `threads` workers
  // (OpenMP's nthreads ICV of the calling task, restored on exit). threads <= 0: no change.
  explicit ThreadScope(int threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int saved_ = 0;  // the count to restore; 0 when nothing was changed
};

// Workers a parallel region started here would get (the current scope's count).
int max_threads();

}  // namespace calq
