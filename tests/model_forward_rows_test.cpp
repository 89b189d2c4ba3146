// ForwardOptions::rows: a forward pass that returns logits (or final hidden states) for chosen rows
// only, with the last layer's o_proj, MLP and final norm run on those rows alone. Each returned row
// must be bitwise the row of a full pass (the same operations on the same values), for every
// block layout (pre-norm, Cohere's parallel block, OPT post-LN), f32 and bf16 compute, in any row
// order, with or without an observer; bad requests are refused. Bitwise holds because oneDNN's
// AVX-512 GEMM kernels compute a row the same way whatever the row count; with its AVX2 kernels
// (an AVX2 CPU, or ONEDNN_MAX_CPU_ISA=AVX2) rows differ in the last bits, so there the rows are
// checked within 1e-5 relative (test::expect_row_invariant, gemm_rows_independent()).
#include <gtest/gtest.h>

#include <cstring>

#include "model/decoder.h"
#include "test_util.h"

namespace calq {
namespace {

// Rows of `full` ([B, T, V]) at `rows`, as [1, rows.size(), V].
std::vector<float> pick(const Tensor& full, const std::vector<int64_t>& rows) {
  const int64_t V = full.dim(2);
  std::vector<float> r;
  for (int64_t x : rows) r.insert(r.end(), full.f32() + x * V, full.f32() + (x + 1) * V);
  return r;
}

void expect_rows_equal_full(const Decoder& m, const std::vector<int32_t>& ids, int64_t B, int64_t T,
                            const std::vector<int64_t>& rows, const std::string& what) {
  const ForwardOutput full = m.forward(ids.data(), B, T);
  ForwardOptions o;
  o.rows = rows;
  const ForwardOutput sel = m.forward(ids.data(), B, T, o);
  ASSERT_EQ(sel.logits.shape(), (Shape{1, int64_t(rows.size()), full.logits.dim(2)})) << what;
  const std::vector<float> want = pick(full.logits, rows);
  test::expect_row_invariant(std::vector<float>(sel.logits.f32(), sel.logits.f32() + want.size()), want, 1e-5,
                             what + ": logits");

  ForwardOptions h = o;
  h.logits = ForwardOptions::Logits::None;
  ForwardOptions hf;
  hf.logits = ForwardOptions::Logits::None;
  const Tensor fh = m.forward(ids.data(), B, T, hf).last_hidden_state;
  const Tensor sh = m.forward(ids.data(), B, T, h).last_hidden_state;
  ASSERT_EQ(sh.shape(), (Shape{1, int64_t(rows.size()), fh.dim(2)})) << what;
  const std::vector<float> wh = pick(fh, rows);
  test::expect_row_invariant(std::vector<float>(sh.f32(), sh.f32() + wh.size()), wh, 1e-5, what + ": final hidden states");
}

class ForwardRows : public ::testing::TestWithParam<std::string> {};

// The second half of every sequence (what the llama.cpp perplexity protocol scores), and a few
// rows out of order with a repeat.
TEST_P(ForwardRows, SelectedRowsAreBitwiseTheFullPassRows) {
  const std::string dir = test::data("models/tiny/" + GetParam());
  auto model = Decoder::load(dir);
  int64_t B, T;
  const auto ids = test::read_id_batch(dir + "/golden/input_ids.json", &B, &T);
  std::vector<int64_t> half;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = T / 2; t + 1 < T; ++t) half.push_back(b * T + t);
  const std::vector<int64_t> odd = {B * T - 1, 0, 5, 5, T + 1};
  for (ComputeType c : {ComputeType::F32, ComputeType::BF16}) {
    model->set_compute(c);
    const std::string tag = GetParam() + (c == ComputeType::BF16 ? " bf16" : " f32");
    expect_rows_equal_full(*model, ids, B, T, half, tag + " second halves");
    expect_rows_equal_full(*model, ids, B, T, odd, tag + " rows out of order");
  }
}

INSTANTIATE_TEST_SUITE_P(AllArchs, ForwardRows, ::testing::ValuesIn(test::tiny_archs()));

// OPT's post-LN layout (do_layer_norm_before = false, OPT-350m): the tiny OPT's weights run with
// pre_norm off.
TEST(ForwardRowsPostNorm, SelectedRowsAreBitwiseTheFullPassRows) {
  const std::string dir = test::data("models/tiny/opt");
  auto ckpt = std::make_shared<const Checkpoint>(Checkpoint::open(dir));
  ModelConfig cfg = ModelConfig::from_json(ckpt->config(), dir);
  cfg.pre_norm = false;
  auto model = Decoder::from_source(cfg, std::make_shared<CheckpointSource>(ckpt));
  int64_t B, T;
  const auto ids = test::read_id_batch(dir + "/golden/input_ids.json", &B, &T);
  expect_rows_equal_full(*model, ids, B, T, {1, T + 3, 2 * T - 2}, "opt post-LN");
}

// Records the last layer's output rows it is shown.
class LastLayerRows final : public Observer {
 public:
  explicit LastLayerRows(int layer) : layer_(layer) {}
  bool wants(const std::string&) const override { return true; }
  void on_layer_output(const std::string&, int i, const float*, int64_t rows, int64_t) override {
    if (i == layer_) seen = rows;
  }
  int64_t seen = -1;

 private:
  int layer_;
};

// An observer sees a full pass (every row of every layer); the logits are still those rows only.
TEST(ForwardRowsObserver, ObserverSeesEveryRow) {
  const std::string dir = test::data("models/tiny/llama2");
  auto model = Decoder::load(dir);
  int64_t B, T;
  const auto ids = test::read_id_batch(dir + "/golden/input_ids.json", &B, &T);
  LastLayerRows obs(model->num_layers() - 1);
  ForwardOptions o;
  o.rows = {2, T + 7};
  o.observer = &obs;
  const ForwardOutput sel = model->forward(ids.data(), B, T, o);
  EXPECT_EQ(obs.seen, B * T);
  const ForwardOutput full = model->forward(ids.data(), B, T);
  const std::vector<float> want = pick(full.logits, o.rows);
  ASSERT_EQ(sel.logits.numel(), int64_t(want.size()));
  test::expect_row_invariant(std::vector<float>(sel.logits.f32(), sel.logits.f32() + want.size()), want, 1e-5, "logits");
}

TEST(ForwardRowsErrors, RefusesRowsOutOfRangeAndUnsupportedCombinations) {
  const std::string dir = test::data("models/tiny/llama2");
  auto model = Decoder::load(dir);
  int64_t B, T;
  const auto ids = test::read_id_batch(dir + "/golden/input_ids.json", &B, &T);
  ForwardOptions o;
  o.rows = {B * T};
  EXPECT_THROW(model->forward(ids.data(), B, T, o), ArgError);
  o.rows = {-1};
  EXPECT_THROW(model->forward(ids.data(), B, T, o), ArgError);
  o.rows = {0};
  o.logits = ForwardOptions::Logits::Last;
  EXPECT_THROW(model->forward(ids.data(), B, T, o), ArgError);
  o.logits = ForwardOptions::Logits::All;
  o.hidden_states = true;
  EXPECT_THROW(model->forward(ids.data(), B, T, o), ArgError);
}

}  // namespace
}  // namespace calq
