// The demo study's report in a real browser (Debian's headless Chromium): built by
// scripts/report_demo.sh into <build>/report-demo, opened from disk, it must log no console
// message, make no network request, and show every figure with the series, points and heat-map
// images its data has. A full-page screenshot is left at <build>/report-demo/screenshot.png for a
// person to look at. Skipped (with the reason) only when chromium or gnuplot is not installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "io/mapped_file.h"
#include "study_fixture.h"
#include "test_util.h"
#include "util/json.h"

namespace calq {
namespace {

namespace fs = std::filesystem;

std::string which(const std::string& prog) {
  std::string out;
  if (test::run_command("command -v " + prog, &out) != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Headless Chromium on a file, with a fresh profile and the background services off.
int chromium(const std::string& bin, const std::string& profile, const std::string& args, std::string* out) {
  return test::run_command("'" + bin + "' --headless --no-sandbox --disable-gpu --disable-background-networking " +
                               "--disable-component-update --disable-sync --no-first-run --disable-extensions " +
                               "--user-data-dir='" + profile + "' " + args,
                           out);
}

std::string attr(const std::string& tag, const std::string& name) {
  const size_t i = tag.find(" " + name + "=\"");
  if (i == std::string::npos) return "";
  const size_t b = i + name.size() + 3;
  return tag.substr(b, tag.find('"', b) - b);
}

// Width x height of a base64 PNG (its IHDR chunk).
std::string png_size(const std::string& b64) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64.substr(0, 40)) {
    const size_t v = alphabet.find(c);
    if (v == std::string::npos) break;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(uint8_t(acc >> bits));
    }
  }
  if (bytes.size() < 24) return "?";
  auto be32 = [&](size_t o) { return (uint32_t(bytes[o]) << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]; };
  return std::to_string(be32(16)) + "x" + std::to_string(be32(20));
}

struct FigureCheck {
  int elements = 0, markers = 0, images = 0;
  std::vector<std::string> image_sizes;
  double height = 0;  // CSS pixels at the page's 1036-pixel figure width
};

// What the browser's DOM holds inside each <figure>: plot groups, distinct point markers (gnuplot
// draws error-bar points twice, on white and in colour, at one position), heat-map images.
std::map<std::string, FigureCheck> rendered_figures(const std::string& dom, std::map<std::string, FigureCheck>* expected) {
  std::map<std::string, FigureCheck> got;
  for (size_t f = dom.find("<figure "); f != std::string::npos; f = dom.find("<figure ", f + 1)) {
    const std::string tag = dom.substr(f, dom.find('>', f) - f);
    const std::string id = attr(tag, "id");
    const size_t end = dom.find("</figure>", f);
    const std::string body = dom.substr(f, end - f);
    FigureCheck e;
    e.elements = std::stoi(attr(tag, "data-elements"));
    e.markers = std::stoi(attr(tag, "data-markers"));
    e.images = std::stoi(attr(tag, "data-images"));
    const std::string sizes = attr(tag, "data-image-sizes");
    for (size_t b = 0; b < sizes.size();) {
      const size_t s = sizes.find(' ', b);
      e.image_sizes.push_back(sizes.substr(b, s == std::string::npos ? s : s - b));
      b = s == std::string::npos ? sizes.size() : s + 1;
    }
    (*expected)[id] = e;
    FigureCheck g;
    std::set<std::pair<std::string, std::string>> points;
    std::string group;
    const std::string plot_id = "id=\"" + id + "-gnuplot_plot_";
    for (size_t i = 0; i < body.size(); ++i) {
      if (body.compare(i, plot_id.size(), plot_id) == 0) {
        group = body.substr(i, body.find('"', i + 4) - i);
        ++g.elements;
      } else if (body.compare(i, 5, "<use ") == 0) {
        const std::string use = body.substr(i, body.find('>', i) - i);
        const std::string tr = attr(use, "transform");
        if (tr.rfind("translate(", 0) == 0 && use.find("#" + id + "-gpPt") != std::string::npos)
          points.insert({group, tr.substr(0, tr.find(')'))});
      } else if (body.compare(i, 7, "<image ") == 0) {
        ++g.images;
        const std::string img = body.substr(i, body.find('>', i) - i);
        const size_t b64 = img.find("base64,");
        g.image_sizes.push_back(b64 == std::string::npos ? "?" : png_size(img.substr(b64 + 7)));
      }
    }
    g.markers = int(points.size());
    const size_t vb = body.find("viewBox=\"0 0 ");
    if (vb != std::string::npos) {
      double w = 0, h = 0;
      std::sscanf(body.c_str() + vb + 13, "%lf %lf", &w, &h);
      if (w > 0) g.height = h * 1036 / w;
    }
    got[id] = g;
  }
  return got;
}

// Page requests in a Chromium net log: URL requests started for a document (initiator set), as
// opposed to the browser's own background traffic (initiator "not an origin").
std::vector<std::string> page_requests(const std::string& netlog_path) {
  std::string text = read_file(netlog_path);
  Json j;
  try {
    j = parse_json(text, netlog_path);
  } catch (const FormatError&) {
    // A net log cut short (browser killed) lacks its closing brackets.
    while (!text.empty() && (text.back() == '\n' || text.back() == ',')) text.pop_back();
    j = parse_json(text + "]}", netlog_path);
  }
  const int start_job = j["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].get<int>();
  std::vector<std::string> out;
  for (const auto& e : j["events"]) {
    if (e.value("type", -1) != start_job || !e.contains("params")) continue;
    const Json& p = e["params"];
    const std::string url = p.value("url", std::string());
    if (url.empty() || url.rfind("file:", 0) == 0 || url.rfind("data:", 0) == 0) continue;  // (end events have no url)
    if (p.value("initiator", std::string()) != "not an origin") out.push_back(url);
  }
  return out;
}

class ReportBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = which("chromium");
    if (chromium_.empty()) chromium_ = which("chromium-browser");
    if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed (Debian package chromium; scripts/deps.sh): the browser check did not run";
    if (which("gnuplot").empty()) GTEST_SKIP() << "gnuplot is not installed (Debian gnuplot-nox; scripts/deps.sh): no report to check";
    profile_ = test::temp_path("report_browser", "profile");
    fs::remove_all(profile_);
    fs::create_directories(profile_);
  }
  void TearDown() override {
    if (!profile_.empty()) fs::remove_all(profile_);
  }
  std::string chromium_, profile_;
};

