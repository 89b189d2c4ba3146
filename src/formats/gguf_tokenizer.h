// tokenizer.ggml.* metadata for a GGUF export, read straight from the model folder's files the way
// llama.cpp's convert_hf_to_gguf.py does:
//   * tokenizer.model (SentencePiece protobuf) present: model "llama", pieces, scores and piece types
//     from it (_set_vocab_sentencepiece), padded with "[PAD<i>]" (UNUSED) up to vocab_size;
//   * else tokenizer.json with a byte-level BPE: model "gpt2", tokens, merges, types (added special
//     tokens CONTROL, other added tokens USER_DEFINED), pre "default";
//   * else tokenizer.json with a SentencePiece-style BPE (byte_fallback) or Unigram: model "llama";
//     Unigram scores as stored, BPE scores = −(rank of the merge that forms the piece) so that
//     llama.cpp's score-ordered merging follows the merge ranks (pieces no merge forms score 0);
// plus bos/eos/unk/padding ids and add_bos_token/add_eos_token from tokenizer_config.json /
// config.json. Token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace calq {

struct SentencePiece {
  std::string piece;
  float score = 0;
  int type = 1;  // sentencepiece ModelProto.SentencePiece.Type (same numbering as llama.cpp's token types)
};
// Parses the pieces of a SentencePiece ModelProto (field 1); FormatError naming `what` on bad bytes.
std::vector<SentencePiece> parse_sentencepiece_model(const std::string& bytes, const std::string& what);

// Adds the tokenizer metadata for `model_dir`; returns warnings (e.g. no tokenizer found). With a
// tokenizer.json in the folder, its sha256 goes to calq.tokenizer.sha256: the identity evaluations
// check (a KLD reference made on the float model matches the GGUF's rebuilt tokenizer).
std::vector<std::string> add_tokenizer_metadata(gguf::Writer& w, const std::string& model_dir, const ModelConfig& cfg);

// ---- reading (gguf_tokenizer_read.cpp) ---------------------------------------------------------
// The tokenizer a GGUF file carries, as the Hugging Face tokenizer.json the same vocabulary gives
// (null Json when the file has no tokenizer.ggml.model):
//   * "llama" (SentencePiece BPE): vocabulary and byte-fallback pieces, control/unknown/user-defined
//     pieces as added tokens, merges from every two-piece split of each piece ordered by score
//     (transformers' generate_merges), Prepend("▁") + Replace(" " -> "▁") (add_space_prefix), the
//     SentencePiece decoder, BOS/EOS templates from add_bos_token/add_eos_token (default BOS only);
//   * "gpt2" (byte-level BPE): tokens and merges as stored; tokenizer.ggml.pre names the
//     pre-tokenizer: llama-bpe (Llama-3 regex, ignore_merges), qwen2 (its regex, NFC), gpt2/default
//     (GPT-2's); others are refused (UnsupportedError) — pass the model's tokenizer.json instead.
Json gguf_tokenizer_json(const gguf::File& f);
// That tokenizer, or null when the file has none.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const gguf::File& f);
// calq.tokenizer.sha256 (the source tokenizer.json's sha256, written by calq), or "".
std::string gguf_tokenizer_source_sha256(const gguf::File& f);

}  // namespace calq
