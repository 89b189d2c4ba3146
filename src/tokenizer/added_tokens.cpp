#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace calq::tok {

void AddedVocab::Trie::insert(std::string_view pattern, int32_t token_index) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char b : pattern) {
    auto& next = nodes_[size_t(node)].next;
    auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
    if (it != next.end()) {
      node = it->second;
    } else {
      const auto child = int32_t(nodes_.size());
      nodes_[size_t(node)].next.emplace_back(b, child);
      nodes_.emplace_back();
      node = child;
    }
  }
  if (nodes_[size_t(node)].token < 0) nodes_[size_t(node)].token = token_index;  // first pattern wins
  first_[static_cast<unsigned char>(pattern[0])] = true;
}

int32_t AddedVocab::Trie::longest_at(std::string_view text, size_t pos, size_t* len) const {
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    const auto& next = nodes_[size_t(node)].next;
    auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
    if (it == next.end()) break;
    node = it->second;
    if (nodes_[size_t(node)].token >= 0) {
      best = nodes_[size_t(node)].token;
      *len = i + 1 - pos;
    }
  }
  return best;
}

void AddedVocab::add(const std::vector<AddedToken>& tokens, const BpeModel& model, const Normalizer* normalizer) {
  std::vector<int32_t> special_order, plain_order;  // HF matches specials first, then the others
  for (const AddedToken& t : tokens) {
    if (t.content.empty()) continue;
    if (t.special) special_set_.insert(t.content);
    // HF skips a token equal (content and flags) to one it already holds.
    const AddedToken* held = nullptr;
    if (auto known = token_to_id(t.content)) held = by_id(*known);
    const bool duplicate = held && held->content == t.content && held->single_word == t.single_word &&
                           held->lstrip == t.lstrip && held->rstrip == t.rstrip && held->normalized == t.normalized &&
                           held->special == t.special;
    if (duplicate) continue;
    int32_t id;
    if (auto known = token_to_id(t.content)) {
      id = *known;
    } else if (auto in_model = model.token_to_id(t.content)) {
      id = *in_model;
    } else {
      // HF: the model's vocabulary size, or one past the largest added id once that is beyond it.
      const auto vocab = int32_t(model.vocab_entries());
      id = max_id_ < 0 ? vocab : (max_id_ >= vocab || vocab == 0) ? max_id_ + 1 : vocab;
    }
    AddedToken stored = t;
    stored.id = id;
    content_to_id_[t.content] = id;
    if (size_t(id) >= id_to_index_.size()) id_to_index_.resize(size_t(id) + 1, -1);
    const auto existing = id_to_index_[size_t(id)];
    if (existing >= 0) {
      tokens_[size_t(existing)] = stored;  // HF replaces the token kept for this id
    } else {
      id_to_index_[size_t(id)] = int32_t(tokens_.size());
      tokens_.push_back(stored);
    }
    max_id_ = std::max(max_id_, id);
  }
  for (size_t i = 0; i < tokens_.size(); ++i)
    (special_set_.count(tokens_[i].content) ? special_order : plain_order).push_back(int32_t(i));
  for (const auto* order : {&special_order, &plain_order})
    for (int32_t i : *order) {
      const AddedToken& t = tokens_[size_t(i)];
      if (!t.normalized) {
        raw_.insert(t.content, i);
      } else {
        std::string pat = t.content;
        if (normalizer) normalizer->normalize(pat, byte_budget(pat.size()));
        norm_.insert(pat, i);
      }
    }
}

std::optional<int32_t> AddedVocab::token_to_id(std::string_view content) const {
  const auto it = content_to_id_.find(content);
  if (it == content_to_id_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocab::by_id(int32_t id) const {
  if (id < 0 || size_t(id) >= id_to_index_.size() || id_to_index_[size_t(id)] < 0) return nullptr;
  return &tokens_[size_t(id_to_index_[size_t(id)])];
}

namespace {

// Regex \w$ on text[0, end) and ^\w on text[start, ...).
bool ends_with_word(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
  size_t i = b;
  return is_word_char(next_codepoint(text, i));
}

bool starts_with_word(std::string_view text, size_t start) {
  if (start >= text.size()) return false;
  size_t i = start;
  return is_word_char(next_codepoint(text, i));
}

}  // namespace

void AddedVocab::find(std::string_view text, bool normalized_set, bool skip_special, std::vector<Segment>& out) const {
  const Trie& trie = normalized_set ? norm_ : raw_;
  if (text.empty()) return;
  if (trie.empty()) {
    out.push_back({0, text.size(), -1});
    return;
  }
  size_t start_offset = 0, pos = 0;
  while (pos < text.size()) {
    // Leftmost-longest match at or after pos.
    size_t len = 0;
    int32_t index = -1;
    size_t at = pos;
    for (; at < text.size(); ++at) {
      if (!trie.may_start(static_cast<unsigned char>(text[at]))) continue;
      index = trie.longest_at(text, at, &len);
      if (index >= 0) break;
    }
    if (index < 0) break;
    pos = at + len;  // matching resumes after the match even when it is discarded below
    const AddedToken& t = tokens_[size_t(index)];
    if (skip_special && special_set_.count(t.content)) continue;
    size_t start = at, stop = at + len;
    if (t.single_word) {
      const bool start_space = start == 0 || !ends_with_word(text, start);
      const bool stop_space = stop == text.size() || !starts_with_word(text, stop);
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      // Start of the whitespace run that ends at `start` (regex \s*$ on text[0, start)).
      size_t ns = start;
      while (ns > 0) {
        size_t b = ns - 1;
        while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
        size_t i = b;
        if (!is_whitespace(next_codepoint(text, i))) break;
        ns = b;
      }
      start = std::max(ns, start_offset);
    }
    if (t.rstrip) {
      size_t i = stop;
      while (i < text.size()) {
        size_t j = i;
        if (!is_whitespace(next_codepoint(text, j))) break;
        i = j;
      }
      stop = i;
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, t.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace calq::tok
