// Runs a model over (a range of) a calibration set with an ActStatsCollector attached, in batches,
// with convergence snapshots, periodic checkpoints and resume. `calq stats` is a thin shell over it.
#pragma once
#include <functional>

#include "calib/calib_set.h"
#include "model/decoder.h"
#include "observe/stats_collector.h"
#include "util/progress.h"

namespace calq {

struct StatsRunOptions {
  ActStatsOptions collect;
  int64_t batch = 1;              // samples per forward pass
  int64_t begin = 0, end = -1;    // sample range [begin, end) of the set; -1 = to the end
  int64_t checkpoint_every = 0;   // batches between on_checkpoint calls (0 = never)
  bool check_tokenizer = true;    // refuse a set whose tokenizer hash differs from the model's
  ProgressFn progress;            // samples done
  int threads = 0;                // worker threads (kernels/threads.h; 0: the caller's)
};

// The statistics of samples [begin, end). With `resume` (a checkpoint of the same set, range and
// settings), collection continues after the samples it covers and the result is resume ⊕ new.
// Snapshots are taken whenever the number of samples since `begin` reaches a power of two.
// Throws ArgError for a seqlen beyond the model's context, token ids beyond its vocabulary, a bad
// range, or a resume file that does not fit.
ActStats collect_stats(const Decoder& model, const CalibSet& set, const StatsRunOptions& opt,
                       const ActStats* resume = nullptr,
                       const std::function<void(const ActStats&)>& on_checkpoint = {});

// The "sources" entry describing samples [begin, end) of `set`.
Json stats_source(const CalibSet& set, int64_t begin, int64_t end, double tokens);

}  // namespace calq
