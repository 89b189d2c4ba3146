// Figures from activation statistics: histograms per language, depth profiles, the layer ×
// channel heat map, set similarity and convergence (see report/figures.h). The numbers come from
// observe/act_stats.h and analysis/{outliers,compare}.h unchanged.
#include <algorithm>
#include <cstdio>
#include <map>

#include "analysis/compare.h"
#include "report/figures.h"
#include "report/palette.h"

namespace calq::report {

namespace {

const std::vector<std::string> kHiddenKinds = {"attn_in", "mlp_in"};
const std::vector<std::string> kAllKinds = {"attn_in", "mlp_in", "attn_out", "mlp_out"};

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ";" : "") + std::to_string(v[i]);
  return s;
}

std::string model_title(const ModelStats& ms) { return ms.model + (ms.synthetic ? " (synthetic)" : ""); }

// The calib_set label of the heat map's drawn rows when a model has several sets.
const char* kAllSetsLabel = "all sets (max)";

// All of a model's statistics as one (the calibration sets' data concatenated): per-channel
// absmax is the largest over the sets. ArgError when the files disagree (observe/act_stats.h).
ActStats merged_stats(const ModelStats& ms) {
  ActStats s = ms.stats.at(0);
  for (size_t i = 1; i < ms.stats.size(); ++i) s.merge(ms.stats[i]);
  return s;
}

int num_layers(const ActStats& s) {
  int n = 0;
  for (const auto& t : s.tensors) n = std::max(n, t.layer + 1);
  return n;
}

}  // namespace

SetStyles set_styles(const ReportInput& in) {
  SetStyles m;
  std::map<std::string, size_t> in_group;
  const auto& groups = calib_groups();
  for (const auto& c : in.calib_sets()) {
    const size_t g = size_t(std::find(groups.begin(), groups.end(), c.group) - groups.begin());
    m.emplace(c.label, set_style(g, in_group[c.group]++));
  }
  return m;
}

ModelStats load_model_stats(const ReportInput& in, const std::string& model) {
  ModelStats ms;
  ms.model = model;
  ms.synthetic = in.synthetic(model);
  for (const auto& s : in.stats)
    if (s.model == model) {
      ms.sets.push_back(s.calib);
      ms.stats.push_back(load_stats(s.path));
    }
  return ms;
}

// ---- histograms -----------------------------------------------------------------------------

Figure histogram_figure(const ModelStats& ms, const SetStyles& styles) {
  std::vector<size_t> chosen;
  for (size_t i = 0; i < ms.sets.size(); ++i)
    if (ms.sets[i].group == "language") chosen.push_back(i);
  const bool languages = !chosen.empty();
  if (!languages)
    for (size_t i = 0; i < ms.sets.size(); ++i) chosen.push_back(i);
  Figure f;
  f.id = "hist-" + slug(ms.model);
  f.title = model_title(ms) + ": activation magnitudes per " + (languages ? "language" : "calibration set");
  f.caption = std::string("Share of all values of the attention and MLP inputs (all layers) per octave of |x|, ") +
              (languages ? "one curve per language" : "one curve per calibration set (no language sets for this model)") +
              ". Heavy right tails are the outliers that per-tensor activation quantization must cover.";
  f.columns = 2;
  f.data.header = {"model", "calib_set", "kind", "bin", "lower", "upper", "count", "share"};
  for (const auto& kind : kHiddenKinds) {
    Panel p;
    p.title = kind_label(kind);
    p.x.label = "|x| (activation magnitude, log scale)";
    p.x.log = true;
    p.x.log_base = 2;
    p.y.label = "share of values per octave";
    p.y.log = true;
    for (size_t i : chosen) {
      std::array<double, kHistBins> h{};
      for (const auto& t : ms.stats[i].tensors)
        if (t.kind == kind)
          for (int b = 0; b < kHistBins; ++b) h[size_t(b)] += t.hist[size_t(b)];
      double total = 0;
      for (double c : h) total += c;
      if (total <= 0) continue;
      const Style st = styles.at(ms.sets[i].label);
      Series s{ms.sets[i].label, st.color, st.dash, st.point, true, {}, {}, {}, {}};
      for (int b = 0; b < kHistBins; ++b) {
        const double lo = hist_bin_lower(b), hi = b == kHistBins - 1 ? INFINITY : hist_bin_lower(b + 1);
        const double share = h[size_t(b)] / total;
        f.data.rows.push_back({ms.model, ms.sets[i].label, kind, std::to_string(b), fmt_exact(lo), fmt_exact(hi),
                               fmt_exact(h[size_t(b)]), fmt_exact(share)});
        // Bin 0 (|x| below 2^-32, zeros) and the overflow bin have no finite octave to plot.
        if (b == 0 || b == kHistBins - 1 || h[size_t(b)] <= 0) continue;
        s.x.push_back(lo * std::sqrt(2.0));
        s.y.push_back(share);
      }
      p.series.push_back(std::move(s));
    }
    f.panels.push_back(std::move(p));
  }
  return f;
}

