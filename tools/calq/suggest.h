// "Did you mean": the known name nearest to a mistyped command, option or value. CLI11 has no
// suggestions of its own; the command line asks here when a name is unknown.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace calq::cli {

// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
// neighbouring characters each cost 1 ("quantise" -> "quantize": 1, "--group_size" -> "--group-size": 1).
size_t edit_distance(std::string_view a, std::string_view b);

// The entry of `known` nearest to `typed` when it is close enough to be a typo (distance at most a
// third of the name, at least 1, at most 3; leading dashes ignored), or one that `typed` abbreviates
// or extends ("--calib" for "--calibration"); "" when none is. Ties go to the first in `known`.
std::string nearest(const std::string& typed, const std::vector<std::string>& known);

// " (did you mean 'X'?)" for nearest(typed, known), or "".
std::string did_you_mean(const std::string& typed, const std::vector<std::string>& known);

}  // namespace calq::cli
