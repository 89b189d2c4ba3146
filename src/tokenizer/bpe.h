// The BPE model of tokenizer.json (HF models/bpe): vocabulary, ranked merges applied with a
// priority queue over a linked list of symbols (HF Word::merge_all, O(n log n) in the piece
// length, so a whole file with no pre-tokenizer is fine), byte_fallback (<0xNN> tokens), unk
// fusing, continuing_subword_prefix / end_of_word_suffix, ignore_merges, and a cache of the
// encodings of short pieces.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/json_fields.h"

namespace calq::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Open-addressing map from a symbol pair (a, b) to its merge (rank, id of the merged symbol).
class MergeMap {
 public:
  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };
  void reserve(size_t n);
  // Later insertions of the same pair win, as when HF collects merges into a HashMap.
  void insert(int32_t a, int32_t b, Merge m);
  const Merge* find(int32_t a, int32_t b) const {
    if (keys_.empty()) return nullptr;
    const uint64_t key = pack(a, b);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &vals_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }
  template <class F>
  void for_each(F f) const {
    for (size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] != kEmpty) f(int32_t(keys_[i] >> 32), int32_t(uint32_t(keys_[i])));
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  static uint64_t pack(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
  size_t slot(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ULL) >> shift_) & mask_; }
  std::vector<uint64_t> keys_;
  std::vector<Merge> vals_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

class BpeModel {
 public:
  // Parses the "model" object (type BPE). Throws FormatError/UnsupportedError naming `at`.
  BpeModel(const Json& model, const JPath& at);

  // Appends the ids of one pre-tokenized piece (HF BPE::tokenize).
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr for ids that are not in the vocabulary.
  const std::string* id_to_token(int32_t id) const;
  // Number of vocabulary entries (HF Model::get_vocab_size) and one past the largest id.
  size_t vocab_entries() const { return vocab_.size(); }
  int32_t id_limit() const { return int32_t(vocab_r_.size()); }
  size_t merges() const { return merges_.size(); }
  bool byte_fallback() const { return byte_fallback_; }
  bool ignore_merges() const { return ignore_merges_; }
  std::string describe() const;
  // Cutting long words at hard boundaries (see merge_word) is on by default; tests switch it off
  // to check that it never changes a result.
  void set_segmentation(bool on) { segmentation_ = on; }

 private:
  struct Symbol {
    int32_t c, prev, next;
    uint32_t len;  // bytes of the piece covered; 0 marks a symbol merged into its left neighbour
  };
  void merge_word(std::string_view piece, std::vector<int32_t>& out) const;
  // Runs merge_all on syms[begin, end) as an independent word.
  void merge_all(std::vector<Symbol>& syms, int32_t begin, int32_t end) const;
  // True when no merge can ever join a symbol ending like `left` with one starting like `right`.
  bool hard_boundary(int32_t left, int32_t right) const {
    return !joinable_.count(uint64_t(last_cp_[size_t(left)]) << 32 | first_cp_[size_t(right)]);
  }
  int32_t char_id(std::string_view piece, size_t b, size_t e, bool first, bool last) const;

  StringIdMap vocab_;
  std::vector<std::string> vocab_r_;
  std::vector<uint8_t> has_token_;
  MergeMap merges_;
  std::vector<int32_t> bmp_ids_;  // single-character tokens of the Basic Multilingual Plane
  int32_t byte_ids_[256];
  // First/last code point of every token and the (last of a, first of b) pairs of all merges:
  // a long word is cut where no merge can join its neighbours (see merge_word).
  // Built on the first long word (most byte-level inputs never need them).
  void build_boundary_tables() const;
  mutable std::once_flag boundary_once_;
  mutable std::vector<char32_t> first_cp_, last_cp_;
  mutable std::unordered_set<uint64_t> joinable_;
  bool can_segment_ = false, segmentation_ = true;
  std::optional<std::string> unk_token_;
  int32_t unk_id_ = -1;
  std::string prefix_, suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;

  // Encodings of short pieces (HF caches pieces under 256 bytes).
  static constexpr size_t kCacheMaxPiece = 256, kCacheMaxEntries = 1 << 17;
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace calq::tok
