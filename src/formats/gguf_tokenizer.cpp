#include "formats/gguf_tokenizer.h"

#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "io/checkpoint.h"
#include "util/error.h"
#include "util/json.h"
#include "util/sha256.h"

namespace calq {

namespace {

enum TokType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// ---- a minimal protobuf reader (bounds-checked) ------------------------------------------------
class Proto {
 public:
  Proto(const uint8_t* p, size_t n, const std::string& what) : p_(p), n_(n), what_(what) {}
  bool done() const { return pos_ >= n_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= n_) throw FormatError(what_ + ": truncated protobuf varint");
      const uint8_t b = p_[pos_++];
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw FormatError(what_ + ": protobuf varint longer than 10 bytes");
  }
  std::pair<const uint8_t*, size_t> bytes() {
    const uint64_t len = varint();
    if (len > n_ - pos_) throw FormatError(what_ + ": protobuf field length " + std::to_string(len) + " beyond the data");
    const uint8_t* s = p_ + pos_;
    pos_ += size_t(len);
    return {s, size_t(len)};
  }
  uint32_t fixed32() {
    if (n_ - pos_ < 4) throw FormatError(what_ + ": truncated protobuf fixed32");
    uint32_t v;
    std::memcpy(&v, p_ + pos_, 4);
    pos_ += 4;
    return v;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1:
        if (n_ - pos_ < 8) throw FormatError(what_ + ": truncated protobuf fixed64");
        pos_ += 8;
        return;
      case 2: bytes(); return;
      case 5: fixed32(); return;
      default: throw FormatError(what_ + ": unsupported protobuf wire type " + std::to_string(wire));
    }
  }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const std::string& what_;
};

// ---- shared helpers ---------------------------------------------------------------------------

std::optional<Json> load_optional(const std::string& path) {
  if (!file_exists(path)) return std::nullopt;
  return load_json_file(path);
}

