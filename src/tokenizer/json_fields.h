// Field access for tokenizer.json with errors that name the file and the JSON path at fault:
// "tokenizer.json: pre_tokenizer.pretokenizers[1].type: 'Foo' is not supported".
#pragma once
#include <cstdint>
#include <string>

#include "util/error.h"
#include "util/json.h"

namespace calq::tok {

struct JPath {
  std::string file;  // the source named in errors
  std::string path;  // e.g. "normalizer.normalizers[0]"

  JPath child(const std::string& key) const { return {file, path.empty() ? key : path + "." + key}; }
  JPath index(size_t i) const { return {file, path + "[" + std::to_string(i) + "]"}; }
  std::string where() const { return file + ": " + (path.empty() ? "(root)" : path); }
  [[noreturn]] void fail(const std::string& msg) const { throw FormatError(where() + ": " + msg); }
  [[noreturn]] void unsupported(const std::string& msg) const { throw UnsupportedError(where() + ": " + msg); }
};

inline const Json& require_object(const Json& j, const JPath& at) {
  if (!j.is_object()) at.fail(std::string("expected an object, got ") + j.type_name());
  return j;
}

// The member `key` (must be present and not null).
inline const Json& require(const Json& obj, const char* key, const JPath& at) {
  require_object(obj, at);
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) at.child(key).fail("missing");
  return *it;
}

inline const Json* find_member(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline std::string get_string(const Json& obj, const char* key, const JPath& at) {
  const Json& v = require(obj, key, at);
  if (!v.is_string()) at.child(key).fail(std::string("expected a string, got ") + v.type_name());
  return v.get<std::string>();
}

inline std::string get_string_or(const Json& obj, const char* key, const std::string& fallback, const JPath& at) {
  const Json* v = find_member(require_object(obj, at), key);
  if (!v) return fallback;
  if (!v->is_string()) at.child(key).fail(std::string("expected a string, got ") + v->type_name());
  return v->get<std::string>();
}

inline bool get_bool_or(const Json& obj, const char* key, bool fallback, const JPath& at) {
  const Json* v = find_member(require_object(obj, at), key);
  if (!v) return fallback;
  if (!v->is_boolean()) at.child(key).fail(std::string("expected true/false, got ") + v->type_name());
  return v->get<bool>();
}

// An integer in [lo, hi] (util/json.h: JSON integers only, never rounded or wrapped).
inline int64_t as_int(const Json& v, int64_t lo, int64_t hi, const JPath& at) {
  const std::string problem = json_int_problem(v, lo, hi);
  if (!problem.empty()) at.fail("value " + problem);
  return v.get<int64_t>();
}

inline int64_t get_int_or(const Json& obj, const char* key, int64_t fallback, int64_t lo, int64_t hi, const JPath& at) {
  const Json* v = find_member(require_object(obj, at), key);
  return v ? as_int(*v, lo, hi, at.child(key)) : fallback;
}

inline const Json& require_array(const Json& obj, const char* key, const JPath& at) {
  const Json& v = require(obj, key, at);
  if (!v.is_array()) at.child(key).fail(std::string("expected an array, got ") + v.type_name());
  return v;
}

}  // namespace calq::tok
