#include "observe/stats_collector.h"

#include <omp.h>

#include <array>
#include <bit>
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

namespace {

constexpr int64_t kTile = 256;  // channels whose float accumulators (6 x 1 KiB) stay in L1

// Channels [j0, j0+n) (n <= kTile) of every row: float partial sums over blocks of kRowBlock rows
// (bounded float rounding), flushed into the double totals; min/max in place; per-row max |x|
// into row_max[r]; the log2 histogram into hist.
void accumulate_tile(TensorStats& t, const float* x, int64_t rows, int64_t j0, int64_t n, const uint8_t* mask,
                     float t0, float t1, float* row_max, int64_t* hist) {
  const int64_t cols = t.cols;
  alignas(64) float acc[6][kTile];
  float *f1 = acc[0], *f2 = acc[1], *f3 = acc[2], *f4 = acc[3], *g0 = acc[4], *g1 = acc[5];
  float* mn = t.min.data() + j0;
  float* mx = t.max.data() + j0;
  int32_t h[4][kHistBins] = {};  // interleaved sub-histograms: no store-to-load chain on a hot bin
  alignas(64) uint8_t bins[kTile];
  for (int64_t b0 = 0; b0 < rows; b0 += kRowBlock) {
    const int64_t b1 = std::min(rows, b0 + kRowBlock);
    for (auto& a : acc) std::fill(a, a + n, 0.0f);
    for (int64_t r = b0; r < b1; ++r) {
      if (mask && !mask[r]) continue;
      const float* xr = x + r * cols + j0;
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
      row_max[r] = std::max(row_max[r], m);
      // Histogram bin = clamp(floor(log2|x|) - kHistMinExp + 1, 0, kHistBins-1) from the exponent
      // bits, computed vectorized (a loop of its own: fused into the loop above, GCC 12 drops
      // min/max updates), then counted.
      for (int64_t j = 0; j < n; ++j) {
        const int e = int((std::bit_cast<uint32_t>(xr[j]) >> 23) & 0xffu) - 127 - kHistMinExp + 1;
        bins[j] = uint8_t(e < 0 ? 0 : e > kHistBins - 1 ? kHistBins - 1 : e);
      }
      int64_t j = 0;
      for (; j + 4 <= n; j += 4) {
        ++h[0][bins[j]];
        ++h[1][bins[j + 1]];
        ++h[2][bins[j + 2]];
        ++h[3][bins[j + 3]];
      }
      for (; j < n; ++j) ++h[0][bins[j]];
    }
    for (int64_t j = 0; j < n; ++j) {
      const size_t c = size_t(j0 + j);
      t.sum[c] += f1[j];
      t.sum2[c] += f2[j];
      t.sum3[c] += f3[j];
      t.sum4[c] += f4[j];
      t.ge[0][c] += g0[j];
      t.ge[1][c] += g1[j];
    }
  }
  for (int i = 0; i < kHistBins; ++i) hist[i] += int64_t(h[0][i]) + h[1][i] + h[2][i] + h[3][i];
}

}  // namespace

void ActStatsCollector::accumulate(TensorStats& t, const float* x, int64_t rows) {
  const int64_t cols = t.cols;
  const uint8_t* mask = (row_mask_ && rows == batch_ * seq_) ? row_mask_ : nullptr;
  const float t0 = float(opt_.thresholds[0]), t1 = float(opt_.thresholds[1]);
  // Threads take channel tiles dynamically (each tile's accumulators belong to one thread: no
  // reduction; a thread the OS delays does not hold the others up). Small inputs stay serial.
  const int64_t tiles = (cols + kTile - 1) / kTile;
  const int nth = int(std::max<int64_t>(
      1, std::min<int64_t>({int64_t(omp_get_max_threads()), tiles, rows * cols / std::max<int64_t>(1, opt_.parallel_work)})));
  const bool par = nth > 1;
  // Per thread: max |x| of every row over the thread's tiles (-1 = masked row).
  std::vector<std::vector<float>> row_max(static_cast<size_t>(nth));
  std::vector<std::array<int64_t, kHistBins>> hist(static_cast<size_t>(nth));
  double counted = 0;
  for (int64_t r = 0; r < rows; ++r) counted += (!mask || mask[r]) ? 1 : 0;

#pragma omp parallel num_threads(nth) if (par)
  {
    const int tid = omp_get_thread_num();
    std::vector<float>& rm = row_max[size_t(tid)];
    rm.assign(size_t(rows), -1.0f);
    hist[size_t(tid)].fill(0);
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < tiles; ++k)
      accumulate_tile(t, x, rows, k * kTile, std::min(kTile, cols - k * kTile), mask, t0, t1, rm.data(),
                      hist[size_t(tid)].data());
  }
  for (const auto& h : hist)
    for (int i = 0; i < kHistBins; ++i) t.hist[size_t(i)] += double(h[size_t(i)]);
  t.count += counted;
  if (opt_.topn > 0) {
    std::vector<float> rmax(size_t(rows), -1.0f);
    for (const auto& rm : row_max)
      for (size_t r = 0; r < rm.size(); ++r) rmax[r] = std::max(rmax[r], rm[r]);
    update_top(t, x, rows, rmax);  // masked rows stay -1
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
