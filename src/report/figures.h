// The report's figures and tables as data (report/figure.h), built from a ReportInput:
//
//  results (report/figures_results.cpp), per model where it applies:
//    * calibration-set figures per group (quality / content / language / other): every method's
//      metric per calibration set beside the float baseline;
//    * robustness overview: all models side by side, each method's spread across sets;
//    * metric vs bits along the W, A and KV axes (qllm-eval's axes);
//    * pivot tables (method × calibration set) with the float baseline and Δ.
//  statistics (report/figures_stats.cpp), per model:
//    * |x| histograms of the attention and MLP inputs per language (or per set);
//    * through depth: max |x|, kurtosis, outlier-channel counts (LLM.int8 and relative);
//      and an all-models overview of the outlier ratio through relative depth;
//    * layer × channel heat map of per-channel absmax;
//    * calibration-set similarity (cosine of per-channel scales, Jaccard of outlier sets) and
//      convergence curves.
// A figure without data is left out and noted (Section::omitted), never drawn empty.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "analysis/outliers.h"
#include "observe/act_stats.h"
#include "report/figure.h"
#include "report/input.h"
#include "report/palette.h"

namespace calq::report {

struct FigureOptions {
  OutlierConfig outliers;        // rel_k: relative outlier factor; int8_* the LLM.int8 criterion
  size_t max_annotated = 12;     // similarity heat maps print values up to this many sets
};

// ---- results -----------------------------------------------------------------------------
std::vector<Section> results_sections(const ReportInput& in, const FigureOptions& opt = {});

// ---- statistics --------------------------------------------------------------------------
// One model's statistics, in input order (every figure reads all of them).
struct ModelStats {
  std::string model;
  bool synthetic = false;
  std::vector<CalibRef> sets;
  std::vector<ActStats> stats;
};
// Loads every statistics input of `model` (IoError/FormatError naming the file).
ModelStats load_model_stats(const ReportInput& in, const std::string& model);

// The style of every calibration-set label (report/palette.h set_style), shared by all figures.
using SetStyles = std::map<std::string, Style>;
SetStyles set_styles(const ReportInput& in);

Figure histogram_figure(const ModelStats& ms, const SetStyles& styles);
// Every set of the model, one series per set; one row of panels (max |x|, kurtosis, relative and
// LLM.int8 outlier-channel counts) per input kind.
Figure depth_figure(const ModelStats& ms, const SetStyles& styles, const FigureOptions& opt);
Figure heatmap_figure(const ModelStats& ms);
Figure similarity_figure(const ModelStats& ms, const FigureOptions& opt);
Figure convergence_figure(const ModelStats& ms, const SetStyles& styles, const FigureOptions& opt);
// All models: the outlier ratio (max |x| / median channel absmax) through relative depth.
Figure depth_overview_figure(const std::vector<ModelStats>& all, const std::vector<std::string>& models);

std::vector<Section> stats_sections(const ReportInput& in, const FigureOptions& opt = {});

// "stories260K" -> "stories260k": a figure-id fragment ([a-z0-9-]); distinct labels that
// collide get a numeric suffix from the caller.
std::string slug(const std::string& label);

}  // namespace calq::report
