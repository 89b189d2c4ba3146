#include "tokenizer/postprocessor.h"

#include <map>

namespace calq::tok {

namespace {

class TemplatePost : public PostProcessor {
 public:
  // The single template: special-token ids, or an empty vector for the sequence ($A).
  std::vector<std::vector<int32_t>> pieces;
  std::string text;

  void process(std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& p : pieces) {
      if (p.empty())
        out.insert(out.end(), ids.begin(), ids.end());
      else
        out.insert(out.end(), p.begin(), p.end());
    }
    ids = std::move(out);
  }
  int32_t prefix_id() const override {
    return !pieces.empty() && !pieces.front().empty() ? pieces.front().front() : -1;
  }
  int32_t suffix_id() const override { return !pieces.empty() && !pieces.back().empty() ? pieces.back().back() : -1; }
  std::string describe() const override { return "TemplateProcessing(" + text + ")"; }
};

class ClsSepPost : public PostProcessor {
 public:
  std::string name;
  int32_t cls = -1, sep = -1;
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), cls);
    ids.push_back(sep);
  }
  int32_t prefix_id() const override { return cls; }
  int32_t suffix_id() const override { return sep; }
  std::string describe() const override { return name; }
};

class NoopPost : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
  std::string describe() const override { return "ByteLevel"; }
};

class SequencePost : public PostProcessor {
 public:
  std::vector<std::unique_ptr<PostProcessor>> items;
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : items) p->process(ids);
  }
  int32_t prefix_id() const override {
    for (const auto& p : items)
      if (p->prefix_id() >= 0) return p->prefix_id();
    return -1;
  }
  int32_t suffix_id() const override {
    for (const auto& p : items)
      if (p->suffix_id() >= 0) return p->suffix_id();
    return -1;
  }
  std::string describe() const override {
    std::string d = "Sequence[";
    for (size_t i = 0; i < items.size(); ++i) d += (i ? ", " : "") + items[i]->describe();
    return d + "]";
  }
};

int32_t checked_id(const Json& v, const JPath& at, int32_t id_limit) {
  return int32_t(as_int(v, 0, int64_t(id_limit) - 1, at));
}

// "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
std::map<std::string, std::vector<int32_t>> parse_special_tokens(const Json& j, const JPath& at, int32_t id_limit) {
  std::map<std::string, std::vector<int32_t>> out;
  const Json* st = find_member(j, "special_tokens");
  if (!st) return out;
  const JPath sat = at.child("special_tokens");
  require_object(*st, sat);
  for (auto it = st->begin(); it != st->end(); ++it) {
    const JPath eat = sat.child(it.key());
    const Json& ids = require_array(it.value(), "ids", eat);
    std::vector<int32_t> v;
    for (size_t i = 0; i < ids.size(); ++i) v.push_back(checked_id(ids[i], eat.child("ids").index(i), id_limit));
    out[it.key()] = std::move(v);
  }
  return out;
}

std::unique_ptr<PostProcessor> make_template(const Json& j, const JPath& at, int32_t id_limit) {
  auto t = std::make_unique<TemplatePost>();
  const auto specials = parse_special_tokens(j, at, id_limit);
  const JPath sat = at.child("single");
  const Json& single = require(j, "single", at);
  auto add_special = [&](const std::string& name, const JPath& where) {
    const auto it = specials.find(name);
    if (it == specials.end()) where.fail("special token '" + name + "' is not in special_tokens");
    if (!it->second.empty()) t->pieces.push_back(it->second);
    t->text += (t->text.empty() ? "" : " ") + name;
  };
  auto add_sequence = [&](const std::string& name, const JPath& where) {
    if (name != "A" && name != "B") where.fail("sequence id must be A or B, got '" + name + "'");
    if (name == "A") t->pieces.emplace_back();  // $B has nothing to stand for in a single sequence
    t->text += (t->text.empty() ? "$" : " $") + name;
  };
  if (single.is_string()) {  // "<s> $A" form
    const std::string s = single.get<std::string>();
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && s[i] == ' ') ++i;
      size_t e = s.find(' ', i);
      if (e == std::string::npos) e = s.size();
      std::string word = s.substr(i, e - i);
      i = e;
      if (word.empty()) continue;
      const size_t colon = word.rfind(':');
      if (colon != std::string::npos && colon > 0) word = word.substr(0, colon);  // drop ":type_id"
      if (word[0] == '$')
        add_sequence(word.size() == 1 ? "A" : word.substr(1), sat);
      else
        add_special(word, sat);
    }
  } else if (single.is_array()) {
    for (size_t i = 0; i < single.size(); ++i) {
      const JPath pat = sat.index(i);
      const Json& p = single[i];
      if (const Json* sp = find_member(p, "SpecialToken"))
        add_special(get_string(*sp, "id", pat.child("SpecialToken")), pat);
      else if (const Json* sq = find_member(p, "Sequence"))
        add_sequence(get_string(*sq, "id", pat.child("Sequence")), pat);
      else
        pat.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
  } else {
    sat.fail("expected a list or a string");
  }
  return t;
}

std::unique_ptr<PostProcessor> make_cls_sep(const Json& j, const JPath& at, int32_t id_limit, const std::string& type) {
  auto p = std::make_unique<ClsSepPost>();
  p->name = type;
  for (const char* key : {"cls", "sep"}) {
    const Json& v = require(j, key, at);
    if (!v.is_array() || v.size() != 2 || !v[0].is_string()) at.child(key).fail("expected [\"token\", id]");
    (std::string(key) == "cls" ? p->cls : p->sep) = checked_id(v[1], at.child(key).index(1), id_limit);
  }
  return p;
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const JPath& at, int32_t id_limit) {
  if (j.is_null()) return nullptr;
  const std::string type = get_string(j, "type", at);
  if (type == "TemplateProcessing") return make_template(j, at, id_limit);
  if (type == "RobertaProcessing" || type == "BertProcessing") return make_cls_sep(j, at, id_limit, type);
  if (type == "ByteLevel") return std::make_unique<NoopPost>();
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePost>();
    const Json& items = require_array(j, "processors", at);
    for (size_t i = 0; i < items.size(); ++i) {
      auto p = make_post_processor(items[i], at.child("processors").index(i), id_limit);
      if (p) seq->items.push_back(std::move(p));
    }
    return seq;
  }
  at.child("type").unsupported("post-processor '" + type + "' is not supported");
}

}  // namespace calq::tok
