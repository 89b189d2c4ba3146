// Reading a GGUF file's tokenizer (tokenizer.ggml.*) back into calq's Tokenizer: the metadata is
// turned into the Hugging Face tokenizer.json the same vocabulary has, as transformers' GGUF
// loader does (integrations/ggml.py), then parsed by the tokenizer room like any other file.
#include <algorithm>
#include <map>
#include <set>

#include "formats/gguf_tokenizer.h"
#include "util/error.h"
#include "util/sha256.h"

namespace calq {

namespace {

enum TokType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The pre-tokenizer regexes of the byte-level BPE families llama.cpp names in tokenizer.ggml.pre
// (llama-vocab.cpp), as their tokenizer.json files spell them.
const char* const kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
const char* const kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

const gguf::Value* array_of(const gguf::File& f, const std::string& key, gguf::ValueType elem, size_t n) {
  const gguf::Value* v = f.find(key);
  if (!v) return nullptr;
  if (v->type != gguf::ValueType::ARRAY || v->elem != elem || v->size() != n)
    throw FormatError(f.path() + ": metadata '" + key + "' must be an array of " + std::to_string(n) + " " +
                      gguf::value_type_name(elem) + " (one per token)");
  return v;
}

int64_t id_or(const gguf::File& f, const std::string& key, size_t n_tokens) {
  if (!f.find(key)) return -1;
  const uint64_t id = f.get_uint(key);
  if (id >= n_tokens) throw FormatError(f.path() + ": metadata '" + key + "' = " + std::to_string(id) + " is not a token id");
  return int64_t(id);
}

bool bool_or(const gguf::File& f, const std::string& key, bool dflt) { return f.find(key) ? f.get_bool(key) : dflt; }

// Byte offsets of the UTF-8 code point boundaries inside s (excluding 0 and s.size()).
std::vector<size_t> inner_boundaries(const std::string& s) {
  std::vector<size_t> b;
  for (size_t i = 1; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) b.push_back(i);
  return b;
}

size_t codepoints(const std::string& s) { return inner_boundaries(s).size() + (s.empty() ? 0 : 1); }

// SentencePiece BPE as merges: every split of a piece into two vocabulary pieces, ordered by the
// piece's score (highest first), then the longer left part, then the longer right part, then the
// ids of the parts — transformers' generate_merges (convert_slow_tokenizer.py), which made the
// merges of the converted Llama tokenizer.json files. llama.cpp's SPM tokenizer merges the same
// pairs by score.
Json spm_merges(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                const std::map<std::string, int64_t>& id_of) {
  struct M {
    float score;
    size_t len_l, len_r;
    int64_t id_l, id_r;
    std::string l, r;
  };
  std::vector<M> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& piece = tokens[i];
    if (id_of.at(piece) != int64_t(i)) continue;  // a duplicate string: its first id stands for it
    for (size_t cut : inner_boundaries(piece)) {
      auto l = id_of.find(piece.substr(0, cut)), r = id_of.find(piece.substr(cut));
      if (l == id_of.end() || r == id_of.end()) continue;
      merges.push_back({scores[i], codepoints(l->first), codepoints(r->first), l->second, r->second, l->first, r->first});
    }
  }
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.len_l != b.len_l) return a.len_l > b.len_l;
    if (a.len_r != b.len_r) return a.len_r > b.len_r;
    return std::pair(a.id_l, a.id_r) < std::pair(b.id_l, b.id_r);
  });
  Json out = Json::array();
  for (const M& m : merges) out.push_back(Json::array({m.l, m.r}));
  return out;
}

Json template_processor(const std::vector<std::string>& tokens, int64_t bos, int64_t eos) {
  Json single = Json::array(), special = Json::object();
  auto add = [&](int64_t id) {
    const std::string& t = tokens[size_t(id)];
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    special[t] = {{"id", t}, {"ids", Json::array({id})}, {"tokens", Json::array({t})}};
  };
  if (bos >= 0) add(bos);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos >= 0) {
    const std::string& t = tokens[size_t(eos)];
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    special[t] = {{"id", t}, {"ids", Json::array({eos})}, {"tokens", Json::array({t})}};
  }
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", special}};
}

Json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

}  // namespace

