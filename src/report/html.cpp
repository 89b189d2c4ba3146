#include "report/html.h"

#include <set>
#include <sstream>

namespace calq::report {

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string inline_svg(const std::string& svg, const std::string& prefix, const std::string& title) {
  const size_t start = svg.find("<svg");
  if (start == std::string::npos) throw FormatError("figure " + prefix + ": the SVG file has no <svg> element");
  std::string s = svg.substr(start);
  // Prefix ids and the references to them (gnuplot's point shapes, filters, plot groups).
  static const char* patterns[] = {" id=\"", " id='", "href=\"#", "href='#", "url(#"};
  std::string out;
  out.reserve(s.size() + s.size() / 16);
  for (size_t i = 0; i < s.size();) {
    bool hit = false;
    for (const char* p : patterns) {
      const size_t n = std::char_traits<char>::length(p);
      if (s.compare(i, n, p) == 0) {
        out.append(p, n);
        out += prefix + "-";
        i += n;
        hit = true;
        break;
      }
    }
    if (!hit) out += s[i++];
  }
  const size_t t = out.find("<title>Gnuplot</title>");
  if (t != std::string::npos) out.replace(t, 22, "<title>" + html_escape(title) + "</title>");
  out.replace(0, 4, "<svg class=\"plot\" role=\"img\"");
  return out;
}

namespace {

const char* kStyle = R"(
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5em 2em 4em; color: #111; background: #fff; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.35em; margin-top: 2.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 0 0 0.4em; }
p.meta { color: #555; margin-top: 0; }
nav ol { columns: 2; font-size: 0.95em; }
figure.fig { margin: 1.6em 0; padding: 0.8em 0 0.4em; border-top: 1px solid #eee; }
svg.plot { width: 100%; height: auto; display: block; }
svg.plot image { image-rendering: pixelated; }
figcaption { font-size: 0.92em; color: #333; margin-top: 0.4em; }
figcaption .files a, .files a { color: #0072B2; margin-right: 0.6em; }
p.omitted { color: #666; font-style: italic; margin: 0.3em 0; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.5em 0 1.6em; }
caption { text-align: left; font-size: 0.95em; padding-bottom: 0.3em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; }
tr.float td { font-weight: bold; }
code { font-size: 0.9em; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  figure.fig, table { break-inside: avoid; }
  h2 { break-after: avoid; }
  .files { display: none; }
}
)";

void figure_html(std::ostream& o, const Figure& f, const std::map<std::string, std::string>& svgs) {
  o << "<figure class=\"fig\" id=\"" << f.id << "\" data-elements=\"" << f.elements() << "\" data-markers=\""
    << f.markers() << "\" data-images=\"" << f.images() << "\" data-image-sizes=\"";
  // Pixel size of every heat-map image (columns x rows), for checks of what the browser shows.
  bool first = true;
  for (const auto& p : f.panels)
    if (p.heat) {
      o << (first ? "" : " ") << (p.heat->z.empty() ? 0 : p.heat->z[0].size()) << "x" << p.heat->z.size();
      first = false;
    }
  o << "\">\n";
  o << "<h3>" << html_escape(f.title) << "</h3>\n";
  auto it = svgs.find(f.id);
  if (it != svgs.end()) o << inline_svg(it->second, f.id, f.title) << "\n";
  o << "<figcaption>" << html_escape(f.caption) << " <span class=\"files\"><a href=\"" << f.id << ".svg\">SVG</a>";
  if (f.raster) o << "<a href=\"" << f.id << ".png\">PNG</a>";
  o << "<a href=\"" << f.id << ".csv\">data (CSV)</a></span></figcaption>\n</figure>\n";
}

void table_html(std::ostream& o, const PageTable& t) {
  o << "<table id=\"" << t.id << "\">\n<caption>" << html_escape(t.caption) << " <span class=\"files\"><a href=\"" << t.id
    << ".csv\">CSV</a></span></caption>\n<tr>";
  for (const auto& h : t.table.header) o << "<th>" << html_escape(h) << "</th>";
  o << "</tr>\n";
  for (const auto& r : t.table.rows) {
    o << (!r.empty() && r[0] == "float" ? "<tr class=\"float\">" : "<tr>");
    for (const auto& c : r) o << "<td>" << html_escape(c) << "</td>";
    o << "</tr>\n";
  }
  o << "</table>\n";
}

}  // namespace

std::string report_html(const ReportInput& in, const std::vector<Section>& sections,
                        const std::map<std::string, std::string>& svgs) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
       "img-src data:\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>" << html_escape(in.title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  const auto models = in.models();
  const auto sets = in.calib_sets();
  o << "<h1>" << html_escape(in.title) << "</h1>\n<p class=\"meta\">calq " << CALQ_VERSION << " · " << models.size()
    << " model(s): ";
  for (size_t i = 0; i < models.size(); ++i)
    o << (i ? ", " : "") << html_escape(models[i]) << (in.synthetic(models[i]) ? " (synthetic)" : "");
  o << " · " << sets.size() << " calibration set(s) · " << in.results.size() << " results · " << in.stats.size()
    << " statistics files. Every figure has its data as CSV beside this page; <a href=\"input.json\">input.json</a> "
       "holds the input.</p>\n";
  o << "<nav><ol>\n";
  for (const auto& s : sections) o << "<li><a href=\"#s-" << s.id << "\">" << html_escape(s.title) << "</a></li>\n";
  o << "</ol></nav>\n";
  for (const auto& s : sections) {
    o << "<section id=\"s-" << s.id << "\">\n<h2>" << html_escape(s.title) << "</h2>\n";
    if (!s.intro.empty()) o << "<p>" << html_escape(s.intro) << "</p>\n";
    for (const auto& f : s.figures) figure_html(o, f, svgs);
    for (const auto& t : s.tables) table_html(o, t);
    for (const auto& m : s.omitted)
      o << "<p class=\"omitted\">Not drawn: " << html_escape(m.what) << " — " << html_escape(m.why) << ".</p>\n";
    o << "</section>\n";
  }
  o << "</body>\n</html>\n";
  return o.str();
}

}  // namespace calq::report
