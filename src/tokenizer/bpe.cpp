#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "tokenizer/unicode.h"

namespace calq::tok {

void MergeMap::reserve(size_t n) {
  size_t cap = 16;
  shift_ = 60;
  while (cap < n * 2) {
    cap <<= 1;
    --shift_;
  }
  keys_.assign(cap, kEmpty);
  vals_.assign(cap, Merge{0, 0});
  mask_ = cap - 1;
  size_ = 0;
}

void MergeMap::insert(int32_t a, int32_t b, Merge m) {
  if ((size_ + 1) * 2 > keys_.size()) {  // grow (only when reserve() was too small)
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<Merge> old_vals = std::move(vals_);
    reserve(std::max<size_t>(16, old_keys.size()));
    for (size_t i = 0; i < old_keys.size(); ++i)
      if (old_keys[i] != kEmpty) insert(int32_t(old_keys[i] >> 32), int32_t(uint32_t(old_keys[i])), old_vals[i]);
  }
  const uint64_t key = pack(a, b);
  for (size_t i = slot(key);; i = (i + 1) & mask_) {
    if (keys_[i] == key) {
      vals_[i] = m;
      return;
    }
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      vals_[i] = m;
      ++size_;
      return;
    }
  }
}

namespace {

std::optional<std::string> optional_string(const Json& j, const char* key, const JPath& at) {
  const Json* v = find_member(j, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) at.child(key).fail(std::string("expected a string or null, got ") + v->type_name());
  return v->get<std::string>();
}

}  // namespace

BpeModel::BpeModel(const Json& model, const JPath& at) {
  require_object(model, at);
  if (const Json* d = find_member(model, "dropout")) {
    if (!d->is_number()) at.child("dropout").fail("expected a number or null");
    if (d->get<double>() != 0.0) at.child("dropout").unsupported("BPE dropout is not supported (non-deterministic)");
  }
  unk_token_ = optional_string(model, "unk_token", at);
  prefix_ = optional_string(model, "continuing_subword_prefix", at).value_or("");
  suffix_ = optional_string(model, "end_of_word_suffix", at).value_or("");
  fuse_unk_ = get_bool_or(model, "fuse_unk", false, at);
  byte_fallback_ = get_bool_or(model, "byte_fallback", false, at);
  ignore_merges_ = get_bool_or(model, "ignore_merges", false, at);

  // Vocabulary. Ids must be dense enough to index a table: below 2 * entries + 256.
  const JPath vat = at.child("vocab");
  const Json& vocab = require(model, "vocab", at);
  if (!vocab.is_object()) vat.fail(std::string("expected an object {token: id}, got ") + vocab.type_name());
  const int64_t limit = int64_t(vocab.size()) * 2 + 256;
  vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!is_valid_utf8(it.key())) vat.fail("a token is not valid UTF-8");
    const auto id = int32_t(as_int(it.value(), 0, limit - 1, vat.child(std::string(1, '\'') + it.key().substr(0, 40) + '\'')));
    vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  vocab_r_.assign(size_t(max_id + 1), std::string());
  has_token_.assign(size_t(max_id + 1), 0);
  bool duplicate_ids = false;
  for (const auto& [tok, id] : vocab_) {
    duplicate_ids = duplicate_ids || has_token_[size_t(id)];
    if (!has_token_[size_t(id)] || tok < vocab_r_[size_t(id)]) vocab_r_[size_t(id)] = tok;  // deterministic on duplicates
    has_token_[size_t(id)] = 1;
  }

  // Merges: "a b" strings (legacy) or [a, b] pairs; rank = position.
  const JPath mat = at.child("merges");
  const Json* merges = find_member(model, "merges");
  if (merges && !merges->is_array()) mat.fail(std::string("expected an array, got ") + merges->type_name());
  if (merges) {
    merges_.reserve(merges->size());
    uint32_t rank = 0;
    std::string_view a, b;
    std::string merged;
    for (size_t i = 0; i < merges->size(); ++i) {
      const Json& m = (*merges)[i];
      if (m.is_string()) {
        const std::string& line = m.get_ref<const std::string&>();
        if (line.rfind("#version", 0) == 0) continue;  // header line of merges.txt
        const size_t sp = line.find(' ');
        if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
          mat.index(i).fail("expected \"a b\" (two tokens separated by one space), got '" + line.substr(0, 60) + "'");
        a = std::string_view(line).substr(0, sp);
        b = std::string_view(line).substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get_ref<const std::string&>();
        b = m[1].get_ref<const std::string&>();
      } else {
        mat.index(i).fail("expected \"a b\" or [\"a\", \"b\"]");
      }
      const auto ia = vocab_.find(a), ib = vocab_.find(b);
      if (ia == vocab_.end()) mat.index(i).fail("token '" + std::string(a.substr(0, 60)) + "' is not in the vocabulary");
      if (ib == vocab_.end()) mat.index(i).fail("token '" + std::string(b.substr(0, 60)) + "' is not in the vocabulary");
      if (b.size() < prefix_.size())
        mat.index(i).fail("token '" + std::string(b) + "' is shorter than continuing_subword_prefix");
      merged.assign(a).append(b.substr(prefix_.size()));
      const auto im = vocab_.find(merged);
      if (im == vocab_.end()) mat.index(i).fail("merged token '" + merged.substr(0, 60) + "' is not in the vocabulary");
      merges_.insert(ia->second, ib->second, {rank, im->second});
      ++rank;
    }
  }

  if (unk_token_) {
    const auto it = vocab_.find(*unk_token_);
    if (it == vocab_.end()) at.child("unk_token").fail("'" + *unk_token_ + "' is not in the vocabulary");
    unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = vocab_.find(std::string_view(name));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  if (prefix_.empty() && suffix_.empty()) {
    // Without prefix/suffix a merged token is the concatenation of its parts, so its first and
    // last characters are those of its leftmost and rightmost initial symbols.
    can_segment_ = !duplicate_ids;
    bmp_ids_.assign(0x10000, -1);
    for (const auto& [tok, id] : vocab_) {
      if (tok.empty() || tok.size() > 3) continue;
      size_t i = 0;
      const char32_t cp = next_codepoint(tok, i);
      if (i == tok.size() && cp < 0x10000) bmp_ids_[cp] = id;
    }
  }
}

