// imatrix GGUF export: written, read back with the GGUF reader, names and values checked.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "formats/imatrix.h"
#include "calib/calib_set.h"
#include "io/gguf.h"
#include "model/decoder.h"
#include "observe/stats_runner.h"
#include "test_util.h"
#include "util/error.h"

namespace calq {
namespace {

CalibSet random_set(int64_t n, int64_t T, int32_t vocab) {
  CalibSet s;
  s.ids = Tensor::empty(DType::I32, {n, T});
  for (int64_t i = 0; i < n * T; ++i) s.ids.data_mut<int32_t>()[i] = int32_t((i * 37 + 11) % vocab);
  s.manifest = {{"builder", "random-tokens"}, {"seqlen", T}};
  return s;
}

TEST(ImatrixExport, WritesLlamaCppLayout) {
  auto m = Decoder::load(test::data("models/tiny/llama2"));
  StatsRunOptions o;
  o.collect.lm_head = true;
  const ActStats s = collect_stats(*m, random_set(3, 16, 128), o);
  const std::string path = test::temp_path("imatrix", "export.gguf");
  write_imatrix(s, path);
  auto f = gguf::File::open(path);
  EXPECT_EQ(f->get_string("general.type"), "imatrix");
  EXPECT_EQ(f->get_uint("imatrix.chunk_count"), 3u);
  EXPECT_EQ(f->get_uint("imatrix.chunk_size"), 16u);
  const auto ds = f->get_string_array("imatrix.datasets");
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].rfind("calq:random-tokens:", 0), 0u);
  // 2 layers x 7 weights + output, three tensors each.
  EXPECT_EQ(f->tensors().size(), size_t((2 * 7 + 1) * 3));
  const TensorStats* q = s.find("model.layers.1.self_attn.q_proj");
  ASSERT_NE(q, nullptr);
  for (const char* w : {"blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight"}) {
    const gguf::TensorInfo* t = f->find_tensor(std::string(w) + ".in_sum2");
    ASSERT_NE(t, nullptr) << w;
    EXPECT_EQ(t->ne, (std::vector<int64_t>{64}));
    EXPECT_EQ(t->type, ggml::Type::F32);
    const Tensor v = f->to_f32(std::string(w) + ".in_sum2");
    for (int c = 0; c < 64; ++c) EXPECT_EQ(v.f32()[c], float(q->sum2[size_t(c)])) << w << " " << c;
    const Tensor n = f->to_f32(std::string(w) + ".counts");
    ASSERT_EQ(n.numel(), 1);
    EXPECT_EQ(n.f32()[0], 48.0f);
    const Tensor sum = f->to_f32(std::string(w) + ".in_sum");
    EXPECT_EQ(sum.f32()[7], float(q->sum[7]));
  }
  const TensorStats* down = s.find("model.layers.0.mlp.down_proj");
  const Tensor d = f->to_f32("blk.0.ffn_down.weight.in_sum2");
  EXPECT_EQ(d.numel(), down->cols);
  EXPECT_EQ(d.f32()[5], float(down->sum2[5]));
  EXPECT_NE(f->find_tensor("output.weight.in_sum2"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.weight.in_sum2"), nullptr);  // residual streams are not weights
  // Names come out sorted, as llama.cpp writes them.
  for (size_t i = 3; i < f->tensors().size(); i += 3)
    EXPECT_LT(f->tensors()[i - 3].name, f->tensors()[i].name);
  std::remove(path.c_str());
}

TEST(ImatrixExport, RefusesModelsWithoutGgufNames) {
  auto m = Decoder::load(test::data("models/tiny/opt"));
  StatsRunOptions o;
  const ActStats s = collect_stats(*m, random_set(1, 8, 128), o);
  EXPECT_THROW(imatrix_writer(s), ArgError);
}

// The legacy .dat layout, byte by byte, on a hand-made statistics entry: 2 chunks, 4 tokens,
// Σx² = {4, 8}: values mean(x²)·ncall = {2, 4}.
TEST(ImatrixExport, LegacyDatKnownBytes) {
  ActStats s;
  s.meta = {{"samples", 2}};
  TensorStats t;
  t.name = "model.layers.0.mlp.down_proj";
  t.modules = {t.name};
  t.kind = "mlp_out";
  t.layer = 0;
  t.init(2);
  t.count = 4;
  t.sum2 = {4.0, 8.0};
  s.tensors.push_back(t);
  ImatrixOptions o;
  o.datasets = {"wiki"};
  const std::string got = imatrix_dat_bytes(s, o);
  auto i32 = [](int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto f32 = [](float v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  const std::string name = "blk.0.ffn_down.weight";
  const std::string want = i32(1) + i32(int32_t(name.size())) + name + i32(2) + i32(2) + f32(2.0f) + f32(4.0f) +
                           i32(2) + i32(4) + "wiki";
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace calq