// The checks themselves catch what they look for: a page with an outside image and a console
// message is caught by both.
TEST_F(ReportBrowser, ChecksCatchRequestsAndConsoleMessages) {
  const std::string page = test::temp_path("report_browser", "bad.html"), log = page + ".net.json";
  write_file_atomic(page, "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/x.png\">"
                          "<script>console.error('boom')</script></body></html>");
  std::string out;
  chromium(chromium_, profile_, "--enable-logging=stderr --v=0 --log-net-log='" + log + "' --dump-dom 'file://" + page + "'", &out);
  EXPECT_NE(out.find(":CONSOLE"), std::string::npos) << out;
  const auto req = page_requests(log);
  ASSERT_EQ(req.size(), 1u);
  EXPECT_EQ(req[0], "http://127.0.0.1:9/x.png");
  fs::remove(page);
  fs::remove(log);
}

// Opens `page` (a report's index.html) in headless Chromium and checks it as a reader would get it:
// no console message, no request that is not file: or data:, every figure of `ids` present, and
// every figure's SVG in the browser's DOM with the plot elements, point markers and heat-map images
// its data has; then leaves a full-page screenshot at <work>/screenshot.png. Returns what was drawn.
std::map<std::string, FigureCheck> check_page(const std::string& chromium_bin, const std::string& profile,
                                              const std::string& work, const std::string& page,
                                              const std::vector<std::string>& ids) {
  const std::string netlog = work + "/netlog.json";
  // 1. The DOM as the browser built it; console messages and requests while it loaded.
  std::string dom, out;
  chromium(chromium_bin, profile, "--enable-logging=stderr --v=0 --log-net-log='" + netlog + "' --dump-dom 'file://" + page +
                                      "' 2>'" + work + "/browser.log'",
           &dom);
  const std::string log = read_file(work + "/browser.log");
  EXPECT_EQ(log.find(":CONSOLE"), std::string::npos) << "console message:\n" << log;
  EXPECT_TRUE(page_requests(netlog).empty()) << page_requests(netlog)[0];
  EXPECT_NE(dom.find("</html>"), std::string::npos) << dom.substr(0, 500);

  // 2. Every figure expected, with the data it was given.
  std::map<std::string, FigureCheck> want;
  const auto got = rendered_figures(dom, &want);
  for (const auto& id : ids) EXPECT_TRUE(got.count(id)) << "figure " << id << " missing";
  double height = 1500;
  for (const auto& [id, g] : got) {
    const FigureCheck& e = want[id];
    EXPECT_GT(e.elements, 0) << id;
    EXPECT_EQ(g.elements, e.elements) << id << ": plot elements";
    EXPECT_EQ(g.markers, e.markers) << id << ": point markers";
    EXPECT_EQ(g.images, e.images) << id << ": heat-map images";
    EXPECT_EQ(g.image_sizes, e.image_sizes) << id << ": heat-map pixels";
    height += g.height + 130;
  }
  size_t tables = 0;
  for (size_t i = dom.find("<table "); i != std::string::npos; i = dom.find("<table ", i + 1)) ++tables;
  EXPECT_GE(tables, 1u);
  for (size_t i = dom.find("<tr"); i != std::string::npos; i = dom.find("<tr", i + 1)) height += 45;  // table rows
  height = height * 1.2 + 1000;  // rather white space at the bottom than a cut page

  // 3. The full page as a picture, for a person to look at.
  const std::string shot = work + "/screenshot.png";
  fs::remove(shot);
  chromium(chromium_bin, profile, "--hide-scrollbars --window-size=1280," + std::to_string(int(std::min(height, 30000.0))) +
                                      " --screenshot='" + shot + "' 'file://" + page + "'",
           &out);
  EXPECT_TRUE(fs::exists(shot)) << out;
  if (fs::exists(shot)) {
    EXPECT_GT(fs::file_size(shot), 100000u);
  }
  std::printf("report: %s\nscreenshot: %s\n", page.c_str(), shot.c_str());
  return got;
}

