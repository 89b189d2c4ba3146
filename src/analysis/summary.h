// A per-tensor summary of activation statistics (the JSON summary beside every stats file and
// the table `calq stats` prints): tokens, mean, RMS, absmax and its channel, kurtosis, share of
// values beyond the two thresholds, median |x| (histogram estimate).
#pragma once
#include <string>

#include "observe/act_stats.h"
#include "util/json.h"

namespace calq {

Json stats_summary_json(const ActStats& s);
std::string format_stats_summary(const ActStats& s);

}  // namespace calq
