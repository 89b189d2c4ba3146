// Added tokens of tokenizer.json (HF tokenizer/added_vocabulary.rs): ids assigned as HF assigns
// them, and the leftmost-longest matching of their contents in the raw text (tokens with
// normalized=false) or in the normalized text (normalized=true), honouring single_word, lstrip
// and rstrip; `skip_special` ignores special tokens (HF encode_special_tokens = true).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/normalizer.h"

namespace calq::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;       // assigned by AddedVocab::add
  int32_t file_id = -1;  // the id written in tokenizer.json
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// A piece of the input: plain text (id < 0) or an added token.
struct Segment {
  size_t start, end;
  int32_t id;
};

class AddedVocab {
 public:
  // Adds the tokens in file order: a content already known (model vocabulary or an earlier added
  // token) keeps that id, any other gets the next id after the model's (HF add_tokens). The
  // normalizer gives the match patterns of normalized tokens.
  void add(const std::vector<AddedToken>& tokens, const BpeModel& model, const Normalizer* normalizer);

  // HF AddedVocabulary::find_matches over `text` with the raw or the normalized set. Appends
  // segments covering the text in order (nothing for an empty text).
  void find(std::string_view text, bool normalized_set, bool skip_special, std::vector<Segment>& out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  std::optional<int32_t> token_to_id(std::string_view content) const;
  const AddedToken* by_id(int32_t id) const;
  bool is_special_content(std::string_view content) const { return special_set_.find(content) != special_set_.end(); }
  bool has_normalized() const { return !norm_.empty(); }
  int32_t max_id() const { return max_id_; }

 private:
  // Byte trie for leftmost-longest matching.
  class Trie {
   public:
    void insert(std::string_view pattern, int32_t token_index);
    bool empty() const { return nodes_.size() <= 1; }
    // Longest pattern starting at text[pos]: its token index and length, or -1.
    int32_t longest_at(std::string_view text, size_t pos, size_t* len) const;
    bool may_start(unsigned char b) const { return first_[b]; }

   private:
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> next;
      int32_t token = -1;
    };
    std::vector<Node> nodes_{Node{}};
    bool first_[256] = {};
  };

  std::vector<AddedToken> tokens_;          // unique tokens, in the order HF keeps them
  std::vector<int32_t> id_to_index_;        // id -> index into tokens_ (or -1)
  StringIdMap content_to_id_;
  std::unordered_set<std::string, StringHash, std::equal_to<>> special_set_;
  Trie raw_, norm_;
  int32_t max_id_ = -1;
};

}  // namespace calq::tok
