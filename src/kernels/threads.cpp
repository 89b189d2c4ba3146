#include "kernels/threads.h"

#include <omp.h>

namespace calq {

ThreadScope::ThreadScope(int threads) {
  if (threads <= 0) return;
  const int current = omp_get_max_threads();
  if (threads == current) return;
  saved_ = current;
  omp_set_num_threads(threads);
}

ThreadScope::~ThreadScope() {
  if (saved_ > 0) omp_set_num_threads(saved_);
}

int max_threads() { return omp_get_max_threads(); }

}  // namespace calq
