// Outlier analysis of activation statistics (observe/act_stats.h). Criteria, each per tensor and
// input channel:
//  * LLM.int8 (Dettmers et al. 2022, §4): a hidden dimension is an outlier feature when |x| >=
//    6.0 in at least 6% of the tokens in at least 25% of the layers. Here a layer counts when
//    any of its hidden-width linear inputs (attention input q/k/v, MLP input gate/up/fc1) has
//    |x| >= threshold in >= token_share of its tokens. The magnitude threshold is the one the
//    statistics were collected with (ActStats thresholds[0], `calq stats --int8-threshold`,
//    default 6.0): it is absolute, so it only means "outlier" for a model whose typical
//    activations are O(1) (large pretrained LLMs); tiny or differently scaled models need a
//    threshold in their own units, or the scale-free relative criterion.
//  * relative (scale-free): channel absmax > k × the median channel absmax of the tensor.
//    Default k = 8: an outlier channel dominates a per-tensor INT8 grid (it takes > 1/8 of the
//    scale headroom away from the median channel; cf. SmoothQuant, Xiao et al. 2023, §3).
//  * massive (Sun et al. 2024, "Massive activations in LLMs"): |x| > 100 and > 1000 × the
//    median |x| of the tensor. The median |x| is estimated from the log2 histogram (log-linear
//    interpolation inside the median's octave).
// The report also lists, per tensor, the rows (sample, position, token) holding the largest values.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "observe/act_stats.h"
#include "util/json.h"

namespace calq {

struct OutlierConfig {
  double rel_k = 8.0;             // relative outlier: absmax > rel_k × median channel absmax
  double massive_abs = 100.0;     // massive: |x| > massive_abs ...
  double massive_ratio = 1000.0;  // ... and > massive_ratio × median |x|
  double int8_token_share = 0.06;
  double int8_layer_share = 0.25;
  int top = 5;                    // top values listed per tensor
};

struct TensorOutliers {
  std::string name;
  std::vector<std::string> modules;
  std::string kind;
  int layer = -1;
  int64_t cols = 0;
  double count = 0;
  float absmax = 0;
  int argmax_channel = -1;
  double median_channel_absmax = 0;
  double median_abs = 0;           // median |x| over all values (histogram estimate)
  double kurtosis = 0;
  double share_ge[2] = {0, 0};
  std::vector<int> relative;       // channels, by descending absmax
  std::vector<int> massive;
  std::vector<int> int8_tokens;    // channels with |x| >= thresholds[0] in >= token_share of tokens
  std::vector<TopValue> top;
  double ratio() const { return median_channel_absmax > 0 ? absmax / median_channel_absmax : 0; }
};

struct Int8Channel {
  int channel = -1;
  int layers = 0;                  // layers where the channel meets the token criterion
};

struct OutlierReport {
  OutlierConfig cfg;
  double thresholds[2] = {6.0, 20.0};
  int num_layers = 0;
  std::vector<TensorOutliers> tensors;
  std::vector<Int8Channel> int8;   // channels meeting the full LLM.int8 criterion
  // Per input kind (attn_in, mlp_in, ...): channels flagged in any tensor of that kind, with the
  // number of tensors (= layers) flagging them, most frequent first.
  std::map<std::string, std::vector<std::pair<int, int>>> relative_by_kind, massive_by_kind;
};

// Median of v (average of the two middle values for even sizes); 0 for an empty vector.
double median_of(std::vector<double> v);
// Median |x| from a log2 histogram (see observe/act_stats.h for the bins).
double hist_median(const std::array<double, kHistBins>& hist);
// Channels with absmax > k × median absmax, by descending absmax.
std::vector<int> relative_outliers(const std::vector<float>& absmax, double k);

OutlierReport analyze_outliers(const ActStats& s, const OutlierConfig& cfg = {});

// Describes where a top value came from (e.g. the token's text, with some context before it).
using TopValueText = std::function<std::string(const TopValue&)>;

// Machine-readable report; `text` (optional) adds a "text" field to each top value.
Json outlier_report_json(const OutlierReport& r, const TopValueText& text = {});
// Aligned human-readable tables: the per-layer table (attention vs MLP inputs, residual), the
// channel summary per criterion, and the largest values with their tokens.
std::string format_outlier_report(const OutlierReport& r, const TopValueText& text = {});

}  // namespace calq
