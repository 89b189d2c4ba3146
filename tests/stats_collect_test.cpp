// Activation statistics: known answers on hand-built inputs, agreement with values computed
// directly from the forward pass's hidden states, merge == one run, resume, padding, file round
// trip, and clear errors for bad module names / sequence lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "calib/calib_set.h"
#include "model/decoder.h"
#include "observe/stats_collector.h"
#include "observe/stats_runner.h"
#include "test_util.h"
#include "util/error.h"

namespace calq {
namespace {

std::unique_ptr<Decoder> tiny(const std::string& arch) { return Decoder::load(test::data("models/tiny/" + arch)); }


std::string tmp_path(const std::string& name) {
  return test::temp_path("stats", name);
}

// Direct double-precision statistics of a [rows, cols] matrix.
struct Direct {
  std::vector<double> sum, sum2, sum4;
  std::vector<float> mn, mx;
  double ge6 = 0;
  explicit Direct(int64_t cols) : sum(cols), sum2(cols), sum4(cols), mn(cols, INFINITY), mx(cols, -INFINITY) {}
  void add(const float* x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const double v = x[r * cols + c];
        sum[c] += v;
        sum2[c] += v * v;
        sum4[c] += v * v * v * v;
        mn[c] = std::min(mn[c], float(v));
        mx[c] = std::max(mx[c], float(v));
        ge6 += std::fabs(v) >= 6.0;
      }
  }
};

void expect_close(const std::vector<double>& a, const std::vector<double>& b, double rel, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double scale = 0;
  for (double v : b) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], rel * scale + 1e-12) << what << " [" << i << "]";
}

TEST(StatsCollect, HandBuiltInputKnownAnswers) {
  auto m = tiny("opt");
  ActStatsOptions o;
  o.topn = 3;
  o.parallel_work = 1024;  // take the threaded path (tiles of 256 channels: 2 tiles here)
  ActStatsCollector col(*m, o);
  // 512 rows x 512 channels; declared as fc2's input (the collector trusts the caller's width).
  const int64_t rows = 512, cols = 512;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) x[size_t(r * cols + c)] = float((r % 7) - 3) * 0.5f + float(c % 4) * 0.25f;
  x[size_t(100 * cols + 5)] = -40.0f;   // row 100: largest
  x[size_t(200 * cols + 77)] = 25.0f;   // row 200: second
  x[size_t(300 * cols + 511)] = 8.0f;   // row 300: third
  x[size_t(301 * cols + 0)] = 0.0f;
  std::vector<int32_t> ids(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) ids[size_t(r)] = int32_t(r % 128);
  col.begin_batch(10, nullptr);
  col.on_batch(ids.data(), 4, 128);  // 4 samples of 128 tokens
  col.on_linear_input("model.decoder.layers.0.fc2", x.data(), rows, cols);
  const ActStats s = col.result();
  ASSERT_EQ(s.tensors.size(), 1u);
  const TensorStats& t = s.tensors[0];
  EXPECT_EQ(t.kind, "mlp_out");
  EXPECT_EQ(t.layer, 0);
  EXPECT_EQ(t.count, 512);
  Direct d(cols);
  d.add(x.data(), rows, cols);
  expect_close(t.sum, d.sum, 1e-6, "sum");
  expect_close(t.sum2, d.sum2, 1e-6, "sum2");
  expect_close(t.sum4, d.sum4, 1e-6, "sum4");
  for (int64_t c = 0; c < cols; ++c) {
    EXPECT_EQ(t.min[c], d.mn[c]);
    EXPECT_EQ(t.max[c], d.mx[c]);
  }
  EXPECT_EQ(t.absmax(5), 40.0f);
  EXPECT_EQ(t.ge[0][5], 1);   // only the -40 in channel 5 reaches 6
  EXPECT_EQ(t.ge[1][77], 1);  // 25 >= 20
  EXPECT_EQ(t.ge[1][511], 0);
  EXPECT_NEAR(t.share_ge(0), 3.0 / (rows * cols), 1e-15);
  // Histogram: -40 is in [32, 64) = exponent 5; 0 in bin 0; counts add up to all values.
  double total = 0;
  for (double h : t.hist) total += h;
  EXPECT_EQ(total, double(rows * cols));
  EXPECT_EQ(t.hist[5 - kHistMinExp + 1], 1);
  EXPECT_GE(t.hist[0], 1);
  EXPECT_EQ(hist_bin_lower(5 - kHistMinExp + 1), 32.0);
  // Top rows: value, sample (first_sample + r / 128), position (r % 128), token, channel.
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].value, -40.0f);
  EXPECT_EQ(t.top[0].sample, 10);
  EXPECT_EQ(t.top[0].position, 100);
  EXPECT_EQ(t.top[0].token, 100);
  EXPECT_EQ(t.top[0].channel, 5);
  EXPECT_EQ(t.top[1].value, 25.0f);
  EXPECT_EQ(t.top[1].sample, 11);
  EXPECT_EQ(t.top[1].position, 72);
  EXPECT_EQ(t.top[1].channel, 77);
  EXPECT_EQ(t.top[2].channel, 511);
  EXPECT_EQ(t.top[2].sample, 12);
  // Kurtosis against a direct computation over all values.
  double n = double(rows * cols), m1 = 0, m2 = 0, m4 = 0;
  for (float v : x) m1 += v;
  m1 /= n;
  for (float v : x) {
    m2 += (v - m1) * (v - m1);
    m4 += std::pow(v - m1, 4);
  }
  m2 /= n;
  m4 /= n;
  EXPECT_NEAR(t.kurtosis(), m4 / (m2 * m2), 1e-6 * m4 / (m2 * m2));
}

