// Hugging Face tensor names <-> llama.cpp GGUF tensor names for the Llama family (llama, mistral,
// qwen2: the same module tree), as llama.cpp's convert_hf_to_gguf.py / gguf-py tensor_mapping.py
// name them:
//   model.embed_tokens            token_embd          model.norm     output_norm    lm_head  output
//   model.layers.N.input_layernorm           blk.N.attn_norm
//   model.layers.N.self_attn.{q,k,v,o}_proj  blk.N.attn_{q,k,v,output}
//   model.layers.N.post_attention_layernorm  blk.N.ffn_norm
//   model.layers.N.mlp.{gate,up,down}_proj   blk.N.ffn_{gate,up,down}
// The ".weight" / ".bias" suffix is carried over unchanged.
#pragma once
#include <optional>
#include <string>

namespace calq {

// GGUF name of an HF tensor name, or nullopt when the tensor has no llama.cpp counterpart.
std::optional<std::string> hf_to_gguf_name(const std::string& hf);
// HF name of a GGUF tensor name, or nullopt when unknown.
std::optional<std::string> gguf_to_hf_name(const std::string& gguf);

}  // namespace calq
