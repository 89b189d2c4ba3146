// A small aligned-column text table for the CLI reports (numbers right-aligned, text left).
#pragma once
#include <string>
#include <vector>

namespace calq {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string str() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// printf-style "%.*g" / "%.*f" helpers for table cells.
std::string fmt_g(double v, int digits = 4);
std::string fmt_f(double v, int decimals = 3);
std::string fmt_pct(double fraction, int decimals = 2);
// "17, 42, 5 (+3)": the first `max` values of a list and how many more.
std::string fmt_list(const std::vector<int>& v, size_t max = 6);
// Text safe for one table cell: control characters escaped, long text cut with "…".
std::string printable(const std::string& s, size_t max_chars = 24);

}  // namespace calq