// Statistics collected through the observer equal those computed directly from the forward pass's
// own outputs (hidden states; norm of them for q/k/v and fc1 inputs). Collecting changes nothing.
TEST(StatsCollect, MatchesDirectComputationAndKeepsOutputs) {
  auto m = tiny("llama2");
  int64_t B, T;
  const auto ids = test::read_id_batch(test::data("models/tiny/llama2/golden/input_ids.json"), &B, &T);
  ForwardOptions plain;
  plain.hidden_states = true;
  const ForwardOutput ref = m->forward(ids.data(), B, T, plain);

  ActStatsCollector col(*m, {});
  col.begin_batch(0, nullptr);
  ForwardOptions fo = plain;
  fo.observer = &col;
  const ForwardOutput out = m->forward(ids.data(), B, T, fo);
  ASSERT_EQ(out.logits.numel(), ref.logits.numel());
  EXPECT_EQ(0, std::memcmp(out.logits.raw(), ref.logits.raw(), ref.logits.nbytes()));  // bitwise equal

  const ActStats s = col.result();
  const int64_t H = m->config().hidden_size;
  for (int i = 0; i < m->num_layers(); ++i) {
    const Tensor h_in = ref.hidden_states[size_t(i)].reshaped({B * T, H});
    const Tensor h_out = ref.hidden_states[size_t(i + 1)].reshaped({B * T, H});
    // Residual stream after layer i.
    const TensorStats* r = s.find("model.layers." + std::to_string(i));
    ASSERT_NE(r, nullptr);
    Direct dr(H);
    dr.add(h_out.f32(), B * T, H);
    expect_close(r->sum2, dr.sum2, 1e-6, "residual sum2");
    expect_close(r->sum, dr.sum, 1e-6, "residual sum");
    for (int64_t c = 0; c < H; ++c) EXPECT_EQ(r->max[c], dr.mx[c]);
    // q/k/v input = input_layernorm(h_in): one entry reported under three names.
    const TensorStats* q = s.find("model.layers." + std::to_string(i) + ".self_attn.q_proj");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q, s.find("model.layers." + std::to_string(i) + ".self_attn.v_proj"));
    EXPECT_EQ(q->modules.size(), 3u);
    EXPECT_EQ(q->kind, "attn_in");
    const Tensor xn = m->apply_norm(m->layer(i).attn_norm, h_in);
    Direct dq(H);
    dq.add(xn.f32(), B * T, H);
    expect_close(q->sum2, dq.sum2, 1e-6, "q input sum2");
    EXPECT_EQ(q->count, double(B * T));
    // gate/up share one entry too.
    const TensorStats* g = s.find("model.layers." + std::to_string(i) + ".mlp.up_proj");
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->modules.size(), 2u);
  }
  // 2 layers x (qkv, o, gate/up, down, residual) distinct inputs.
  EXPECT_EQ(s.tensors.size(), size_t(m->num_layers() * 5));
}

