#include "suggest.h"

#include <algorithm>

namespace calq::cli {

size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      const size_t sub = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + sub});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

namespace {
std::string_view bare(std::string_view s) {
  while (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return s;
}
}  // namespace

std::string nearest(const std::string& typed, const std::vector<std::string>& known) {
  const std::string_view t = bare(typed);
  if (t.empty()) return "";
  std::string best;
  size_t best_d = size_t(-1);
  for (const auto& k : known) {
    const std::string_view b = bare(k);
    if (b.empty() || b == t) continue;
    size_t d = edit_distance(t, b);
    const size_t limit = std::clamp<size_t>(std::max(t.size(), b.size()) / 3, 1, 3);
    const bool prefix = std::min(t.size(), b.size()) >= 3 && (b.starts_with(t) || t.starts_with(b));
    if (d > limit && !prefix) continue;
    if (d > limit) d = limit + 1;  // an abbreviation ranks after every real typo
    if (d < best_d) best_d = d, best = k;
  }
  return best;
}

std::string did_you_mean(const std::string& typed, const std::vector<std::string>& known) {
  const std::string n = nearest(typed, known);
  return n.empty() ? "" : " (did you mean '" + n + "'?)";
}

}  // namespace calq::cli
