// Loading tokenizer.json: the Tokenizer factories and the HfTokenizer constructor.
#include <sys/stat.h>

#include "tokenizer/hf_tokenizer.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/sha256.h"

namespace calq {

namespace tok {

namespace {

std::vector<AddedToken> parse_added_tokens(const Json& root, const JPath& root_at) {
  std::vector<AddedToken> out;
  const Json* list = find_member(root, "added_tokens");
  if (!list) return out;
  const JPath at = root_at.child("added_tokens");
  if (!list->is_array()) at.fail(std::string("expected an array, got ") + list->type_name());
  for (size_t i = 0; i < list->size(); ++i) {
    const JPath t_at = at.index(i);
    const Json& t = (*list)[i];
    AddedToken a;
    a.file_id = int32_t(as_int(require(t, "id", t_at), 0, INT32_MAX - 1, t_at.child("id")));
    a.content = get_string(t, "content", t_at);
    a.single_word = get_bool_or(t, "single_word", false, t_at);
    a.lstrip = get_bool_or(t, "lstrip", false, t_at);
    a.rstrip = get_bool_or(t, "rstrip", false, t_at);
    a.normalized = get_bool_or(t, "normalized", true, t_at);  // HF AddedToken::default()
    a.special = get_bool_or(t, "special", false, t_at);
    out.push_back(std::move(a));
  }
  return out;
}

// "eos_token": "</s>" or {"content": "</s>", ...} in tokenizer_config.json.
std::string config_token(const Json& config, const char* key) {
  const Json* v = find_member(config, key);
  if (!v) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    const Json* c = find_member(*v, "content");
    if (c && c->is_string()) return c->get<std::string>();
  }
  return "";
}

}  // namespace

HfTokenizer::HfTokenizer(const Json& json, const std::string& source, const std::string& sha256, const Json& config)
    : source_(source), sha256_(sha256) {
  const JPath root{source, ""};
  require_object(json, root);

  // Model first: the other components are checked against its vocabulary.
  const JPath mat = root.child("model");
  const Json& model = require(json, "model", root);
  require_object(model, mat);
  const std::string type = get_string_or(model, "type", find_member(model, "merges") ? "BPE" : "", mat);
  if (type.empty()) mat.child("type").fail("missing");
  if (type != "BPE") mat.child("type").unsupported("model '" + type + "' is not supported (only BPE)");
  model_ = std::make_unique<BpeModel>(model, mat);

  normalizer_ = make_normalizer(json.value("normalizer", Json()), root.child("normalizer"));
  pre_tokenizer_ = make_pre_tokenizer(json.value("pre_tokenizer", Json()), root.child("pre_tokenizer"));
  decoder_ = make_decoder(json.value("decoder", Json()), root.child("decoder"));

  const auto added = parse_added_tokens(json, root);
  added_.add(added, *model_, normalizer_.get());
  for (const auto& a : added)
    if (!a.content.empty() && added_.token_to_id(a.content) != a.file_id) ++added_id_mismatches_;
  vocab_size_ = std::max(model_->id_limit(), added_.max_id() + 1);

  post_processor_ = make_post_processor(json.value("post_processor", Json()), root.child("post_processor"), vocab_size_);
  has_truncation_or_padding_ = find_member(json, "truncation") || find_member(json, "padding");

  special_.assign(size_t(vocab_size_), 0);
  for (int32_t id = 0; id < vocab_size_; ++id)
    if (const std::string* t = token_ptr(id)) special_[size_t(id)] = added_.is_special_content(*t);

  bos_ = post_processor_ ? post_processor_->prefix_id() : -1;
  eos_ = -1;
  if (!config.is_null()) {
    const std::string eos = config_token(config, "eos_token");
    if (!eos.empty())
      if (auto id = token_to_id(eos)) eos_ = *id;
  }
  if (eos_ < 0 && post_processor_) eos_ = post_processor_->suffix_id();
}

}  // namespace tok

namespace {

bool is_directory(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string parent_dir(const std::string& file) {
  const size_t slash = file.find_last_of('/');
  return slash == std::string::npos ? "." : file.substr(0, slash == 0 ? 1 : slash);
}

std::unique_ptr<Tokenizer> build(const std::string& text, const std::string& what, const Json& config) {
  const Json json = parse_json(text, what);
  return std::make_unique<tok::HfTokenizer>(json, what, sha256_hex(text), config);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::string& tokenizer_json) {
  const std::string text = read_file(tokenizer_json);
  const std::string config_path = path_join(parent_dir(tokenizer_json), "tokenizer_config.json");
  const Json config = file_exists(config_path) ? load_json_file(config_path) : Json();
  return build(text, tokenizer_json, config);
}

std::unique_ptr<Tokenizer> Tokenizer::from_json_text(const std::string& text, const std::string& what) {
  return build(text, what, Json());
}

std::unique_ptr<Tokenizer> Tokenizer::from_json_text(const std::string& text, const std::string& what,
                                                     const std::string& config_text) {
  return build(text, what, config_text.empty() ? Json() : parse_json(config_text, what + " (tokenizer_config)"));
}

std::unique_ptr<Tokenizer> Tokenizer::from_path(const std::string& path) {
  if (is_directory(path)) {
    const std::string f = path_join(path, "tokenizer.json");
    if (!file_exists(f)) throw IoError(path + ": no tokenizer.json in this folder");
    return from_file(f);
  }
  return from_file(path);
}

}  // namespace calq
