#include "report/palette.h"

#include <map>

namespace calq::report {

const std::vector<std::string>& okabe_ito() {
  // blue, vermillion, bluish green, orange, reddish purple, sky blue, black, yellow
  static const std::vector<std::string> c = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                             "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
  return c;
}

std::string method_color(const std::string& method) {
  static const std::map<std::string, std::string> m = {
      {"float", "#000000"},       {"gptq", "#0072B2"}, {"awq", "#D55E00"}, {"smoothquant", "#009E73"},
      {"naive-w8a8", "#E69F00"}, {"rtn", "#CC79A7"}};
  auto it = m.find(method);
  return it == m.end() ? "#56B4E9" : it->second;
}

Style indexed_style(size_t i) {
  // Point types that stay distinct in print: filled circle, square, triangle, diamond, pentagon.
  static const int points[] = {7, 5, 9, 13, 15};
  const auto& c = okabe_ito();
  return {c[i % c.size()], int(1 + i / c.size()), points[(i / c.size() + i) % 5]};
}

Style set_style(size_t group, size_t i) {
  static const int points[] = {7, 5, 9, 13};  // circle, square, triangle, diamond per group
  const auto& c = okabe_ito();
  const size_t n = c.size() - 1;  // yellow left out: too faint for lines on white
  return {c[i % n], int(1 + group % 4), points[(group + i / n) % 4]};
}

std::string kind_color(const std::string& kind) {
  if (kind == "attn_in") return "#0072B2";
  if (kind == "mlp_in") return "#D55E00";
  if (kind == "attn_out") return "#56B4E9";
  if (kind == "mlp_out") return "#E69F00";
  return "#000000";
}

std::string kind_label(const std::string& kind) {
  if (kind == "attn_in") return "attention input (q/k/v)";
  if (kind == "mlp_in") return "MLP input (gate/up/fc1)";
  if (kind == "attn_out") return "attention output proj. input (o)";
  if (kind == "mlp_out") return "MLP down-proj. input (down/fc2)";
  if (kind == "residual") return "residual stream";
  return kind;
}

std::string heat_palette() {
  // viridis at 9 stops (matplotlib's _viridis_data, sampled).
  return "0 '#440154', 0.125 '#472D7B', 0.25 '#3B528B', 0.375 '#2C728E', 0.5 '#21918C', "
         "0.625 '#28AE80', 0.75 '#5EC962', 0.875 '#ADDC30', 1 '#FDE725'";
}

}  // namespace calq::report