void BpeModel::build_boundary_tables() const {
  first_cp_.assign(vocab_r_.size(), 0);
  last_cp_.assign(vocab_r_.size(), 0);
  for (size_t id = 0; id < vocab_r_.size(); ++id) {
    const std::string& t = vocab_r_[id];
    if (t.empty()) continue;
    size_t i = 0;
    first_cp_[id] = next_codepoint(t, i);
    size_t b = t.size() - 1;
    while (b > 0 && (static_cast<unsigned char>(t[b]) & 0xC0) == 0x80) --b;
    last_cp_[id] = next_codepoint(t, b);
  }
  joinable_.reserve(merges_.size());
  merges_.for_each([&](int32_t a, int32_t b) { joinable_.insert(uint64_t(last_cp_[size_t(a)]) << 32 | first_cp_[size_t(b)]); });
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= vocab_r_.size() || !has_token_[size_t(id)]) return nullptr;
  return &vocab_r_[size_t(id)];
}

std::string BpeModel::describe() const {
  std::string d = "BPE (" + std::to_string(vocab_.size()) + " tokens, " + std::to_string(merges_.size()) + " merges";
  if (byte_fallback_) d += ", byte_fallback";
  if (fuse_unk_) d += ", fuse_unk";
  if (ignore_merges_) d += ", ignore_merges";
  if (unk_token_) d += ", unk " + *unk_token_;
  return d + ")";
}

