// HF <-> GGUF tensor names for the Llama family, as llama.cpp's tensor_mapping.py names them.
#include <gtest/gtest.h>

#include "formats/gguf_names.h"

namespace calq {
namespace {

TEST(ExportGgufNames, LlamaFamilyBothWays) {
  const std::pair<const char*, const char*> cases[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
      {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
      {"model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias"},
      {"model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight"},
      {"model.layers.12.self_attn.v_proj.weight", "blk.12.attn_v.weight"},
      {"model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight"},
      {"model.layers.31.post_attention_layernorm.weight", "blk.31.ffn_norm.weight"},
      {"model.layers.2.mlp.gate_proj.weight", "blk.2.ffn_gate.weight"},
      {"model.layers.2.mlp.up_proj.weight", "blk.2.ffn_up.weight"},
      {"model.layers.2.mlp.down_proj.weight", "blk.2.ffn_down.weight"},
  };
  for (const auto& [hf, gg] : cases) {
    EXPECT_EQ(hf_to_gguf_name(hf).value_or("?"), gg) << hf;
    EXPECT_EQ(gguf_to_hf_name(gg).value_or("?"), hf) << gg;
  }
  for (const char* bad : {"model.layers.x.mlp.up_proj.weight", "model.layers.1.mlp.fc1.weight", "model.layers.01.mlp.up_proj.weight",
                          "model.embed_tokens", "model.layers..mlp.up_proj.weight", "rope_freqs.weight", ""}) {
    EXPECT_FALSE(hf_to_gguf_name(bad).has_value()) << bad;
    EXPECT_FALSE(gguf_to_hf_name(bad).has_value()) << bad;
  }
  EXPECT_FALSE(gguf_to_hf_name("blk.1.attn_qkv.weight").has_value());
}

}  // namespace
}  // namespace calq