// "<s>" or {"content": "<s>", ...} as tokenizer_config.json writes special tokens.
std::optional<std::string> token_text(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

struct Vocab {
  std::string model;  // "llama" | "gpt2"
  std::string pre;
  std::vector<std::string> tokens;
  std::vector<float> scores;  // empty for gpt2
  std::vector<int32_t> types;
  std::vector<std::string> merges;
};

void pad_to(Vocab& v, size_t n) {
  while (v.tokens.size() < n) {
    v.tokens.push_back("[PAD" + std::to_string(v.tokens.size()) + "]");
    if (v.model == "llama") v.scores.push_back(-1000.0f);
    v.types.push_back(kUnused);
  }
}

// convert_hf_to_gguf.py _create_vocab_sentencepiece.
Vocab from_sentencepiece(const std::string& dir, const std::optional<Json>& tok_config) {
  const std::string path = path_join(dir, "tokenizer.model");
  Vocab v;
  v.model = "llama";
  v.pre = "default";
  for (auto& sp : parse_sentencepiece_model(read_file(path), path)) {
    v.tokens.push_back(sp.piece);
    v.scores.push_back(sp.score);
    v.types.push_back(sp.type >= 1 && sp.type <= 6 ? sp.type : kNormal);
  }
  if (tok_config && tok_config->is_object() && tok_config->contains("added_tokens_decoder") &&
      (*tok_config)["added_tokens_decoder"].is_object())
    for (auto it = (*tok_config)["added_tokens_decoder"].begin(); it != (*tok_config)["added_tokens_decoder"].end(); ++it) {
      size_t id;
      try {
        id = std::stoul(it.key());
      } catch (const std::exception&) {
        continue;
      }
      if (id >= v.tokens.size() || !it->is_object() || !it->contains("content") || !(*it)["content"].is_string()) continue;
      v.tokens[id] = (*it)["content"].get<std::string>();
      v.types[id] = it->value("special", false) ? kControl : kUserDefined;
      v.scores[id] = -1000.0f;
    }
  return v;
}

bool contains_byte_level(const Json& j) {
  return j.is_object() && j.dump().find("\"ByteLevel\"") != std::string::npos;
}

// utf-8 code points in s (for "is this a single character" tests).
size_t codepoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

Vocab from_tokenizer_json(const std::string& dir, const ModelConfig& cfg, std::vector<std::string>* warnings) {
  const std::string path = path_join(dir, "tokenizer.json");
  const Json j = load_json_file(path);
  const Json& m = j.at("model");
  const std::string type = json_get<std::string>(m, "type", path + " model");
  if (type != "BPE") throw UnsupportedError(path + ": tokenizer model '" + type + "' (calq writes GGUF tokenizers for BPE)");
  const Json& vocab = m.at("vocab");
  if (!vocab.is_object()) throw FormatError(path + ": model.vocab is not an object");
  std::vector<std::string> tokens;
  std::vector<bool> set;
  auto place = [&](int64_t id, const std::string& piece) {
    if (id < 0 || id > (1 << 24)) throw FormatError(path + ": token id " + std::to_string(id) + " out of range");
    if (size_t(id) >= tokens.size()) {
      tokens.resize(size_t(id) + 1);
      set.resize(size_t(id) + 1, false);
    }
    tokens[size_t(id)] = piece;
    set[size_t(id)] = true;
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (const std::string p = json_int_problem(*it, 0, INT32_MAX); !p.empty())
      throw FormatError(path + ": vocab id of '" + it.key().substr(0, 40) + "' is not an integer token id: field 'model.vocab' " + p);
    place(it->get<int64_t>(), it.key());
  }
  std::map<size_t, bool> added;  // id -> special
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string())
        throw FormatError(path + ": malformed added_tokens entry");
      if (const std::string p = json_int_problem(a["id"], 0, INT32_MAX); !p.empty())
        throw FormatError(path + ": malformed added_tokens entry: field 'id' " + p);
      const int64_t id = a["id"].get<int64_t>();
      place(id, a["content"].get<std::string>());
      added[size_t(id)] = a.value("special", false);
    }

  Vocab v;
  const bool byte_level = contains_byte_level(j.value("pre_tokenizer", Json())) || contains_byte_level(j.value("decoder", Json()));
  v.model = byte_level ? "gpt2" : "llama";
  // llama.cpp identifies the pre-tokenizer by hashing its output; calq can only guess by family.
  v.pre = !byte_level ? "default" : cfg.family == Family::Qwen2 ? "qwen2" : "llama-bpe";
  if (byte_level) warnings->push_back("tokenizer.ggml.pre set to '" + v.pre + "' by model family (llama.cpp checks it by hash)");
  std::vector<std::string> merges;
  if (m.contains("merges") && m["merges"].is_array())
    for (const auto& mg : m["merges"]) {
      if (mg.is_string()) {
        merges.push_back(mg.get<std::string>());
      } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
        merges.push_back(mg[0].get<std::string>() + " " + mg[1].get<std::string>());
      } else {
        throw FormatError(path + ": malformed merges entry");
      }
    }
  std::map<std::string, size_t> id_of;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (set[i]) id_of.emplace(tokens[i], i);
  const std::string unk = m.value("unk_token", Json()).is_string() ? m["unk_token"].get<std::string>() : "";
  const bool byte_fallback = m.value("byte_fallback", false);
  for (size_t i = 0; i < tokens.size(); ++i) {
    int t = kNormal;
    if (!set[i]) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      t = kUnused;
    } else if (added.count(i)) {
      t = added[i] ? kControl : kUserDefined;
    } else if (!byte_level && tokens[i] == unk) {
      t = kUnknown;
    } else if (!byte_level && byte_fallback && tokens[i].size() == 6 && tokens[i].rfind("<0x", 0) == 0 && tokens[i][5] == '>') {
      t = kByte;
    }
    v.tokens.push_back(tokens[i]);
    v.types.push_back(t);
  }
  if (byte_level) {
    v.merges = std::move(merges);
  } else {
    // Score = -(rank of the first merge forming the piece): llama.cpp's SPM merging picks the
    // highest-scoring bigram, i.e. the lowest merge rank. Pieces no merge forms: 0 for single
    // characters and bytes, below every merge for longer pieces.
    const float lowest = -float(merges.size() + 1);
    v.scores.assign(v.tokens.size(), 0.0f);
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (codepoints(v.tokens[i]) > 1 && v.types[i] != kByte) v.scores[i] = lowest;
    std::set<size_t> scored;
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t sp = merges[r].find(' ');
      if (sp == std::string::npos) continue;
      auto it = id_of.find(merges[r].substr(0, sp) + merges[r].substr(sp + 1));
      if (it != id_of.end() && scored.insert(it->second).second) v.scores[it->second] = -float(r);
    }
  }
  return v;
}

int64_t special_id(const Vocab& v, const std::optional<Json>& tok_config, const char* key, int64_t fallback) {
  if (tok_config && tok_config->is_object())
    if (auto text = token_text(*tok_config, key))
      for (size_t i = 0; i < v.tokens.size(); ++i)
        if (v.tokens[i] == *text) return int64_t(i);
  return fallback;
}

}  // namespace

