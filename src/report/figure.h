// A figure as data: panels of series (or one heat map per panel), with their axes, and the table
// behind it (its CSV). The figure builders (report/figures.h) produce these from a ReportInput;
// the gnuplot backend (report/gnuplot.h) draws them; the page (report/html.h) shows them. Nothing
// here knows how a figure is drawn, so the numbers are testable without gnuplot.
#pragma once
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace calq::report {

// A table: figure data (CSV) or a page table. Cells are text; numbers are written with enough
// digits to read back exactly (fmt_exact).
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string csv() const;  // RFC 4180: cells with , " or newlines are quoted
};
// Shortest "%.*g" text that reads back to the same double ("nan" for NaN).
std::string fmt_exact(double v);

struct Series {
  std::string name;          // legend entry
  std::string color;         // "#RRGGBB"
  int dash = 1;              // gnuplot dash type (1 solid, 2 dashed, 3 dotted, ...)
  int point = 7;             // gnuplot point type (0: no markers)
  bool lines = true;         // connect the points
  std::vector<double> x, y;  // categorical panels: x is the category index (plus a small dodge)
  std::vector<double> lo, hi;  // optional error bars (same length as y)
  bool has_bars() const { return !lo.empty(); }
};

// A horizontal reference line across the panel (the float baseline).
struct HLine {
  std::string name, color = "#000000";
  double y = 0;
  int dash = 2;
};

struct Heatmap {
  std::vector<std::vector<double>> z;          // rows (y) × columns (x); NaN: no value
  std::vector<std::string> xlabels, ylabels;   // empty: numeric indices
  std::string cb_label;                        // colour-bar label, with its unit
  bool log = false;                            // logarithmic colour scale
  bool annotate = false;                       // print each value in its cell (small matrices)
  double zmin = NAN, zmax = NAN;               // colour range (NaN: from the data)
};

struct Axis {
  std::string label;
  bool log = false;
  int log_base = 10;
  std::vector<std::string> categories;  // non-empty: categorical axis, tics at 0..n-1
  double min = NAN, max = NAN;          // NaN: automatic
  double step = NAN;                    // distance between tics (NaN: automatic)
};

struct Panel {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  std::vector<HLine> hlines;
  std::optional<Heatmap> heat;  // a heat-map panel has no series
  bool legend = true;           // false: no key (a figure whose panels share one shows it on the last row)
  // Plot elements gnuplot draws (series, reference lines, heat map and its label layers).
  int elements() const;
  // Point markers drawn, legend samples included.
  int markers() const;
};

struct Figure {
  std::string id;       // file stem and HTML id: [a-z0-9-], unique in a report
  std::string title;    // heading on the page
  std::string caption;  // how to read it (one or two sentences)
  std::vector<Panel> panels;
  int columns = 1;      // panel grid
  int width = 960, panel_height = 360;  // pixels (SVG user units)
  bool raster = false;  // also write a PNG (large heat maps)
  Table data;           // the numbers behind the figure (CSV)
  int elements() const;
  int markers() const;
  int images() const;   // heat-map panels
};

// A figure that could not be drawn for lack of data: the page shows the note instead.
struct Omitted {
  std::string what, why;
};

// A table shown on the page (and written as <id>.csv).
struct PageTable {
  std::string id, caption;
  Table table;
};

struct Section {
  std::string id, title, intro;
  std::vector<Figure> figures;
  std::vector<PageTable> tables;
  std::vector<Omitted> omitted;
};

}  // namespace calq::report
