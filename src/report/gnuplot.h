// Draws report figures (report/figure.h) with gnuplot (Debian `gnuplot-nox`), run as a
// subprocess: one script per figure, its data inline as datablocks, written as SVG (the svg
// terminal: vector, no JavaScript, embeds heat maps as PNG images) and, for raster figures, as
// PNG (pngcairo). Why gnuplot and not Vega-Lite: docs/report.md, "How it is drawn".
#pragma once
#include <string>

#include "report/figure.h"
#include "util/error.h"

namespace calq::report {

// An external program calq needs is not installed.
class MissingToolError : public Error {
  using Error::Error;
};
// An external program failed (its exit status and the first lines of its messages).
class ToolError : public Error {
  using Error::Error;
};

// Path of the gnuplot executable: $CALQ_GNUPLOT when set (must be executable), else `gnuplot`
// on $PATH. MissingToolError, saying which Debian package to install, when there is none.
std::string find_gnuplot();

// The gnuplot script that draws `f` into `svg_path` (and `png_path` when not empty).
std::string gnuplot_script(const Figure& f, const std::string& svg_path, const std::string& png_path);

// Runs gnuplot on the figure: writes <dir>/<id>.svg (and <dir>/<id>.png for raster figures).
// The script goes to <work>/<id>.gp, gnuplot's messages to <work>/<id>.log. ToolError naming the
// figure and the script when gnuplot fails or writes no SVG.
void render_figure(const Figure& f, const std::string& gnuplot, const std::string& dir, const std::string& work);

}  // namespace calq::report