// ---- through depth --------------------------------------------------------------------------

namespace {

// The four depth panels of one input kind (max |x|, kurtosis, relative and LLM.int8 counts), one
// series per set; `most` grows to the largest count.
std::array<Panel, 4> depth_panels(const ModelStats& ms, const std::vector<OutlierReport>& reps, const std::string& kind,
                                  const SetStyles& styles, double* most) {
  const std::string k = kind == "attn_in" ? "attention input" : kind == "mlp_in" ? "MLP input" : kind_label(kind);
  Panel pmax, pkurt, prel, pint8;
  pmax.title = k + ": max |x|";
  pmax.y.label = "max |x| (log scale)";
  pmax.y.log = true;
  pkurt.title = k + ": kurtosis E[(x-mean)^4]/var^2";
  pkurt.y.label = "kurtosis (log scale)";
  pkurt.y.log = true;
  pkurt.hlines.push_back({"Gaussian (3)", "#000000", 3.0, 2});
  prel.title = k + ": relative outlier channels (> k x median)";
  prel.y.label = "outlier channels (count)";
  pint8.title = k + ": LLM.int8 outlier channels";
  pint8.y.label = "outlier channels (count)";
  for (size_t i = 0; i < reps.size(); ++i) {
    const Style st = styles.at(ms.sets[i].label);
    Series smax{ms.sets[i].label, st.color, st.dash, st.point, true, {}, {}, {}, {}};
    Series skurt = smax, srel = smax, sint8 = smax;
    // Counts are small integers: each set is shifted a little sideways so equal counts stay visible.
    const double dodge = reps.size() > 1 ? 0.3 * (double(i) / double(reps.size() - 1) - 0.5) : 0.0;
    for (const auto& t : reps[i].tensors) {
      if (t.kind != kind || t.layer < 0) continue;
      if (t.absmax > 0) {
        smax.x.push_back(t.layer);
        smax.y.push_back(t.absmax);
      }
      if (t.kurtosis > 0) {
        skurt.x.push_back(t.layer);
        skurt.y.push_back(t.kurtosis);
      }
      srel.x.push_back(t.layer + dodge);
      srel.y.push_back(double(t.relative.size()));
      sint8.x.push_back(t.layer + dodge);
      sint8.y.push_back(double(t.int8_tokens.size()));
      *most = std::max({*most, double(t.relative.size()), double(t.int8_tokens.size())});
    }
    if (!smax.y.empty()) pmax.series.push_back(std::move(smax));
    if (!skurt.y.empty()) pkurt.series.push_back(std::move(skurt));
    if (!srel.y.empty()) prel.series.push_back(std::move(srel));
    if (!sint8.y.empty()) pint8.series.push_back(std::move(sint8));
  }
  return {std::move(pmax), std::move(pkurt), std::move(prel), std::move(pint8)};
}

}  // namespace

