#include "report/report.h"

#include <filesystem>
#include <map>
#include <set>

#include "io/mapped_file.h"
#include "report/gnuplot.h"
#include "report/html.h"

namespace calq::report {

namespace fs = std::filesystem;

std::vector<Section> report_sections(const ReportInput& in, const FigureOptions& opt) {
  auto results = results_sections(in, opt);
  auto stats = stats_sections(in, opt);
  std::map<std::string, Section> by_id;
  for (auto& s : results) by_id.emplace(s.id, std::move(s));
  for (auto& s : stats) by_id.emplace(s.id, std::move(s));
  // The order: calibration-set figures, robustness overview, histograms, depth, heat
  // maps, similarity and convergence, bits, tables.
  std::vector<Section> out;
  for (const char* id : {"calibration", "robustness", "histograms", "depth", "heatmaps", "similarity", "bits", "tables"})
    if (auto it = by_id.find(id); it != by_id.end()) out.push_back(std::move(it->second));
  // A panel without anything to draw (statistics collected without attention inputs, say) is left
  // out, and a figure left without panels becomes a note.
  for (auto& s : out) {
    std::vector<Figure> kept;
    for (auto& f : s.figures) {
      std::erase_if(f.panels, [](const Panel& p) {
        return p.heat ? p.heat->z.empty() || p.heat->z[0].empty() : p.series.empty();
      });
      if (f.panels.empty()) s.omitted.push_back({f.title, "no data for any of its panels"});
      else kept.push_back(std::move(f));
    }
    s.figures = std::move(kept);
  }
  // Labels that slug alike ("a.b", "a_b") would give one file name to two figures.
  std::set<std::string> ids;
  for (auto& s : out) {
    for (auto& f : s.figures) {
      std::string id = f.id;
      for (int k = 2; !ids.insert(id).second; ++k) id = f.id + "-" + std::to_string(k);
      f.id = id;
    }
    for (auto& t : s.tables) {
      std::string id = t.id;
      for (int k = 2; !ids.insert(id).second; ++k) id = t.id + "-" + std::to_string(k);
      t.id = id;
    }
  }
  return out;
}

ReportSummary write_report(const ReportInput& in, const std::string& out_dir, const ReportOptions& opt) {
  in.validate();
  const std::string gnuplot = opt.gnuplot.empty() ? find_gnuplot() : opt.gnuplot;
  const auto sections = report_sections(in, opt.figures);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw IoError(out_dir + ": cannot create the report folder: " + ec.message());
  const fs::path work = fs::path(out_dir) / "gnuplot";
  fs::create_directories(work, ec);
  if (ec) throw IoError(work.string() + ": cannot create: " + ec.message());

  ReportSummary sum;
  std::map<std::string, std::string> svgs;
  for (const auto& s : sections) {
    for (const auto& f : s.figures) {
      render_figure(f, gnuplot, out_dir, work.string());
      svgs[f.id] = read_file((fs::path(out_dir) / (f.id + ".svg")).string());
      write_file_atomic((fs::path(out_dir) / (f.id + ".csv")).string(), f.data.csv());
      sum.figure_ids.push_back(f.id);
      ++sum.figures;
    }
    for (const auto& t : s.tables) {
      write_file_atomic((fs::path(out_dir) / (t.id + ".csv")).string(), t.table.csv());
      ++sum.tables;
    }
    sum.omitted += int(s.omitted.size());
  }
  write_file_atomic((fs::path(out_dir) / "input.json").string(), report_input_to_json(in).dump(1) + "\n");
  sum.index = (fs::path(out_dir) / "index.html").string();
  write_file_atomic(sum.index, report_html(in, sections, svgs));
  if (!opt.keep_scripts) fs::remove_all(work, ec);
  return sum;
}

}  // namespace calq::report
