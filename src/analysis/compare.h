// Comparing activation statistics collected on different calibration sets, and the convergence
// of one set's statistics as tokens are added.
//
// Per tensor (matched by module name):
//  * cosine similarity and Spearman rank correlation of the per-channel scales, for the RMS
//    sqrt(Σx²/n) (what the llama.cpp importance matrix and AWQ's activation scales use) and
//    for absmax (what SmoothQuant and per-tensor INT8 ranges use);
//  * Jaccard overlap |A∩B| / |A∪B| of the relative outlier-channel sets (1 when both are empty);
//  * relative change of the tensor absmax, absmax_B / absmax_A - 1, and of the overall RMS.
// Convergence: at every snapshot (after 1, 2, 4, ... samples) the same measures between the
// statistics so far and the final ones; when the relative RMS error stays below a tolerance the
// set is large enough for that statistic.
#pragma once
#include <string>
#include <vector>

#include "observe/act_stats.h"
#include "util/json.h"

namespace calq {

double cosine_similarity(const std::vector<double>& a, const std::vector<double>& b);
// Spearman's rho: Pearson correlation of the ranks (ties get their average rank).
double spearman(const std::vector<double>& a, const std::vector<double>& b);
double jaccard(const std::vector<int>& a, const std::vector<int>& b);

struct TensorComparison {
  std::string name, kind;
  int layer = -1;
  int64_t cols = 0;
  double cos_rms = 0, spearman_rms = 0;
  double cos_absmax = 0, spearman_absmax = 0;
  double jaccard_outliers = 0;
  int outliers_a = 0, outliers_b = 0;
  double absmax_change = 0;  // absmax_B / absmax_A - 1
  double rms_change = 0;     // ||rms_B|| / ||rms_A|| - 1
  double kurtosis_a = 0, kurtosis_b = 0;
};

struct StatsComparison {
  std::string a, b;  // labels
  std::vector<TensorComparison> tensors;
  // Means over tensors (all, and per kind).
  struct Summary {
    int tensors = 0;
    double cos_rms = 0, min_cos_rms = 1, spearman_rms = 0, cos_absmax = 0, jaccard = 0;
    double abs_absmax_change = 0;  // mean |absmax change|
    double mean_kurtosis_a = 0, mean_kurtosis_b = 0;
  };
  Summary all;
  std::vector<std::pair<std::string, Summary>> by_kind;
};

// Compares the tensors the two have in common (ArgError when none, or when widths differ).
StatsComparison compare_stats(const ActStats& a, const ActStats& b, const std::string& label_a,
                              const std::string& label_b, double rel_k = 8.0);

struct ConvergencePoint {
  int64_t samples = 0;
  double tokens = 0;
  double mean_cos_rms = 0, min_cos_rms = 1;
  double mean_rel_err_rms = 0, max_rel_err_rms = 0;  // ||rms_n - rms_final|| / ||rms_final||
  double mean_absmax_ratio = 0;                      // max absmax_n / max absmax_final (≤ 1)
  double mean_jaccard = 0;                           // outlier sets vs final
};
// One point per snapshot plus the final totals.
std::vector<ConvergencePoint> convergence_curve(const ActStats& s, double rel_k = 8.0);
// Smallest sample count from which mean_rel_err_rms stays <= tol (-1 if never before the end).
int64_t converged_at(const std::vector<ConvergencePoint>& curve, double tol);

Json comparison_json(const StatsComparison& c);
Json convergence_json(const std::vector<ConvergencePoint>& curve);
// Aligned tables: summary line per pair; per-kind means; per-tensor rows when `per_tensor`.
std::string format_comparisons(const std::vector<StatsComparison>& cs, bool per_tensor);
std::string format_convergence(const std::string& label, const std::vector<ConvergencePoint>& curve, double tol);

}  // namespace calq