// Id of the character piece[b, e) with the subword prefix/suffix HF adds, or -1.
int32_t BpeModel::char_id(std::string_view piece, size_t b, size_t e, bool first, bool last) const {
  if (!bmp_ids_.empty()) {
    if (e - b <= 3) {
      size_t i = b;
      const char32_t cp = next_codepoint(piece, i);
      return bmp_ids_[cp];
    }
    const auto it = vocab_.find(piece.substr(b, e - b));
    return it == vocab_.end() ? -1 : it->second;
  }
  std::string s;
  if (!first) s += prefix_;
  s.append(piece.data() + b, e - b);
  if (last) s += suffix_;
  const auto it = vocab_.find(s);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const auto it = vocab_.find(piece);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() < kCacheMaxPiece;
  if (cacheable) {
    std::shared_lock lock(cache_mu_);
    const auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(piece, out);
  if (cacheable) {
    std::unique_lock lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();  // bounded memory; results never depend on it
    cache_.emplace(std::string(piece), std::vector<int32_t>(out.begin() + std::ptrdiff_t(start), out.end()));
  }
}

// HF BPE::merge_word: one symbol per character (byte tokens or unk when not in the vocabulary),
// then merge_all.
void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  std::vector<Symbol> syms;
  syms.reserve(w.size());
  auto add = [&](int32_t c, uint32_t len) {
    const auto n = int32_t(syms.size());
    if (n > 0) syms.back().next = n;
    syms.push_back({c, n - 1, -1, len});
  };
  bool have_unk = false;
  uint32_t unk_len = 0;
  size_t i = 0;
  while (i < w.size()) {
    const size_t b = i;
    i += utf8_len(static_cast<unsigned char>(w[i]));
    if (i > w.size()) i = w.size();
    const auto len = uint32_t(i - b);
    const int32_t id = char_id(w, b, i, b == 0, i == w.size());
    if (id >= 0) {
      if (have_unk) {
        add(unk_id_, unk_len);
        have_unk = false;
      }
      add(id, len);
      continue;
    }
    if (byte_fallback_) {
      // The bytes of the character as HF sees it (with prefix/suffix when configured).
      std::string s;
      if (b != 0) s += prefix_;
      s.append(w.data() + b, len);
      if (i == w.size()) s += suffix_;
      bool all = true;
      for (unsigned char ch : s) all = all && byte_ids_[ch] >= 0;
      if (all) {
        // HF adds the byte tokens without first flushing a pending unk (kept for parity).
        for (unsigned char ch : s) add(byte_ids_[ch], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (have_unk && fuse_unk_) {
        unk_len += len;
      } else {
        if (have_unk) add(unk_id_, unk_len);
        have_unk = true;
        unk_len = len;
      }
    }
  }
  if (have_unk) add(unk_id_, unk_len);
  // Cut the word where no merge can ever join two neighbours (no merge pairs a token ending with
  // the left symbol's last character with one starting with the right symbol's first): merges
  // never cross such a boundary, so each part evolves exactly as inside the whole word, and small
  // heaps keep a whole file without pre-tokenizer (Llama-2) cache friendly.
  int32_t begin = 0;
  const auto n = int32_t(syms.size());
  if (can_segment_ && segmentation_ && n > 64) {  // short words gain nothing
    std::call_once(boundary_once_, [this] { build_boundary_tables(); });
    for (int32_t k = 1; k < n; ++k)
      if (hard_boundary(syms[size_t(k - 1)].c, syms[size_t(k)].c)) {
        merge_all(syms, begin, k);
        begin = k;
      }
  }
  merge_all(syms, begin, n);
  for (const auto& s : syms)
    if (s.len != 0) out.push_back(s.c);
}

// HF Word::merge_all: repeatedly apply the lowest-ranked merge (leftmost among equal ranks) using
// a min-heap of candidate pairs; stale candidates are detected when popped.
void BpeModel::merge_all(std::vector<Symbol>& syms, int32_t begin, int32_t end) const {
  struct Cand {
    uint32_t rank;
    int32_t pos, new_id;
  };
  const auto later = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
  if (end - begin < 2) return;
  syms[size_t(begin)].prev = -1;
  syms[size_t(end - 1)].next = -1;
  thread_local std::vector<Cand> heap;
  heap.clear();
  for (int32_t k = begin; k + 1 < end; ++k)
    if (const auto* m = merges_.find(syms[size_t(k)].c, syms[size_t(k + 1)].c)) heap.push_back({m->rank, k, m->new_id});
  std::make_heap(heap.begin(), heap.end(), later);
  const int32_t n = end;
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Cand top = heap.back();
    heap.pop_back();
    Symbol& cur = syms[size_t(top.pos)];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = syms[size_t(next_pos)];
    const auto* m = merges_.find(cur.c, right.c);
    if (!m || m->new_id != top.new_id) continue;  // expired candidate
    cur.c = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    syms[size_t(next_pos)].len = 0;
    if (right.next > -1 && right.next < n) syms[size_t(right.next)].prev = top.pos;
    if (cur.prev >= 0)
      if (const auto* pm = merges_.find(syms[size_t(cur.prev)].c, cur.c)) {
        heap.push_back({pm->rank, cur.prev, pm->new_id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    if (cur.next >= 0 && cur.next < n)
      if (const auto* nm = merges_.find(cur.c, syms[size_t(cur.next)].c)) {
        heap.push_back({nm->rank, top.pos, nm->new_id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
  }
}

}  // namespace calq::tok