TEST_F(ReportBrowser, DemoReportSlowRendersOffline) {
  const std::string build = fs::path(test::cli()).parent_path().string();
  const std::string demo = build + "/report-demo";
  std::string out;
  ASSERT_EQ(test::run_command("CALQ_DATA='" + test::data() + "' bash '" CALQ_SOURCE_DIR "/scripts/report_demo.sh' --out '" + demo +
                                  "' --calq '" + test::cli() + "'",
                              &out),
            0)
      << out;
  const std::string page = demo + "/report/index.html";
  ASSERT_TRUE(fs::exists(page)) << out;
  const auto got = check_page(chromium_, profile_, demo, page,
                              {"calib-quality-stories260k", "calib-content-stories260k", "calib-language-stories260k",
                               "calib-quality-synth", "robustness", "hist-stories260k", "hist-tiny-opt", "depth-overview",
                               "depth-stories260k", "depth-tiny-opt", "heatmap-stories260k", "heatmap-tiny-opt",
                               "similarity-stories260k", "convergence-stories260k", "bits-w-stories260k", "bits-a-stories260k"});
  // The planted outlier: tiny OPT's heat map is 64 channels x 2 layers per input kind.
  ASSERT_TRUE(got.count("heatmap-tiny-opt"));
  EXPECT_EQ(got.at("heatmap-tiny-opt").image_sizes, (std::vector<std::string>{"64x2", "64x2"}));
}

// `calq study report` on the tiny study of tests/study_fixture.h (statistics of four sets, two of
// them languages; GPTQ, SmoothQuant; a KV axis), checked the same way, with the figures' series and
// points counted from what the study holds.
TEST_F(ReportBrowser, StudyReportSlowRendersOffline) {
  const std::string work = fs::path(test::cli()).parent_path().string() + "/study-report-browser";
  fs::remove_all(work);
  fs::create_directories(work);
  bool ok = false;
  const std::string log = test::run_tiny_report_study(work, &ok);
  ASSERT_TRUE(ok) << log;
  const auto got = check_page(chromium_, profile_, work, work + "/report/index.html",
                              {"calib-quality-stories260k", "calib-language-stories260k", "robustness", "hist-stories260k",
                               "depth-stories260k", "heatmap-stories260k", "similarity-stories260k",
                               "convergence-stories260k", "bits-w-stories260k", "bits-a-stories260k", "bits-kv-stories260k"});
  EXPECT_FALSE(got.count("depth-overview"));  // one model: not drawn
  // The KV axis: float and GPTQ w4g32 (KV 4 and 16), RTN and SmoothQuant (16 only), and the float
  // line: 5 plot elements; 6 points plus 4 legend samples.
  ASSERT_TRUE(got.count("bits-kv-stories260k"));
  EXPECT_EQ(got.at("bits-kv-stories260k").elements, 5);
  EXPECT_EQ(got.at("bits-kv-stories260k").markers, 10);
  // Histograms: two languages x two inputs; depth: 4 sets in each of 8 panels (+ legend samples).
  EXPECT_EQ(got.at("hist-stories260k").elements, 4);
  EXPECT_EQ(got.at("depth-stories260k").elements, 8 * 4 + 2);  // + the Gaussian kurtosis line of each input
  // The heat map: 64 channels x 5 layers per input kind, every set's maximum.
  EXPECT_EQ(got.at("heatmap-stories260k").image_sizes, (std::vector<std::string>{"64x5", "64x5"}));
}

}  // namespace
}  // namespace calq