std::vector<SentencePiece> parse_sentencepiece_model(const std::string& bytes, const std::string& what) {
  std::vector<SentencePiece> pieces;
  Proto top(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), what);
  while (!top.done()) {
    const uint64_t key = top.varint();
    const uint32_t field = uint32_t(key >> 3), wire = uint32_t(key & 7);
    if (field != 1 || wire != 2) {
      top.skip(wire);
      continue;
    }
    const auto [p, n] = top.bytes();
    Proto sp(p, n, what);
    SentencePiece piece;
    while (!sp.done()) {
      const uint64_t k = sp.varint();
      const uint32_t f = uint32_t(k >> 3), w = uint32_t(k & 7);
      if (f == 1 && w == 2) {
        const auto [s, len] = sp.bytes();
        piece.piece.assign(reinterpret_cast<const char*>(s), len);
      } else if (f == 2 && w == 5) {
        const uint32_t bits = sp.fixed32();
        std::memcpy(&piece.score, &bits, 4);
      } else if (f == 3 && w == 0) {
        piece.type = int(sp.varint());
      } else {
        sp.skip(w);
      }
    }
    pieces.push_back(std::move(piece));
  }
  if (pieces.empty()) throw FormatError(what + ": no pieces in the SentencePiece model");
  return pieces;
}

std::vector<std::string> add_tokenizer_metadata(gguf::Writer& w, const std::string& dir, const ModelConfig& cfg) {
  std::vector<std::string> warnings;
  const std::optional<Json> tok_config = load_optional(path_join(dir, "tokenizer_config.json"));
  Vocab v;
  if (file_exists(path_join(dir, "tokenizer.model")) && cfg.family != Family::Qwen2) {
    v = from_sentencepiece(dir, tok_config);
  } else if (file_exists(path_join(dir, "tokenizer.json"))) {
    v = from_tokenizer_json(dir, cfg, &warnings);
  } else {
    warnings.push_back(dir + ": no tokenizer.model or tokenizer.json; the GGUF has no tokenizer metadata "
                             "(calq loads it, llama.cpp does not)");
    return warnings;
  }
  if (v.tokens.size() > size_t(cfg.vocab_size)) {
    warnings.push_back(dir + ": the tokenizer has " + std::to_string(v.tokens.size()) + " tokens but the model only " +
                       std::to_string(cfg.vocab_size) + " embeddings; no tokenizer metadata written");
    return warnings;
  }
  pad_to(v, size_t(cfg.vocab_size));
  using gguf::Value;
  w.set("tokenizer.ggml.model", Value::str(v.model));
  w.set("tokenizer.ggml.pre", Value::str(v.pre));
  w.set("tokenizer.ggml.tokens", Value::str_array(v.tokens));
  if (!v.scores.empty()) w.set("tokenizer.ggml.scores", Value::f32_array(v.scores));
  w.set("tokenizer.ggml.token_type", Value::i32_array(v.types));
  if (!v.merges.empty()) w.set("tokenizer.ggml.merges", Value::str_array(v.merges));
  const int64_t bos = special_id(v, tok_config, "bos_token", cfg.bos_token_id);
  const int64_t eos = special_id(v, tok_config, "eos_token", cfg.eos_token_ids.empty() ? -1 : cfg.eos_token_ids.front());
  const int64_t unk = special_id(v, tok_config, "unk_token", -1);
  const int64_t pad = special_id(v, tok_config, "pad_token", -1);
  if (bos >= 0) w.set("tokenizer.ggml.bos_token_id", Value::u32(uint32_t(bos)));
  if (eos >= 0) w.set("tokenizer.ggml.eos_token_id", Value::u32(uint32_t(eos)));
  if (unk >= 0) w.set("tokenizer.ggml.unknown_token_id", Value::u32(uint32_t(unk)));
  if (pad >= 0) w.set("tokenizer.ggml.padding_token_id", Value::u32(uint32_t(pad)));
  if (const std::string tj = path_join(dir, "tokenizer.json"); file_exists(tj))
    w.set("calq.tokenizer.sha256", Value::str(sha256_hex(read_file(tj))));
  if (tok_config && tok_config->is_object()) {
    if (tok_config->contains("add_bos_token") && (*tok_config)["add_bos_token"].is_boolean())
      w.set("tokenizer.ggml.add_bos_token", Value::boolean((*tok_config)["add_bos_token"].get<bool>()));
    if (tok_config->contains("add_eos_token") && (*tok_config)["add_eos_token"].is_boolean())
      w.set("tokenizer.ggml.add_eos_token", Value::boolean((*tok_config)["add_eos_token"].get<bool>()));
  }
  return warnings;
}

}  // namespace calq