Figure depth_figure(const ModelStats& ms, const SetStyles& styles, const FigureOptions& opt) {
  // Every calibration set's statistics, one series per set (its fixed style), one column of panels
  // per input kind: the attention and MLP inputs, or whatever kinds the files hold without them.
  std::vector<OutlierReport> reps;
  for (const auto& st : ms.stats) reps.push_back(analyze_outliers(st, opt.outliers));
  std::vector<std::string> kinds;
  for (const auto& pool : {kHiddenKinds, kAllKinds}) {
    for (const auto& kind : pool)
      for (const auto& rep : reps)
        if (std::any_of(rep.tensors.begin(), rep.tensors.end(), [&](const auto& t) { return t.kind == kind && t.layer >= 0; }) &&
            std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
          kinds.push_back(kind);
    if (!kinds.empty()) break;
  }
  char crit[160];
  std::snprintf(crit, sizeof crit, "relative: absmax > %g x median channel absmax; LLM.int8: |x| >= %g in >= %g%% of tokens",
                opt.outliers.rel_k, reps.empty() ? 6.0 : reps[0].thresholds[0], 100 * opt.outliers.int8_token_share);
  Figure f;
  f.id = "depth-" + slug(ms.model);
  f.title = model_title(ms) + ": activations through depth, per calibration set";
  f.caption = std::string("Per decoder layer, one column of panels per input: the largest |x|, the kurtosis of all values "
                          "(3 for a Gaussian; outlier channels make it large) and the number of outlier channels (") +
              crit + "), one curve per calibration set. Counts are shifted a little sideways per set so that equal "
                     "counts stay visible.";
  f.columns = std::max<int>(1, int(kinds.size()));  // a column per input kind, a row per measure; legend under the last row
  f.panel_height = 270;
  f.data.header = {"model", "calib_set", "layer", "kind", "tensor", "cols", "absmax", "argmax_channel",
                   "median_channel_absmax", "ratio", "kurtosis", "relative_outliers", "relative_channels",
                   "int8_outliers", "int8_channels"};
  int layers = 0;
  for (size_t i = 0; i < reps.size(); ++i)
    for (const auto& t : reps[i].tensors) {
      if (t.layer < 0) continue;
      layers = std::max(layers, t.layer + 1);
      f.data.rows.push_back({ms.model, ms.sets[i].label, std::to_string(t.layer), t.kind, t.name, std::to_string(t.cols),
                             fmt_exact(t.absmax), std::to_string(t.argmax_channel), fmt_exact(t.median_channel_absmax),
                             fmt_exact(t.ratio()), fmt_exact(t.kurtosis), std::to_string(t.relative.size()),
                             join_ints(t.relative), std::to_string(t.int8_tokens.size()), join_ints(t.int8_tokens)});
    }
  double most = 1;
  std::vector<std::array<Panel, 4>> by_kind;
  for (const auto& kind : kinds) {
    by_kind.push_back(depth_panels(ms, reps, kind, styles, &most));
  }
  for (size_t m = 0; m < 4; ++m)
    for (auto& row : by_kind) {
      row[m].legend = m == 3;
      f.panels.push_back(std::move(row[m]));
    }
  for (auto& p : f.panels) {
    p.x.label = "decoder layer";
    p.x.min = -0.5;
    p.x.max = layers - 0.5;
    if (layers <= 16) p.x.step = 1;
    if (!p.y.log) {
      p.y.min = 0;
      p.y.max = most * 1.15;  // headroom: counts at the maximum stay off the frame; one scale for all counts
      if (most <= 10) p.y.step = 1;  // counts: whole numbers only
    }
  }
  return f;
}

// ---- layer × channel heat map ---------------------------------------------------------------

Figure heatmap_figure(const ModelStats& ms) {
  // Every set of the model: the statistics of all its calibration data together (ActStats::merge:
  // the per-channel absmax is the largest over the sets); the CSV also holds each set's own rows.
  const ActStats s = merged_stats(ms);
  const bool several = ms.stats.size() > 1;
  const std::string sets = several ? std::to_string(ms.stats.size()) + " calibration sets" : "calibration set " + ms.sets.at(0).label;
  const int layers = num_layers(s);
  Figure f;
  f.id = "heatmap-" + slug(ms.model);
  f.title = model_title(ms) + ": per-channel absmax, layer × channel (" + sets + ")";
  const OutlierReport rep = analyze_outliers(s);
  std::string found;
  for (const auto& kind : kHiddenKinds) {
    auto it = rep.relative_by_kind.find(kind);
    if (it == rep.relative_by_kind.end() || it->second.empty()) continue;
    found += (found.empty() ? "" : "; ") + kind_label(kind) + ": ";
    for (size_t i = 0; i < it->second.size() && i < 8; ++i)
      found += (i ? ", " : "") + std::to_string(it->second[i].first) + " (" + std::to_string(it->second[i].second) + "/" +
               std::to_string(layers) + " layers)";
  }
  f.caption = "Largest |x| of every input channel (colour, log scale) in every layer" +
              std::string(several ? ", over all the model's calibration sets" : "") +
              ". A bright vertical stripe is an outlier channel that persists through depth. " +
              (found.empty() ? std::string("No channel exceeds 8x its tensor's median channel absmax.")
                             : "Channels above 8x the median channel absmax: " + found + ".");
  f.raster = true;
  f.columns = 1;
  f.panel_height = std::clamp(60 + 18 * layers, 220, 520);
  size_t width = 0;
  for (const auto& t : s.tensors)
    if (t.kind == "attn_in" || t.kind == "mlp_in") width = std::max(width, size_t(t.cols));
  f.data.header = {"calib_set", "kind", "layer", "tensor"};
  for (size_t c = 0; c < width; ++c) f.data.header.push_back("ch" + std::to_string(c));
  // Each file's own rows, exactly, then (several sets) the drawn maximum over the sets.
  auto rows_of = [&](const ActStats& st, const std::string& label, const std::string& kind, Heatmap* h) {
    bool any = false;
    for (const auto& t : st.tensors) {
      if (t.kind != kind || t.layer < 0) continue;
      std::vector<std::string> row{label, kind, std::to_string(t.layer), t.name};
      const auto am = t.absmax_vec();
      for (size_t c = 0; c < width; ++c) {
        const double v = c < am.size() ? double(am[c]) : NAN;
        row.push_back(c < am.size() ? fmt_exact(v) : "");
        if (h && v > 0 && size_t(t.layer) < h->z.size()) h->z[size_t(t.layer)][c] = v;  // zero: not on a log colour scale
      }
      f.data.rows.push_back(std::move(row));
      any = true;
    }
    return any;
  };
  for (const auto& kind : kHiddenKinds) {
    Heatmap h;
    h.cb_label = several ? "absmax |x| (max over sets)" : "channel absmax |x|";
    h.log = true;
    h.z.assign(size_t(layers), std::vector<double>(width, NAN));
    bool any = false;
    for (size_t i = 0; i < ms.stats.size(); ++i) any |= rows_of(ms.stats[i], ms.sets[i].label, kind, several ? nullptr : &h);
    if (several) rows_of(s, kAllSetsLabel, kind, &h);
    if (!any) continue;
    Panel p;
    p.title = kind_label(kind);
    p.x.label = "input channel";
    p.y.label = "decoder layer";
    p.heat = std::move(h);
    f.panels.push_back(std::move(p));
  }
  return f;
}

// ---- similarity and convergence -------------------------------------------------------------

Figure similarity_figure(const ModelStats& ms, const FigureOptions& opt) {
  const size_t n = ms.sets.size();
  std::vector<std::string> labels;
  for (const auto& c : ms.sets) labels.push_back(c.label);
  Heatmap cos, jac;
  cos.z.assign(n, std::vector<double>(n, 1.0));
  jac.z.assign(n, std::vector<double>(n, 1.0));
  Figure f;
  f.id = "similarity-" + slug(ms.model);
  f.title = model_title(ms) + ": how similar the calibration sets' statistics are";
  f.caption = "Left: cosine similarity of the per-channel RMS scales (what AWQ and the importance matrix use), mean "
              "over all observed inputs. Right: Jaccard overlap of the relative outlier-channel sets (1: the same "
              "channels). Dark cells are sets that calibrate the model differently.";
  f.columns = 2;
  f.panel_height = std::clamp(int(140 + 34 * n), 320, 760);
  f.data.header = {"model", "set_a", "set_b", "cos_rms", "min_cos_rms", "spearman_rms", "cos_absmax", "jaccard_outliers",
                   "mean_abs_absmax_change"};
  for (size_t a = 0; a < n; ++a)
    for (size_t b = a + 1; b < n; ++b) {
      const StatsComparison c = compare_stats(ms.stats[a], ms.stats[b], labels[a], labels[b], opt.outliers.rel_k);
      cos.z[a][b] = cos.z[b][a] = c.all.cos_rms;
      jac.z[a][b] = jac.z[b][a] = c.all.jaccard;
      f.data.rows.push_back({ms.model, labels[a], labels[b], fmt_exact(c.all.cos_rms), fmt_exact(c.all.min_cos_rms),
                             fmt_exact(c.all.spearman_rms), fmt_exact(c.all.cos_absmax), fmt_exact(c.all.jaccard),
                             fmt_exact(c.all.abs_absmax_change)});
    }
  double lo = 1;
  for (const auto& r : cos.z)
    for (double v : r) lo = std::min(lo, v);
  cos.zmin = std::min(lo, 0.99);
  cos.zmax = 1;
  jac.zmin = 0;
  jac.zmax = 1;
  cos.cb_label = "cosine similarity";
  jac.cb_label = "Jaccard overlap";
  for (Heatmap* h : {&cos, &jac}) {
    h->xlabels = labels;
    h->ylabels = labels;
    h->annotate = n <= opt.max_annotated;
  }
  Panel pc, pj;
  pc.title = "cosine of per-channel RMS";
  pj.title = "Jaccard of outlier channels";
  pc.heat = std::move(cos);
  pj.heat = std::move(jac);
  f.panels = {std::move(pc), std::move(pj)};
  return f;
}

Figure convergence_figure(const ModelStats& ms, const SetStyles& styles, const FigureOptions& opt) {
  constexpr double kTol = 0.01;
  Figure f;
  f.id = "convergence-" + slug(ms.model);
  f.title = model_title(ms) + ": convergence of the statistics with calibration samples";
  f.caption = "How far the statistics after n samples are from those of the whole set: left, the mean relative "
              "error of the per-channel RMS (below the dashed 1% line they have stopped moving); right, the overlap "
              "of the outlier-channel sets with the final ones.";
  f.columns = 2;
  f.data.header = {"model", "calib_set", "samples", "tokens", "mean_rel_err_rms", "max_rel_err_rms", "mean_cos_rms",
                   "min_cos_rms", "mean_absmax_ratio", "mean_jaccard", "converged_at"};
  Panel perr, pjac;
  perr.title = "relative error of per-channel RMS vs final";
  perr.x.label = "calibration samples (log scale)";
  perr.x.log = true;
  perr.x.log_base = 2;
  perr.y.label = "mean relative error (log scale)";
  perr.y.log = true;
  perr.hlines.push_back({"1% tolerance", "#000000", kTol, 2});
  pjac.title = "outlier channels vs final";
  pjac.x = perr.x;
  pjac.y.label = "Jaccard overlap with the final outlier set";
  pjac.y.min = 0;
  pjac.y.max = 1.05;
  for (size_t i = 0; i < ms.sets.size(); ++i) {
    const auto curve = convergence_curve(ms.stats[i], opt.outliers.rel_k);
    const int64_t at = converged_at(curve, kTol);
    const Style st = styles.at(ms.sets[i].label);
    Series se{ms.sets[i].label, st.color, st.dash, st.point, true, {}, {}, {}, {}};
    Series sj = se;
    for (const auto& p : curve) {
      f.data.rows.push_back({ms.model, ms.sets[i].label, std::to_string(p.samples), fmt_exact(p.tokens),
                             fmt_exact(p.mean_rel_err_rms), fmt_exact(p.max_rel_err_rms), fmt_exact(p.mean_cos_rms),
                             fmt_exact(p.min_cos_rms), fmt_exact(p.mean_absmax_ratio), fmt_exact(p.mean_jaccard),
                             std::to_string(at)});
      if (p.samples <= 0) continue;
      if (p.mean_rel_err_rms > 0) {
        se.x.push_back(double(p.samples));
        se.y.push_back(p.mean_rel_err_rms);
      }
      sj.x.push_back(double(p.samples));
      sj.y.push_back(p.mean_jaccard);
    }
    if (!se.y.empty()) perr.series.push_back(std::move(se));
    if (sj.y.size() > 1) pjac.series.push_back(std::move(sj));
  }
  if (!perr.series.empty()) f.panels.push_back(std::move(perr));
  if (!pjac.series.empty()) f.panels.push_back(std::move(pjac));
  return f;
}

// ---- all models through depth -------------------------------------------------------------

namespace {

struct DepthProfile {
  std::string model;
  bool synthetic = false;
  int layers = 0;
  std::map<std::string, std::vector<std::pair<int, double>>> ratio;  // kind -> (layer, absmax/median)
};

DepthProfile depth_profile(const ModelStats& ms) {
  const ActStats all = merged_stats(ms);  // every set of the model, as the heat map
  DepthProfile d{ms.model, ms.synthetic, num_layers(all), {}};
  const OutlierReport rep = analyze_outliers(all);
  for (const auto& t : rep.tensors)
    if ((t.kind == "attn_in" || t.kind == "mlp_in") && t.layer >= 0 && t.ratio() > 0)
      d.ratio[t.kind].push_back({t.layer, t.ratio()});
  return d;
}

Figure overview_from(const std::vector<DepthProfile>& all, const std::vector<std::string>& models) {
  Figure f;
  f.id = "depth-overview";
  f.title = "All models: outlier ratio through depth";
  f.caption = "Per layer: the largest channel absmax divided by the median channel absmax of the same input (1: no "
              "channel stands out; above 8: a relative outlier), at relative depth 0 (first layer) to 1 (last), so "
              "that models of different depth line up. Each model's calibration sets together (absmax: the largest over the sets).";
  f.columns = 2;
  f.data.header = {"model", "kind", "layer", "layers", "relative_depth", "ratio"};
  for (const auto& kind : kHiddenKinds) {
    Panel p;
    p.title = kind_label(kind);
    p.x.label = "relative depth (layer / (layers - 1))";
    p.x.min = -0.05;
    p.x.max = 1.05;
    p.y.label = "max / median channel absmax (log scale)";
    p.y.log = true;
    p.hlines.push_back({"relative-outlier threshold (8)", "#000000", 8.0, 2});
    for (const auto& d : all) {
      auto it = d.ratio.find(kind);
      if (it == d.ratio.end()) continue;
      const size_t mi = size_t(std::find(models.begin(), models.end(), d.model) - models.begin());
      const Style st = indexed_style(mi);
      Series s{d.model + (d.synthetic ? " (synthetic)" : ""), st.color, st.dash, st.point, true, {}, {}, {}, {}};
      for (const auto& [layer, r] : it->second) {
        const double x = d.layers > 1 ? double(layer) / (d.layers - 1) : 0.0;
        s.x.push_back(x);
        s.y.push_back(r);
        f.data.rows.push_back({d.model, kind, std::to_string(layer), std::to_string(d.layers), fmt_exact(x), fmt_exact(r)});
      }
      p.series.push_back(std::move(s));
    }
    f.panels.push_back(std::move(p));
  }
  return f;
}

}  // namespace

Figure depth_overview_figure(const std::vector<ModelStats>& all, const std::vector<std::string>& models) {
  std::vector<DepthProfile> d;
  for (const auto& ms : all) d.push_back(depth_profile(ms));
  return overview_from(d, models);
}

std::vector<Section> stats_sections(const ReportInput& in, const FigureOptions& opt) {
  Section hist{"histograms", "Activation histograms per language", "", {}, {}, {}};
  hist.intro = "Distribution of activation magnitudes entering the attention and the MLP blocks, per calibration "
               "language (the paper's *_attn_hist / *_mlp_hist figures).";
  Section depth{"depth", "Outliers through depth", "", {}, {}, {}};
  depth.intro = "Where the outliers are: per layer, for each model, and all models side by side.";
  Section heat{"heatmaps", "Layer × channel heat maps", "", {}, {}, {}};
  heat.intro = "Per-channel absmax of the attention and MLP inputs in every layer: outlier channels are stripes.";
  Section sim{"similarity", "Calibration-set similarity and convergence", "", {}, {}, {}};
  sim.intro = "How differently calibration sets scale each channel, and how many samples a set needs before its "
              "statistics stop moving.";
  const auto models = in.models();
  const auto index = set_styles(in);
  std::vector<DepthProfile> profiles;
  for (const auto& m : models) {
    bool has = false;
    for (const auto& s : in.stats) has |= s.model == m;
    if (!has) {
      for (Section* s : {&hist, &depth, &heat, &sim}) s->omitted.push_back({m, "no statistics files for this model"});
      continue;
    }
    const ModelStats ms = load_model_stats(in, m);  // one model's files at a time
    hist.figures.push_back(histogram_figure(ms, index));
    depth.figures.push_back(depth_figure(ms, index, opt));
    profiles.push_back(depth_profile(ms));
    heat.figures.push_back(heatmap_figure(ms));
    if (ms.sets.size() >= 2) sim.figures.push_back(similarity_figure(ms, opt));
    else sim.omitted.push_back({m + ": set similarity", "only one calibration set has statistics"});
    Figure conv = convergence_figure(ms, index, opt);
    if (!conv.panels.empty()) sim.figures.push_back(std::move(conv));
    else sim.omitted.push_back({m + ": convergence", "the statistics files hold no convergence snapshots"});
  }
  if (profiles.size() >= 2) depth.figures.insert(depth.figures.begin(), overview_from(profiles, models));
  else if (!profiles.empty()) depth.omitted.push_back({"all-models overview", "statistics of only one model"});
  return {std::move(hist), std::move(depth), std::move(heat), std::move(sim)};
}

}  // namespace calq::report
