// The report page: one self-contained HTML file. Figures are gnuplot's SVG inlined (ids
// prefixed per figure so that they cannot collide), tables are HTML tables, styles are inline,
// and a Content-Security-Policy forbids every fetch (default-src 'none'; images only as data:
// URIs), so the page makes no network request, opens offline and prints one figure per block.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "report/figure.h"
#include "report/input.h"

namespace calq::report {

std::string html_escape(const std::string& s);

// gnuplot's SVG document as an element to inline: XML prolog dropped, every id and reference
// prefixed with "<prefix>-", the document title replaced by `title`.
std::string inline_svg(const std::string& svg, const std::string& prefix, const std::string& title);

// The page. `svgs` maps figure ids to their SVG text (as gnuplot wrote it).
std::string report_html(const ReportInput& in, const std::vector<Section>& sections,
                        const std::map<std::string, std::string>& svgs);

}  // namespace calq::report
