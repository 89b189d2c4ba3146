#include "observe/stats_collector.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/error.h"
#include "util/sha256.h"

namespace calq {

// ---- module names ------------------------------------------------------------------------------

std::vector<ObservableModule> observable_modules(const Decoder& model, bool include_lm_head) {
  std::vector<ObservableModule> r;
  const ModelConfig& c = model.config();
  for (int i = 0; i < model.num_layers(); ++i) {
    const DecoderLayer& L = model.layer(i);
    auto lin = [&](const Linear& l, const char* kind) {
      if (l.out > 0) r.push_back({l.name, kind, i, l.in});
    };
    lin(L.q, "attn_in");
    lin(L.k, "attn_in");
    lin(L.v, "attn_in");
    lin(L.o, "attn_out");
    if (c.gated_mlp) lin(L.gate, "mlp_in");
    lin(L.up, "mlp_in");
    lin(L.down, "mlp_out");
    r.push_back({model.names().layer(i), "residual", i, c.hidden_size});
  }
  if (include_lm_head) r.push_back({model.names().lm_head, "lm_head", -1, c.family == Family::OPT ? c.word_embed_proj_dim : c.hidden_size});
  return r;
}

bool glob_match(const std::string& p, const std::string& s) {
  // Iterative '*' matching with backtracking to the last star.
  size_t i = 0, j = 0, star = std::string::npos, mark = 0;
  while (j < s.size()) {
    if (i < p.size() && p[i] == '*') {
      star = i++;
      mark = j;
    } else if (i < p.size() && p[i] == s[j]) {
      ++i;
      ++j;
    } else if (star != std::string::npos) {
      i = star + 1;
      j = ++mark;
    } else {
      return false;
    }
  }
  while (i < p.size() && p[i] == '*') ++i;
  return i == p.size();
}

std::vector<ObservableModule> select_modules(const std::vector<ObservableModule>& all,
                                             const std::vector<std::string>& patterns) {
  if (patterns.empty()) return all;
  std::vector<bool> keep(all.size(), false);
  for (const auto& p : patterns) {
    bool any = false;
    for (size_t i = 0; i < all.size(); ++i)
      if (glob_match(p, all[i].name)) keep[i] = any = true;
    if (!any) {
      std::string ex = all.empty() ? "none" : all.front().name + ", " + all.back().name;
      throw ArgError("no observable module matches '" + p + "' (names look like " + ex +
                     "; use '*' as a wildcard, e.g. '*.mlp.down_proj')");
    }
  }
  std::vector<ObservableModule> r;
  for (size_t i = 0; i < all.size(); ++i)
    if (keep[i]) r.push_back(all[i]);
  return r;
}

// ---- collector ---------------------------------------------------------------------------------

namespace {

// Group of modules that may share one input within a layer (q/k/v; gate/up).
std::string share_group(const ObservableModule& m) {
  if (m.kind == "attn_in" || m.kind == "mlp_in") return std::to_string(m.layer) + "." + m.kind;
  return m.name;
}

inline int hist_bin(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const int e = int((u >> 23) & 0xffu) - 127;  // floor(log2|x|) for normal x; -127 for 0/denormal
  if (e < kHistMinExp) return 0;
  if (e > kHistMaxExp) return kHistBins - 1;  // also inf/NaN (e = 128)
  return e - kHistMinExp + 1;
}

constexpr int64_t kRowBlock = 64;

}  // namespace

ActStatsCollector::ActStatsCollector(const Decoder& model, const ActStatsOptions& opt) : opt_(opt) {
  if (opt.topn < 0 || opt.topn > 100000) throw ArgError("stats: topn must be in [0, 100000]");
  if (!(opt.thresholds[0] > 0) || !(opt.thresholds[1] > 0))
    throw ArgError("stats: thresholds must be positive");
  for (const auto& m : select_modules(observable_modules(model, opt.lm_head), opt.modules)) {
    Slot s;
    s.group = share_group(m);
    s.kind = m.kind;
    s.layer = m.layer;
    slots_[m.name] = s;
  }
  const ModelConfig& c = model.config();
  Json mdl = {{"model_type", c.model_type}, {"num_layers", c.num_layers}, {"hidden_size", c.hidden_size},
              {"vocab_size", c.vocab_size}, {"max_position", c.max_position}};
  if (model.checkpoint()) {
    mdl["path"] = model.checkpoint()->dir();
    mdl["config_sha256"] = sha256_hex(model.checkpoint()->config().dump());
  } else {
    mdl["path"] = "";
    mdl["config_sha256"] = sha256_hex(mdl.dump());
  }
  stats_.meta = {{"model", mdl},
                 {"thresholds", {opt.thresholds[0], opt.thresholds[1]}},
                 {"topn", opt.topn},
                 {"hist", {{"min_exp", kHistMinExp}, {"max_exp", kHistMaxExp}, {"bins", kHistBins}}},
                 {"samples", 0},
                 {"tokens", 0.0},
                 {"sources", Json::array()}};
}

void ActStatsCollector::begin_batch(int64_t first_sample, const uint8_t* row_mask) {
  first_sample_ = first_sample;
  row_mask_ = row_mask;
}

void ActStatsCollector::on_batch(const int32_t* ids, int64_t batch, int64_t seq) {
  ids_ = ids;
  batch_ = batch;
  seq_ = seq;
  prev_module_.clear();
  int64_t n = batch * seq;
  if (row_mask_) {
    n = 0;
    for (int64_t r = 0; r < batch * seq; ++r) n += row_mask_[r] != 0;
  }
  tokens_ += double(n);
}

bool ActStatsCollector::wants(const std::string& module) const { return slots_.count(module) != 0; }

void ActStatsCollector::on_linear_input(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  observe(module, x, rows, cols);
}

void ActStatsCollector::on_layer_output(const std::string& module, int layer, const float* h, int64_t rows,
                                        int64_t cols) {
  observe(module, h, rows, cols);
}

void ActStatsCollector::observe(const std::string& module, const float* x, int64_t rows, int64_t cols) {
  auto it = slots_.find(module);
  if (it == slots_.end()) return;
  Slot& s = it->second;
  const Slot* prev = nullptr;
  if (!prev_module_.empty()) {
    auto p = slots_.find(prev_module_);
    if (p != slots_.end() && p->second.group == s.group && p->second.last == x && p->second.last_rows == rows)
      prev = &p->second;
  }
  prev_module_ = module;
  s.last = x;
  s.last_rows = rows;
  if (s.entry < 0) {  // first time: share the previous module's entry or open a new one
    if (prev) {
      s.entry = prev->entry;
      stats_.tensors[size_t(s.entry)].modules.push_back(module);
      return;
    }
    TensorStats t;
    t.name = module;
    t.modules = {module};
    t.kind = s.kind;
    t.layer = s.layer;
    t.init(cols);
    s.entry = int(stats_.tensors.size());
    stats_.tensors.push_back(std::move(t));
  }
  TensorStats& t = stats_.tensors[size_t(s.entry)];
  if (t.name != module) {  // an alias: its leader has accumulated this very input already
    if (!prev || prev->entry != s.entry)
      throw Error("stats: module '" + module + "' no longer shares its input with '" + t.name + "'");
    return;
  }
  if (cols != t.cols)
    throw ArgError("stats: module '" + module + "' input has " + std::to_string(cols) + " columns, earlier " +
                   std::to_string(t.cols));
  accumulate(t, x, rows);
}

void ActStatsCollector::accumulate(TensorStats& t, const float* x, int64_t rows) {
  const int64_t cols = t.cols;
  const uint8_t* mask = (row_mask_ && rows == batch_ * seq_) ? row_mask_ : nullptr;
  const float t0 = float(opt_.thresholds[0]), t1 = float(opt_.thresholds[1]);
  const int nth = int(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), cols / 64)));
  const bool par = nth > 1 && rows * cols >= 32768;
  std::vector<float> row_max(size_t(rows * nth), -1.0f);
  double counted = 0;
  for (int64_t r = 0; r < rows; ++r) counted += (!mask || mask[r]) ? 1 : 0;