TEST(StatsCollect, MergingTwoHalvesEqualsOneRun) {
  auto m = tiny("opt");
  const CalibSet set = test::lcg_calib_set(8, 16, 0, 128, 7);
  StatsRunOptions o;
  o.batch = 2;
  const ActStats all = collect_stats(*m, set, o);
  o.end = 4;
  ActStats a = collect_stats(*m, set, o);
  o.begin = 4;
  o.end = 8;
  const ActStats b = collect_stats(*m, set, o);
  a.merge(b);
  ASSERT_EQ(a.tensors.size(), all.tensors.size());
  EXPECT_EQ(a.meta["samples"], 8);
  EXPECT_EQ(a.meta["tokens"], 128.0);
  EXPECT_EQ(a.meta["sources"].size(), 2u);
  for (size_t t = 0; t < all.tensors.size(); ++t) {
    const auto &x = a.tensors[t], &y = all.tensors[t];
    EXPECT_EQ(x.count, y.count);
    expect_close(x.sum, y.sum, 1e-12, x.name + " sum");
    expect_close(x.sum2, y.sum2, 1e-12, x.name + " sum2");
    expect_close(x.sum4, y.sum4, 1e-12, x.name + " sum4");
    EXPECT_EQ(x.min, y.min);
    EXPECT_EQ(x.max, y.max);
    EXPECT_EQ(x.ge[0], y.ge[0]);
    EXPECT_EQ(x.hist, y.hist);
    ASSERT_EQ(x.top.size(), y.top.size());
    for (size_t k = 0; k < x.top.size(); ++k) {
      EXPECT_EQ(x.top[k].value, y.top[k].value);
      EXPECT_EQ(x.top[k].sample, y.top[k].sample);
      EXPECT_EQ(x.top[k].position, y.top[k].position);
    }
  }
  // Snapshots: one run at 2, 4, 8 samples (batches of 2); merged: a's 2, 4 and a+b's 6, 8.
  ASSERT_EQ(all.snapshots.size(), 3u);
  ASSERT_EQ(a.snapshots.size(), 4u);
  EXPECT_EQ(a.snapshots[1].samples, 4);
  EXPECT_EQ(a.snapshots[3].samples, 8);
  expect_close(a.snapshots[1].sum2[0], all.snapshots[1].sum2[0], 1e-12, "snapshot at 4");
  expect_close(a.snapshots[3].sum2[0], all.tensors[0].sum2, 1e-12, "snapshot at 8");
}

TEST(StatsCollect, ResumeContinuesAfterCheckpoint) {
  auto m = tiny("opt");
  const CalibSet set = test::lcg_calib_set(6, 8, 0, 128, 3);
  StatsRunOptions o;
  o.checkpoint_every = 2;
  std::vector<ActStats> checkpoints;
  const ActStats all = collect_stats(*m, set, o, nullptr, [&](const ActStats& s) { checkpoints.push_back(s); });
  ASSERT_EQ(checkpoints.size(), 2u);  // after 2 and 4 samples
  EXPECT_EQ(checkpoints[0].meta["sources"][0]["range"], Json::array({0, 2}));
  // Round trip the checkpoint through a file, then resume from it.
  const std::string path = tmp_path("ckpt.safetensors");
  save_stats(checkpoints[0], path);
  const ActStats ck = load_stats(path);
  std::remove(path.c_str());
  const ActStats resumed = collect_stats(*m, set, o, &ck);
  EXPECT_EQ(resumed.meta["sources"][0]["range"], Json::array({0, 6}));
  EXPECT_EQ(resumed.meta["samples"], 6);
  for (size_t t = 0; t < all.tensors.size(); ++t) {
    expect_close(resumed.tensors[t].sum2, all.tensors[t].sum2, 1e-12, "sum2");
    EXPECT_EQ(resumed.tensors[t].max, all.tensors[t].max);
  }
  ASSERT_EQ(resumed.snapshots.size(), all.snapshots.size());
  for (size_t i = 0; i < all.snapshots.size(); ++i) EXPECT_EQ(resumed.snapshots[i].samples, all.snapshots[i].samples);
  CalibSet other = test::lcg_calib_set(6, 8, 0, 128, 4);
  EXPECT_THROW(collect_stats(*m, other, o, &ck), ArgError);
}

