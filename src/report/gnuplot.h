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

// Path of the gnuplot executable: `configured` when not empty (it must be executable; errors name
// it as `configured_by`=PATH, e.g. the CLI's "CALQ_GNUPLOT"), else `gnuplot` in the first folder
// of `search_path` (a PATH-style list; empty: /usr/local/bin:/usr/bin:/bin) that has one.
// MissingToolError, saying which Debian package to install, when there is none. The library reads
// no environment: the command line passes $CALQ_GNUPLOT and $PATH.
std::string find_gnuplot(const std::string& configured = "", const std::string& search_path = "",
                         const std::string& configured_by = "");

// The gnuplot script that draws `f` into `svg_path` (and `png_path` when not empty).
std::string gnuplot_script(const Figure& f, const std::string& svg_path, const std::string& png_path);

// Runs gnuplot on the figure: writes <dir>/<id>.svg (and <dir>/<id>.png for raster figures).
// The script goes to <work>/<id>.gp, gnuplot's messages to <work>/<id>.log. ToolError naming the
// figure and the script when gnuplot fails or writes no SVG.
void render_figure(const Figure& f, const std::string& gnuplot, const std::string& dir, const std::string& work);

}  // namespace calq::report
