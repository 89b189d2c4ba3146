// Activation statistics of a model over a calibration set: per observed tensor and input channel
// count, Σx, Σx² (the llama.cpp importance matrix), Σx³, Σx⁴, min, max, absmax and the number of
// values beyond two magnitude thresholds; per tensor a log2|x| histogram and the rows (tokens)
// holding the largest values. Everything is accumulated in double (exact counts) and is
// mergeable: two runs over disjoint sample ranges merge into the statistics of one run over both
// (sums, counts and histograms add, min/max combine, top lists re-rank).
//
// One entry per DISTINCT input: the linear layers that read the same tensor (q/k/v, gate/up) share
// one entry, whose `modules` lists every module name; find() accepts any of them.
//
// File (safetensors, "format" = "calq-stats-v1"): per entry <name>.{sum,sum2,sum3,sum4} F64 [C],
// <name>.{min,max,absmax} F32 [C], <name>.ge0/.ge1 F64 [C], <name>.hist F64 [kHistBins],
// <name>.top F64 [k, 5] (value, sample, position, token, channel); convergence snapshots
// snap.<i>.<name>.{sum2,absmax}; the metadata "stats" holds the JSON header (see meta below).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "util/json.h"

namespace calq {

// log2|x| histogram: bin 0 holds |x| < 2^kHistMinExp (zeros included), bin i in 1..kHistBins-2
// holds 2^(kHistMinExp+i-1) <= |x| < 2^(kHistMinExp+i), the last bin |x| >= 2^(kHistMaxExp+1)
// (inf and NaN included).
constexpr int kHistMinExp = -32;
constexpr int kHistMaxExp = 31;
constexpr int kHistBins = kHistMaxExp - kHistMinExp + 3;  // 66
// Lower edge of histogram bin i (0 for bin 0).
double hist_bin_lower(int i);

// One of the largest-magnitude values of a tensor: the row's largest |x| and where it came from.
struct TopValue {
  float value = 0;        // signed
  int64_t sample = -1;    // calibration-set row (-1: unknown)
  int64_t position = -1;  // token position within the sample
  int32_t token = -1;     // token id at that position
  int32_t channel = -1;   // input channel
};

struct TensorStats {
  std::string name;                  // leader module name (first that read this input)
  std::vector<std::string> modules;  // every module reading this input (name first)
  std::string kind;                  // "attn_in" (q/k/v), "attn_out" (o), "mlp_in" (gate/up/fc1),
                                     // "mlp_out" (down/fc2), "residual", "lm_head"
  int layer = -1;                    // decoder layer (-1: lm_head)
  int64_t cols = 0;
  double count = 0;                  // rows (tokens) accumulated
  std::vector<double> sum, sum2, sum3, sum4;  // per channel
  std::vector<float> min, max;                // per channel (+inf / -inf before any row)
  std::vector<double> ge[2];                  // per channel: #|x| >= thresholds[0], [1]
  std::array<double, kHistBins> hist{};
  std::vector<TopValue> top;                  // sorted by |value| descending

  void init(int64_t cols);
  float absmax(int64_t c) const;
  std::vector<float> absmax_vec() const;
  // sqrt(Σx²/count) per channel: the per-channel scale compared across calibration sets.
  std::vector<double> rms_vec() const;
  // Over all values of the tensor: mean, Pearson kurtosis E[(x-μ)⁴]/σ⁴ (3 for a Gaussian).
  double mean() const;
  double kurtosis() const;
  // Fraction of all values with |x| >= thresholds[i].
  double share_ge(int i) const;
  double values() const { return count * double(cols); }
};

// Convergence snapshot: cumulative Σx² and absmax per entry after `samples` samples.
struct StatsSnapshot {
  int64_t samples = 0;
  double tokens = 0;
  std::vector<std::vector<double>> sum2;   // aligned with ActStats::tensors
  std::vector<std::vector<float>> absmax;
};

struct ActStats {
  // "model" {path, model_type, num_layers, hidden_size, config_sha256}, "thresholds" [t0, t1],
  // "topn", "sources" [{calib: {builder, token_sha256, tokenizer_sha256, ...}, range: [b, e],
  // tokens}], "samples" (total), "tokens" (total).
  Json meta = Json::object();
  std::vector<TensorStats> tensors;
  std::vector<StatsSnapshot> snapshots;

  // Entry whose modules include `module` (or nullptr).
  const TensorStats* find(const std::string& module) const;
  double thresholds(int i) const;
  int topn() const;

  // Adds `other`, whose samples come after this one's: totals add, snapshots of `other` are
  // offset by this one's totals (so the merged curve is that of the concatenated sample order).
  // Throws ArgError when the two disagree on model, tensors, thresholds or top-N.
  void merge(const ActStats& other);
};

// Keeps the n largest-|value| entries of `top` + `add`, sorted descending (ties: earlier sample).
void merge_top(std::vector<TopValue>& top, const std::vector<TopValue>& add, int n);

void save_stats(const ActStats& s, const std::string& path);
// Throws IoError/FormatError naming the file.
ActStats load_stats(const std::string& path);

}  // namespace calq