TEST(StatsCollect, PaddedRowsAreSkipped) {
  // Sample 1 = the first 5 tokens of sample 0 + 3 padding tokens: with right padding and a causal
  // model its real tokens see exactly what they would alone, so stats(set) = stats(sample 0) +
  // stats(sample 0[:5]).
  auto m = tiny("llama2");
  CalibSet padded = test::lcg_calib_set(2, 8, 0, 128, 11);
  int32_t* ids = padded.ids.data_mut<int32_t>();
  for (int t = 0; t < 5; ++t) ids[8 + t] = ids[t];
  padded.mask = Tensor::zeros(DType::U8, {2, 8});
  for (int t = 0; t < 13; ++t) padded.mask.data_mut<uint8_t>()[t] = 1;
  StatsRunOptions o;
  o.batch = 2;
  const ActStats sp = collect_stats(*m, padded, o);
  CalibSet a = test::lcg_calib_set(1, 8, 0, 128, 11);
  CalibSet b = test::lcg_calib_set(1, 5, 0, 128, 11);
  ActStats sa = collect_stats(*m, a, o);
  sa.merge(collect_stats(*m, b, o));
  EXPECT_EQ(sp.meta["tokens"], 13.0);
  for (size_t t = 0; t < sp.tensors.size(); ++t) {
    EXPECT_EQ(sp.tensors[t].count, 13);
    expect_close(sp.tensors[t].sum2, sa.tensors[t].sum2, 1e-5, sp.tensors[t].name);
  }
}

TEST(StatsCollect, FileRoundTrip) {
  auto m = tiny("opt");
  StatsRunOptions o;
  const ActStats s = collect_stats(*m, test::lcg_calib_set(4, 12, 0, 128, 5), o);
  const std::string path = tmp_path("rt.safetensors");
  save_stats(s, path);
  const ActStats r = load_stats(path);
  std::remove(path.c_str());
  ASSERT_EQ(r.tensors.size(), s.tensors.size());
  EXPECT_EQ(r.meta, s.meta);
  for (size_t t = 0; t < s.tensors.size(); ++t) {
    EXPECT_EQ(r.tensors[t].modules, s.tensors[t].modules);
    EXPECT_EQ(r.tensors[t].sum3, s.tensors[t].sum3);
    EXPECT_EQ(r.tensors[t].hist, s.tensors[t].hist);
    EXPECT_EQ(r.tensors[t].top.size(), s.tensors[t].top.size());
  }
  EXPECT_EQ(r.snapshots.size(), s.snapshots.size());
}

TEST(StatsCollect, ClearErrors) {
  auto m = tiny("opt");
  ActStatsOptions bad;
  bad.modules = {"model.decoder.layers.7.fc1"};
  try {
    ActStatsCollector c(*m, bad);
    FAIL() << "no error for an unknown module";
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("model.decoder.layers.7.fc1"), std::string::npos);
  }
  ActStatsOptions glob;
  glob.modules = {"*.fc1"};
  EXPECT_EQ(select_modules(observable_modules(*m, false), glob.modules).size(), 2u);
  StatsRunOptions o;
  try {  // tiny OPT has 64 positions
    collect_stats(*m, test::lcg_calib_set(1, 65, 0, 128, 1), o);
    FAIL() << "no error for seqlen beyond the context";
  } catch (const ArgError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the model's context"), std::string::npos);
  }
  EXPECT_THROW(collect_stats(*m, test::lcg_calib_set(1, 8, 0, 1000, 1), o), ArgError);  // ids beyond vocab
  o.begin = 3;
  EXPECT_THROW(collect_stats(*m, test::lcg_calib_set(2, 8, 0, 128, 1), o), ArgError);  // empty range
}

TEST(StatsCollect, GlobMatch) {
  EXPECT_TRUE(glob_match("model.layers.*.mlp.down_proj", "model.layers.12.mlp.down_proj"));
  EXPECT_FALSE(glob_match("model.layers.*.mlp.down_proj", "model.layers.12.mlp.up_proj"));
  EXPECT_TRUE(glob_match("*", "x"));
  EXPECT_TRUE(glob_match("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(glob_match("a*b", "a"));
}

}  // namespace
}  // namespace calq
