// ActStatsCollector: the Observer that accumulates ActStats (observe/act_stats.h) during forward
// passes, plus the list of observable modules of a model.
//
// Cost (it must stay within a few percent of the forward pass): per observed value a handful of
// vectorized float operations and one histogram increment. Each call splits the channels into
// tiles of 256 that OpenMP threads take dynamically (ActStatsOptions::parallel_work sets how much
// work brings in another thread); within a tile, float partial sums over blocks of at most 64 rows
// are flushed into the double totals (float rounding per block of 64, double beyond).
// q/k/v (and gate/up) receive the same input pointer: it is accumulated once, under the first
// module's entry, whose `modules` lists all of them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "observe/act_stats.h"
#include "model/observer.h"

namespace calq {

struct ObservableModule {
  std::string name;   // HF module name
  std::string kind;   // see TensorStats::kind
  int layer = -1;
  int64_t cols = 0;   // input width
};

// Every observation point of `model`, in execution order: per layer q, k, v, o, (gate), up, down
// linear inputs, then the residual stream "…layers.<i>"; lm_head last when include_lm_head.
std::vector<ObservableModule> observable_modules(const Decoder& model, bool include_lm_head);

// Module selection: exact HF names or patterns with '*' (any run of characters), e.g.
// "model.layers.*.mlp.down_proj". Every pattern must match at least one observable module
// (ArgError naming the pattern otherwise).
std::vector<ObservableModule> select_modules(const std::vector<ObservableModule>& all,
                                             const std::vector<std::string>& patterns);
bool glob_match(const std::string& pattern, const std::string& name);

struct ActStatsOptions {
  std::vector<std::string> modules;  // patterns; empty = every linear input and residual stream
  bool lm_head = false;              // also observe lm_head's input (needs Logits::All)
  int topn = 16;                     // rows with the largest |x| kept per tensor
  double thresholds[2] = {6.0, 20.0};  // per-channel/per-tensor counts of |x| >= t
  // Values per thread before another thread joins a call (~4 ms of work): waking a thread costs
  // microseconds on an idle machine but milliseconds on an oversubscribed one (OpenMP
  // spin-waits), where a parallel region over less work is slower than one thread.
  int64_t parallel_work = int64_t(1) << 22;
};

class ActStatsCollector final : public Observer {
 public:
  ActStatsCollector(const Decoder& model, const ActStatsOptions& opt);

  // Before each forward: index of the batch's first sample in the calibration set, and an
  // optional row mask [batch*seq] (0 = padding, skipped).
  void begin_batch(int64_t first_sample, const uint8_t* row_mask);
  // Records a convergence snapshot (cumulative Σx², absmax) at the current sample count.
  void snapshot(int64_t samples_done);
  // The statistics so far (meta filled with model and options; the caller adds sources).
  ActStats result() const;

  void on_batch(const int32_t* ids, int64_t batch, int64_t seq) override;
  bool wants(const std::string& module) const override;
  void on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) override;
  void on_layer_output(const std::string& module, int layer, const float* h, int64_t rows, int64_t cols) override;

 private:
  struct Slot {
    std::string group;       // shared-input group ("<layer>.attn_in", ...) or the name
    std::string kind;
    int layer = -1;
    const float* last = nullptr;  // input pointer of the latest call (for q/k/v dedupe)
    int64_t last_rows = 0;
    int entry = -1;          // index into stats_.tensors
  };
  void observe(const std::string& module, const float* x, int64_t rows, int64_t cols);
  void accumulate(TensorStats& t, const float* x, int64_t rows);
  void update_top(TensorStats& t, const float* x, int64_t rows, const std::vector<float>& row_max);

  ActStats stats_;
  ActStatsOptions opt_;
  std::map<std::string, Slot> slots_;  // selected module -> slot
  std::string prev_module_;            // module of the previous callback (dedupe within a group)
  const int32_t* ids_ = nullptr;
  int64_t batch_ = 0, seq_ = 0, first_sample_ = 0;
  const uint8_t* row_mask_ = nullptr;
  double tokens_ = 0;
};

}  // namespace calq