#pragma omp parallel num_threads(nth) if (par)
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = ((cols + nt - 1) / nt + 15) / 16 * 16;
    const int64_t c0 = std::min(cols, tid * chunk), c1 = std::min(cols, c0 + chunk), n = c1 - c0;
    std::vector<float> acc(size_t(6 * n));
    float *f1 = acc.data(), *f2 = f1 + n, *f3 = f2 + n, *f4 = f3 + n, *g0 = f4 + n, *g1 = g0 + n;
    float* mn = t.min.data() + c0;
    float* mx = t.max.data() + c0;
    int64_t hist[kHistBins] = {};
    for (int64_t b0 = 0; b0 < rows && n > 0; b0 += kRowBlock) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      const int64_t b1 = std::min(rows, b0 + kRowBlock);
      for (int64_t r = b0; r < b1; ++r) {
        if (mask && !mask[r]) continue;
        const float* xr = x + r * cols + c0;
        float m = 0.0f;
#pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < n; ++j) {
          const float v = xr[j], v2 = v * v, a = std::fabs(v);
          f1[j] += v;
          f2[j] += v2;
          f3[j] += v2 * v;
          f4[j] += v2 * v2;
          mn[j] = std::min(mn[j], v);
          mx[j] = std::max(mx[j], v);
          g0[j] += a >= t0 ? 1.0f : 0.0f;
          g1[j] += a >= t1 ? 1.0f : 0.0f;
          m = std::max(m, a);
        }
        row_max[size_t(r * nth + tid)] = m;  // stride nth: unused slots stay -1
        for (int64_t j = 0; j < n; ++j) ++hist[hist_bin(xr[j])];
      }
      for (int64_t j = 0; j < n; ++j) {  // flush the float block sums into the double totals
        t.sum[size_t(c0 + j)] += f1[j];
        t.sum2[size_t(c0 + j)] += f2[j];
        t.sum3[size_t(c0 + j)] += f3[j];
        t.sum4[size_t(c0 + j)] += f4[j];
        t.ge[0][size_t(c0 + j)] += g0[j];
        t.ge[1][size_t(c0 + j)] += g1[j];
      }
    }