Json gguf_tokenizer_json(const gguf::File& f) {
  if (!f.find("tokenizer.ggml.model")) return Json();
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "llama" && model != "gpt2")
    throw UnsupportedError(f.path() + ": tokenizer.ggml.model '" + model +
                           "' (calq rebuilds llama and gpt2 tokenizers; pass the model's tokenizer.json with --tokenizer)");
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = tokens.size();
  if (n == 0) throw FormatError(f.path() + ": tokenizer.ggml.tokens is empty");
  std::vector<int> types(n, kNormal);
  if (const gguf::Value* t = array_of(f, "tokenizer.ggml.token_type", gguf::ValueType::I32, n))
    for (size_t i = 0; i < n; ++i) types[i] = int(t->at(i).i);
  std::vector<float> scores(n, 0.0f);
  if (const gguf::Value* s = array_of(f, "tokenizer.ggml.scores", gguf::ValueType::F32, n))
    for (size_t i = 0; i < n; ++i) scores[i] = float(s->at(i).f);

  const bool spm = model == "llama";
  const int64_t bos = id_or(f, "tokenizer.ggml.bos_token_id", n), eos = id_or(f, "tokenizer.ggml.eos_token_id", n);
  const int64_t unk = id_or(f, "tokenizer.ggml.unknown_token_id", n);
  // llama.cpp's defaults when the keys are absent (llama-vocab.cpp): SPM adds BOS, and so does BPE
  // with the Llama-3 pre-tokenizer (llama-bpe); other BPE does not; none adds EOS.
  const std::string pre = f.find("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
  const bool llama3 = model == "gpt2" && (pre == "llama-bpe" || pre == "llama3");
  const bool add_bos = bool_or(f, "tokenizer.ggml.add_bos_token", spm || llama3) && bos >= 0;
  const bool add_eos = bool_or(f, "tokenizer.ggml.add_eos_token", false) && eos >= 0;

  Json vocab = Json::object();
  std::map<std::string, int64_t> id_of;
  Json added = Json::array();
  for (size_t i = 0; i < n; ++i) {
    if (id_of.emplace(tokens[i], int64_t(i)).second) vocab[tokens[i]] = i;
    const int t = types[i];
    if (t == kControl || t == kUnknown || t == kUserDefined)
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", t != kUserDefined}});
  }
  Json j = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  Json bpe = {{"type", "BPE"}, {"dropout", nullptr}, {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}};
  if (spm) {
    // SentencePiece BPE as converted Llama tokenizers have it (transformers LlamaConverter, legacy):
    // spaces become ▁, one ▁ is prepended (tokenizer.ggml.add_space_prefix, llama.cpp's default on).
    const bool prefix = bool_or(f, "tokenizer.ggml.add_space_prefix", true);
    Json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
    const Json prepend = {{"type", "Prepend"}, {"prepend", "\u2581"}};
    j["normalizer"] = prefix ? Json{{"type", "Sequence"}, {"normalizers", Json::array({prepend, replace})}} : replace;
    j["pre_tokenizer"] = nullptr;
    Json decoders = Json::array({Json{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                 Json{{"type", "ByteFallback"}}, Json{{"type", "Fuse"}}});
    if (prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    bpe["unk_token"] = unk >= 0 ? Json(tokens[size_t(unk)]) : Json(nullptr);
    bpe["fuse_unk"] = true;
    bpe["byte_fallback"] = true;
    bpe["ignore_merges"] = false;
    bpe["merges"] = spm_merges(tokens, scores, id_of);
  } else {
    // Byte-level BPE: the pre-tokenizer is named, not stored; calq knows the families it writes.
    Json split = nullptr;
    if (pre == "llama-bpe" || pre == "llama3") split = kLlama3Split;
    else if (pre == "qwen2") split = kQwen2Split;
    else if (pre != "default" && pre != "gpt2")
      throw UnsupportedError(f.path() + ": tokenizer.ggml.pre '" + pre + "' (calq rebuilds llama-bpe, qwen2 and gpt2 "
                             "byte-level tokenizers; pass the model's tokenizer.json with --tokenizer)");
    j["normalizer"] = pre == "qwen2" ? Json{{"type", "NFC"}} : Json(nullptr);
    if (split.is_null()) {
      j["pre_tokenizer"] = byte_level(true);
    } else {
      const Json split_step = {{"type", "Split"}, {"pattern", {{"Regex", split}}}, {"behavior", "Isolated"}, {"invert", false}};
      j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", Json::array({split_step, byte_level(false)})}};
    }
    j["decoder"] = byte_level(true);
    bpe["unk_token"] = nullptr;
    bpe["fuse_unk"] = false;
    bpe["byte_fallback"] = false;
    bpe["ignore_merges"] = pre == "llama-bpe" || pre == "llama3";  // llama.cpp: ignore_merges for LLAMA3
    Json merges = Json::array();
    if (f.find("tokenizer.ggml.merges"))
      for (const std::string& m : f.get_string_array("tokenizer.ggml.merges")) merges.push_back(m);
    bpe["merges"] = merges;
  }
  bpe["vocab"] = vocab;
  j["model"] = bpe;
  j["post_processor"] = add_bos || add_eos ? template_processor(tokens, add_bos ? bos : -1, add_eos ? eos : -1) : Json(nullptr);
  return j;
}

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const gguf::File& f) {
  const Json j = gguf_tokenizer_json(f);
  if (j.is_null()) return nullptr;
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  const int64_t eos = id_or(f, "tokenizer.ggml.eos_token_id", tokens.size());
  const std::string config = eos >= 0 ? Json{{"eos_token", tokens[size_t(eos)]}}.dump() : "";
  return Tokenizer::from_json_text(j.dump(), f.path() + " (GGUF tokenizer metadata)", config);
}

std::string gguf_tokenizer_source_sha256(const gguf::File& f) {
  return f.find("calq.tokenizer.sha256") ? f.get_string("calq.tokenizer.sha256") : "";
}

}  // namespace calq
