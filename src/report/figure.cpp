#include "report/figure.h"

#include <cstdio>
#include <cstdlib>

namespace calq::report {

std::string fmt_exact(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(b, sizeof b, "%.*g", digits, v);
    if (std::strtod(b, nullptr) == v) break;
  }
  return b;
}

namespace {
std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}
void csv_line(std::string& out, const std::vector<std::string>& cells) {
  for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + csv_cell(cells[i]);
  out += "\n";
}
}  // namespace

std::string Table::csv() const {
  std::string out;
  csv_line(out, header);
  for (const auto& r : rows) csv_line(out, r);
  return out;
}

int Panel::elements() const {
  int n = int(series.size() + hlines.size());
  if (heat) n += heat->annotate ? 3 : 1;  // image, plus a dark-cell and a light-cell label layer
  return n;
}

int Panel::markers() const {
  int n = 0;
  for (const auto& s : series)
    if (s.point > 0) n += int(s.y.size()) + (legend ? 1 : 0);  // every point, plus the legend sample
  return n;
}

int Figure::elements() const {
  int n = 0;
  for (const auto& p : panels) n += p.elements();
  return n;
}

int Figure::markers() const {
  int n = 0;
  for (const auto& p : panels) n += p.markers();
  return n;
}

int Figure::images() const {
  int n = 0;
  for (const auto& p : panels) n += p.heat ? 1 : 0;
  return n;
}

}  // namespace calq::report