#pragma omp critical(calq_stats_hist)
    for (int i = 0; i < kHistBins; ++i) t.hist[size_t(i)] += double(hist[i]);
  }
  t.count += counted;
  if (opt_.topn > 0) {
    // Collapse per-thread maxima to one per row (stride nth; unused entries are -1).
    std::vector<float> rmax(size_t(rows), -1.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int k = 0; k < nth; ++k) rmax[size_t(r)] = std::max(rmax[size_t(r)], row_max[size_t(r * nth + k)]);
    if (mask)
      for (int64_t r = 0; r < rows; ++r)
        if (!mask[r]) rmax[size_t(r)] = -1.0f;
    update_top(t, x, rows, rmax);
  }
}

void ActStatsCollector::update_top(TensorStats& t, const float* x, int64_t rows, const std::vector<float>& rmax) {
  const int64_t cols = t.cols;
  const size_t n = size_t(opt_.topn);
  const bool attributable = ids_ && rows == batch_ * seq_;
  std::vector<TopValue> add;
  float floor_v = t.top.size() >= n ? std::fabs(t.top.back().value) : -1.0f;
  for (int64_t r = 0; r < rows; ++r) {
    if (rmax[size_t(r)] < 0 || rmax[size_t(r)] <= floor_v) continue;
    const float* xr = x + r * cols;
    int64_t arg = 0;
    for (int64_t c = 1; c < cols; ++c)
      if (std::fabs(xr[c]) > std::fabs(xr[arg])) arg = c;
    TopValue v;
    v.value = xr[arg];
    v.channel = int32_t(arg);
    if (attributable) {
      v.sample = first_sample_ + r / seq_;
      v.position = r % seq_;
      v.token = ids_[r];
    }
    add.push_back(v);
    if (add.size() >= 4 * n) {  // keep the candidate list short
      merge_top(t.top, add, int(n));
      add.clear();
      if (t.top.size() >= n) floor_v = std::fabs(t.top.back().value);
    }
  }
  merge_top(t.top, add, int(n));
}

void ActStatsCollector::snapshot(int64_t samples_done) {
  StatsSnapshot s;
  s.samples = samples_done;
  s.tokens = tokens_;
  for (const auto& t : stats_.tensors) {
    s.sum2.push_back(t.sum2);
    s.absmax.push_back(t.absmax_vec());
  }
  stats_.snapshots.push_back(std::move(s));
}

ActStats ActStatsCollector::result() const {
  ActStats r = stats_;
  r.meta["tokens"] = tokens_;
  // Snapshots taken before a tensor was first seen lack it: pad them (only possible when the
  // first snapshot precedes any forward pass).
  for (auto& s : r.snapshots)
    for (size_t t = s.sum2.size(); t < r.tensors.size(); ++t) {
      s.sum2.emplace_back(size_t(r.tensors[t].cols), 0.0);
      s.absmax.emplace_back(size_t(r.tensors[t].cols), 0.0f);
    }
  return r;
}

}  // namespace calq
