// Colours of the report: the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design"),
// distinguishable with every common form of colour blindness, and a viridis-like ramp for heat
// maps (perceptually uniform, readable in grey). Every method, model, calibration set and input
// kind keeps one colour in every figure of a report.
#pragma once
#include <string>
#include <vector>

namespace calq::report {

// The eight Okabe–Ito colours, ordered for plotting on white (yellow last: weakest contrast).
const std::vector<std::string>& okabe_ito();

// Fixed colour of a quantization method ("float" black, "gptq" blue, "awq" vermillion,
// "smoothquant" bluish green, "naive-w8a8" orange, "rtn" reddish purple; others sky blue).
std::string method_color(const std::string& method);

// Colour and dash type of the i-th label of an ordered list (models, calibration sets): the
// palette in order, then again with a new dash type, so that no two labels look the same.
struct Style {
  std::string color;
  int dash = 1;
  int point = 7;
};
Style indexed_style(size_t i);

// Style of the i-th calibration set of a group (group index g in calib_groups()): colour by
// position in its group, dash and point type by group, so that a figure of one group gets the
// strongest colours and one of all sets still tells the groups apart.
Style set_style(size_t group, size_t i);

// Colour of an activation input kind ("attn_in", "mlp_in", "attn_out", "mlp_out").
std::string kind_color(const std::string& kind);
// Display name of an input kind: "attention input (q/k/v)", ...
std::string kind_label(const std::string& kind);

// gnuplot `set palette defined (...)` body of the heat-map ramp.
std::string heat_palette();

}  // namespace calq::report
