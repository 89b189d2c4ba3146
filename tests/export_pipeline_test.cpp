// The "Verified by" with the real quantizers: `calq quantize`'s pipeline (GPTQ with
// act-order, AWQ with its scaled norms) -> QuantState -> GPTQ / AWQ export -> load -> the weights
// and logits equal the fake-quant checkpoint written from the same state, bitwise.
#include <gtest/gtest.h>

#include <random>

#include "formats/hf_quant_export.h"
#include "export_fixtures.h"
#include "io/checkpoint.h"
#include "formats/loader.h"
#include "formats/fakequant.h"
#include "quant/pipeline.h"
#include "test_util.h"

namespace calq::test {
namespace {

CalibTokens random_calib(int vocab, int64_t n, int64_t seq) {
  CalibTokens c;
  c.n = n;
  c.seq = seq;
  std::mt19937 rng(1234);
  for (int64_t k = 0; k < n * seq; ++k) c.ids.push_back(int32_t(rng() % uint32_t(vocab)));
  return c;
}

void expect_bitwise_same(Decoder& a, Decoder& b, const std::string& model) {
  auto la = a.all_linears(true), lb = b.all_linears(true);
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i)
    EXPECT_TRUE(bitwise_equal(la[i]->weight_f32(), lb[i]->weight_f32())) << la[i]->name;
  for (int l = 0; l < a.num_layers(); ++l) {
    EXPECT_TRUE(bitwise_equal(a.layer(l).attn_norm.weight, b.layer(l).attn_norm.weight)) << l;
    EXPECT_TRUE(bitwise_equal(a.layer(l).mlp_norm.weight, b.layer(l).mlp_norm.weight)) << l;
  }
  const Tensor x = fixture_logits(a, model), y = fixture_logits(b, model);
  EXPECT_TRUE(bitwise_equal(x, y)) << "max |dlogit| " << max_abs_diff(x, y);
}

TEST(ExportPipelineSlow, RealGptqAndAwqRunsExportBitwise) {
  const std::string model = data("models/tiny/llama2");
  const CalibTokens calib = random_calib(128, 4, 16);
  struct Run {
    bool awq;
    int bits, group;
    bool desc_act, sym;
  };
  const Run runs[] = {{false, 4, 32, true, false}, {false, 3, -1, false, true}, {true, 4, 32, false, false}};
  int k = 0;
  for (const Run& r : runs) {
    SCOPED_TRACE(std::string(r.awq ? "awq" : "gptq") + " " + std::to_string(r.bits) + "-bit");
    ScratchDir dir("pipe" + std::to_string(k++));
    auto m = Decoder::load(model);
    QuantizeOptions o;
    if (r.awq) {
      AwqConfig a;
      a.bits = r.bits;
      a.group_size = r.group;
      o.method = a;
    } else {
      GptqConfig g;
      g.bits = r.bits;
      g.group_size = r.group;
      g.desc_act = r.desc_act;
      g.sym = r.sym;
      o.method = g;
    }
    quantize_model(*m, &calib, o, dir / "qs");
    const QuantState qs = QuantState::open(dir / "qs");
    write_fake_quant_checkpoint(qs, dir / "fq");
    const ExportReport rep = r.awq ? export_awq(qs, dir / "out") : export_gptq(qs, dir / "out");
    EXPECT_EQ(rep.stats.scales_rounded, 0);  // the quantizers follow the fp16 scale contract
    if (r.awq) {
      EXPECT_GT(rep.replaced, 0);  // AWQ's scaled norms
    }
    const Json qc = Checkpoint::open(dir / "out").config().at("quantization_config");
    if (!r.awq) {
      EXPECT_EQ(qc.at("desc_act"), r.desc_act);
      EXPECT_EQ(qc.at("sym"), r.sym);
      EXPECT_EQ(qc.at("bits"), r.bits);
    }
    auto fq = load_model(dir / "fq");
    auto got = load_dequantized(dir / "out");
    expect_bitwise_same(*fq, *got, model);
  }
}

}  // namespace
}  // namespace calq::test
