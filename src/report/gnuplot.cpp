#include "report/gnuplot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/mapped_file.h"
#include "report/palette.h"

extern char** environ;

namespace calq::report {

namespace fs = std::filesystem;

// ---- finding and running gnuplot -------------------------------------------------------------

namespace {

bool executable(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// Where gnuplot is looked for when the caller gives no search path.
const char* kDefaultSearchPath = "/usr/local/bin:/usr/bin:/bin";
const char* kInstallHint = "install Debian's gnuplot-nox (`apt-get install gnuplot-nox`, or scripts/deps.sh)";

}  // namespace

std::string find_gnuplot(const std::string& configured, const std::string& search_path, const std::string& configured_by) {
  if (!configured.empty()) {
    if (!executable(configured))
      throw MissingToolError((configured_by.empty() ? "gnuplot " : configured_by + "=") + configured + " is not an executable file");
    return configured;
  }
  std::stringstream dirs(search_path.empty() ? std::string(kDefaultSearchPath) : search_path);
  std::string d;
  while (std::getline(dirs, d, ':'))
    if (!d.empty() && executable(d + "/gnuplot")) return d + "/gnuplot";
  throw MissingToolError(std::string("gnuplot not found on PATH: calq report draws its figures with gnuplot; ") +
                         kInstallHint);
}

namespace {

// Runs `prog script` with stdout and stderr into `log`; returns the exit status (-1: no start).
int run_program(const std::string& prog, const std::string& script, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv = {const_cast<char*>(prog.c_str()), const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, prog.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string first_lines(const std::string& path, int n) {
  std::ifstream f(path);
  std::string line, out;
  while (n-- > 0 && std::getline(f, line)) out += (out.empty() ? "" : " | ") + line;
  return out;
}

// ---- script ------------------------------------------------------------------------------

// A gnuplot double-quoted string shown in enhanced text mode: backslash escapes for the string
// itself and for enhanced-mode markup (^ _ @ & ~ { }), so labels print literally.
std::string q(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    else if (std::string("^_@&~{}").find(c) != std::string::npos) o += "\\\\";
    if (c == '\n') {
      o += ' ';
      continue;
    }
    o += c;
  }
  return o + "\"";
}

// A plain gnuplot double-quoted string (file names): only the string's own escapes.
std::string qpath(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

void axis_settings(std::ostream& o, const char* ax, const Axis& a, bool heat_numeric) {
  if (!a.label.empty()) o << "set " << ax << "label " << q(a.label) << "\n";
  if (a.log) {
    o << "set logscale " << ax << " " << a.log_base << "\n";
    if (a.log_base == 2) o << "set format " << ax << " \"2^{%L}\"\n";
    else o << "set format " << ax << " \"10^{%L}\"\n";
  }
  if (!a.categories.empty()) {
    o << "set " << ax << "tics (";
    for (size_t i = 0; i < a.categories.size(); ++i) o << (i ? ", " : "") << q(a.categories[i]) << " " << i;
    size_t longest = 0;
    for (const auto& c : a.categories) longest = std::max(longest, c.size());
    const bool rotate = std::string(ax) == "x" && a.categories.size() * (longest + 2) > 40;
    o << ")" << (rotate ? " rotate by -30" : "") << "\n";
    o << "set " << ax << "range [-0.5:" << a.categories.size() - 0.5 << "]\n";
  } else if (!std::isnan(a.min) || !std::isnan(a.max)) {
    o << "set " << ax << "range [" << (std::isnan(a.min) ? "*" : num(a.min)) << ":"
      << (std::isnan(a.max) ? "*" : num(a.max)) << "]\n";
  }
  if (!std::isnan(a.step) && a.categories.empty()) o << "set " << ax << "tics " << num(a.step) << "\n";
  if (heat_numeric) o << "set " << ax << "tics out\n";
}

// Explicit tics at "nice" multiples of 10^k inside [lo, hi], for a log axis spanning less than two
// decades (gnuplot would label only the decades, maybe none): coarser steps for wider spans.
std::string nice_log_tics(double lo, double hi) {
  const double span = hi / lo;
  const std::vector<double> steps = span >= 10  ? std::vector<double>{1, 2, 5}
                                    : span >= 3 ? std::vector<double>{1, 1.5, 2, 3, 5, 7}
                                                : std::vector<double>{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8};
  std::vector<double> v;
  for (int k = int(std::floor(std::log10(lo))); k <= int(std::ceil(std::log10(hi))); ++k)
    for (double m : steps) {
      const double x = m * std::pow(10.0, k);
      if (x >= lo * 0.999 && x <= hi * 1.001) v.push_back(x);
    }
  if (v.size() < 2) v = {lo, hi};
  std::string out = "(";
  for (size_t i = 0; i < v.size(); ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3g", v[i]);
    out += (i ? ", " : "") + std::string(b);
  }
  return out + ")";
}

// Range of a panel's positive y values (points, bars, reference lines).
std::pair<double, double> y_span(const Panel& p) {
  double lo = INFINITY, hi = 0;
  auto add = [&](double y) {
    if (y > 0) lo = std::min(lo, y), hi = std::max(hi, y);
  };
  for (const auto& s : p.series) {
    for (double y : s.y) add(y);
    for (double y : s.lo) add(y);
    for (double y : s.hi) add(y);
  }
  for (const auto& h : p.hlines) add(h.y);
  return {lo, hi};
}

void datablocks(std::ostream& o, const Panel& p, size_t pi) {
  for (size_t si = 0; si < p.series.size(); ++si) {
    const Series& s = p.series[si];
    o << "$p" << pi << "s" << si << " << EOD\n";
    for (size_t i = 0; i < s.y.size(); ++i) {
      o << num(s.x[i]) << " " << num(s.y[i]);
      if (s.has_bars()) {
        double lo = s.lo[i];
        if (p.y.log && !(lo > 0)) lo = s.y[i];  // a bar cannot reach zero on a log axis
        o << " " << num(lo) << " " << num(s.hi[i]);
      }
      o << "\n";
    }
    o << "EOD\n";
  }
  if (p.heat) {
    o << "$p" << pi << "heat << EOD\n";
    for (const auto& row : p.heat->z) {
      for (size_t c = 0; c < row.size(); ++c) o << (c ? " " : "") << num(row[c]);
      o << "\n";
    }
    o << "EOD\n";
  }
}

void heat_panel(std::ostream& o, const Panel& p, size_t pi) {
  const Heatmap& h = *p.heat;
  const size_t rows = h.z.size(), cols = rows ? h.z[0].size() : 0;
  o << "set palette defined (" << heat_palette() << ")\n";
  o << "set cblabel " << q(h.cb_label) << "\n";
  double lo = INFINITY, hi = 0;
  for (const auto& row : h.z)
    for (double v : row)
      if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isnan(h.zmin)) lo = h.zmin;
  if (!std::isnan(h.zmax)) hi = h.zmax;
  if (h.log && hi > 0) {
    o << "set logscale cb 10\n";
    if (hi / lo >= 100) o << "set format cb \"10^{%L}\"\n";
    else o << "set format cb \"%g\"\nset cbtics " << nice_log_tics(lo, hi) << "\n";
  }
  if (!std::isnan(h.zmin) || !std::isnan(h.zmax))
    o << "set cbrange [" << (std::isnan(h.zmin) ? "*" : num(h.zmin)) << ":" << (std::isnan(h.zmax) ? "*" : num(h.zmax))
      << "]\n";
  Axis x = p.x, y = p.y;
  x.categories = h.xlabels;
  y.categories = h.ylabels;
  axis_settings(o, "x", x, h.xlabels.empty());
  axis_settings(o, "y", y, h.ylabels.empty());
  if (h.xlabels.empty()) o << "set xrange [-0.5:" << cols - 0.5 << "]\n";
  if (h.ylabels.empty()) o << "set yrange [-0.5:" << rows - 0.5 << "]\nset ytics 1\n";
  else o << "set yrange [" << rows - 0.5 << ":-0.5]\n";  // first set on top, as in a table
  o << "plot $p" << pi << "heat matrix with image notitle";
  if (h.annotate) {
    // White text on the dark half of the colour range, black on the light half.
    const std::string mid = "(" + num(std::isnan(h.zmin) ? 0 : h.zmin) + "+" + num(std::isnan(h.zmax) ? 1 : h.zmax) + ")/2";
    for (const char* side : {"<", ">="})
      o << ", $p" << pi << "heat matrix using 1:2:($3" << side << mid << " ? sprintf(\"%.2f\",$3) : \"\") with labels tc rgb "
        << (side[0] == '<' ? "\"#ffffff\"" : "\"#000000\"") << " font \",9\" notitle";
  }
  o << "\n";
}

void series_panel(std::ostream& o, const Panel& p, size_t pi) {
  axis_settings(o, "x", p.x, false);
  axis_settings(o, "y", p.y, false);
  const auto [lo, hi] = y_span(p);
  if (p.y.log && hi > 0 && hi / lo < 100) {
    // Labelled tics inside the data's span, and the range fitted to the data (plus a margin)
    // instead of stretched to whole decades.
    o << "set format y \"%g\"\nset ytics " << nice_log_tics(lo, hi) << "\n";
    if (std::isnan(p.y.min) && std::isnan(p.y.max)) o << "set autoscale yfix\nset offsets 0, 0, graph 0.06, graph 0.06\n";
  }
  o << "set grid xtics ytics lc rgb \"#dddddd\" lw 1 dt 1\n";
  std::vector<std::string> parts;
  for (size_t si = 0; si < p.series.size(); ++si) {
    const Series& s = p.series[si];
    std::ostringstream e;
    const std::string src = "$p" + std::to_string(pi) + "s" + std::to_string(si);
    if (s.has_bars())
      e << src << " using 1:2:3:4 with " << (s.lines ? "yerrorlines" : "yerrorbars");
    else
      e << src << " using 1:2 with " << (s.point > 0 ? (s.lines ? "linespoints" : "points") : "lines");
    e << " lc rgb " << q(s.color) << " lw 1.6 dt " << s.dash;
    if (s.point > 0) e << " pt " << s.point << " ps 0.9";
    e << " title " << q(s.name);
    parts.push_back(e.str());
  }
  for (const auto& h : p.hlines)
    parts.push_back(num(h.y) + " with lines lc rgb " + q(h.color) + " lw 1.4 dt " + std::to_string(h.dash) + " title " +
                    q(h.name));
  o << "plot ";
  for (size_t i = 0; i < parts.size(); ++i) o << (i ? ", \\\n     " : "") << parts[i];
  o << "\n";
}

void body(std::ostream& o, const Figure& f) {
  const size_t n = f.panels.size();
  const size_t cols = std::max<size_t>(1, std::min<size_t>(size_t(f.columns), n));
  const size_t rows = (n + cols - 1) / cols;
  if (n > 1) o << "set multiplot layout " << rows << "," << cols << "\n";
  for (size_t pi = 0; pi < n; ++pi) {
    const Panel& p = f.panels[pi];
    o << "reset\n";
    o << "set border 3 lw 1\nset tics nomirror\n";
    // The key goes below the plot, so that it never covers data and leaves the full width.
    o << "set key below horizontal Left reverse samplen 2 spacing 1.1 width 1 font \",9\"\n";
    if (!p.legend) o << "unset key\n";
    if (!p.title.empty()) o << "set title " << q(p.title) << "\n";
    if (p.heat) heat_panel(o, p, pi);
    else series_panel(o, p, pi);
  }
  if (n > 1) o << "unset multiplot\n";
}

}  // namespace

std::string gnuplot_script(const Figure& f, const std::string& svg_path, const std::string& png_path) {
  const size_t n = f.panels.size();
  const size_t cols = std::max<size_t>(1, std::min<size_t>(size_t(f.columns), n));
  const int height = int((n + cols - 1) / cols) * f.panel_height;
  std::ostringstream o;
  o << "# calq report: figure " << f.id << "\n";
  o << "set encoding utf8\n";
  for (size_t pi = 0; pi < n; ++pi) datablocks(o, f.panels[pi], pi);
  o << "set term svg size " << f.width << "," << height << " dynamic enhanced font \"DejaVu Sans,11\" background rgb \"#ffffff\"\n";
  o << "set output " << qpath(svg_path) << "\n";
  body(o, f);
  o << "unset output\n";
  if (!png_path.empty()) {
    o << "set term pngcairo size " << f.width * 2 << "," << height * 2
      << " enhanced font \"DejaVu Sans,20\" linewidth 2 background rgb \"#ffffff\"\n";
    o << "set output " << qpath(png_path) << "\n";
    body(o, f);
    o << "unset output\n";
  }
  return o.str();
}

void render_figure(const Figure& f, const std::string& gnuplot, const std::string& dir, const std::string& work) {
  const std::string svg = (fs::path(dir) / (f.id + ".svg")).string();
  const std::string png = f.raster ? (fs::path(dir) / (f.id + ".png")).string() : "";
  const std::string script = (fs::path(work) / (f.id + ".gp")).string();
  const std::string log = (fs::path(work) / (f.id + ".log")).string();
  write_file_atomic(script, gnuplot_script(f, svg, png));
  std::error_code ec;
  fs::remove(svg, ec);
  const int rc = run_program(gnuplot, script, log);
  if (rc == -1) throw MissingToolError("cannot run " + gnuplot + ": " + kInstallHint);
  if (rc != 0 || !fs::exists(svg) || fs::file_size(svg) == 0)
    throw ToolError("gnuplot failed on figure " + f.id + " (exit status " + std::to_string(rc) + ", script " + script +
                    "): " + first_lines(log, 3));
}

}  // namespace calq::report
