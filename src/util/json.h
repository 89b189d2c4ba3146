// JSON access with errors that name the file and the field at fault.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "util/error.h"

namespace calq {

using Json = nlohmann::json;

// Parses `text`; `what` names the source (a path) in error messages. Rejects nesting deeper than 512.
Json parse_json(const std::string& text, const std::string& what);
// Reads and parses a JSON file (IoError / FormatError).
Json load_json_file(const std::string& path);

// Required field of a given type: ConfigError "<what>: field 'key' ..." when missing or mistyped.
template <class T>
T json_get(const Json& j, const std::string& key, const std::string& what) {
  if (!j.is_object()) throw ConfigError(what + ": expected a JSON object");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw ConfigError(what + ": missing field '" + key + "'");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ConfigError(what + ": field '" + key + "' has the wrong type (" + it->type_name() + ")");
  }
}

// Optional field: `fallback` when absent or null.
template <class T>
T json_get_or(const Json& j, const std::string& key, T fallback, const std::string& what) {
  if (!j.is_object()) throw ConfigError(what + ": expected a JSON object");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ConfigError(what + ": field '" + key + "' has the wrong type (" + it->type_name() + ")");
  }
}

}  // namespace calq
