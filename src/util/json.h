// JSON access with errors that name the file and the field at fault.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "util/error.h"

namespace calq {

using Json = nlohmann::json;

// Parses `text`; `what` names the source (a path) in error messages. Rejects nesting deeper than 512.
// Time and memory are linear in the text's size.
Json parse_json(const std::string& text, const std::string& what);
// Reads and parses a JSON file (IoError / FormatError).
Json load_json_file(const std::string& path);

// ---- integers ------------------------------------------------------------------------------------
// JSON has one number type. nlohmann keeps a literal without fraction or exponent as an integer and
// everything else (2.0, 2.9, 1e3, integers beyond 64 bits) as a double. An integer field must be an
// integer literal within the range its reader states: nothing is rounded, wrapped or clamped.

// Empty when `v` is an integer in [lo, hi]; otherwise what is wrong with it ("= 4294967298 is out of
// range [1, 100000]", "must be an integer (no fraction or exponent), got 2.0", "has the wrong type
// (string), expected an integer"). hi < lo admits nothing.
std::string json_int_problem(const Json& v, int64_t lo, int64_t hi);
// The same for [0, hi] with an unsigned 64-bit bound.
std::string json_uint_problem(const Json& v, uint64_t hi);

// `v` (the value of `field`) as an integer in [lo, hi]; E(what + ": field 'field' ...") otherwise.
template <class E = ConfigError>
int64_t json_int(const Json& v, const std::string& field, const std::string& what, int64_t lo, int64_t hi) {
  const std::string p = json_int_problem(v, lo, hi);
  if (!p.empty()) throw E(what + ": field '" + field + "' " + p);
  return v.get<int64_t>();
}
template <class E = ConfigError>
uint64_t json_uint(const Json& v, const std::string& field, const std::string& what, uint64_t hi) {
  const std::string p = json_uint_problem(v, hi);
  if (!p.empty()) throw E(what + ": field '" + field + "' " + p);
  return v.get<uint64_t>();
}

// Required integer member `key` of object `j`, in [lo, hi].
template <class E = ConfigError>
int64_t json_get_int(const Json& j, const std::string& key, const std::string& what, int64_t lo, int64_t hi) {
  if (!j.is_object()) throw E(what + ": expected a JSON object");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw E(what + ": missing field '" + key + "'");
  return json_int<E>(*it, key, what, lo, hi);
}
// Optional integer member: `fallback` (not range-checked) when absent or null.
template <class E = ConfigError>
int64_t json_get_int_or(const Json& j, const std::string& key, int64_t fallback, const std::string& what, int64_t lo,
                        int64_t hi) {
  if (!j.is_object()) throw E(what + ": expected a JSON object");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return json_int<E>(*it, key, what, lo, hi);
}

namespace detail {
template <class T>
constexpr bool kJsonInteger = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// An integer of type T (the full range of T), else ConfigError naming `key`.
template <class T>
T json_integer_as(const Json& v, const std::string& key, const std::string& what) {
  if constexpr (std::is_unsigned_v<T>)
    return T(json_uint(v, key, what, std::numeric_limits<T>::max()));
  else
    return T(json_int(v, key, what, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
}
}  // namespace detail

// ---- fields of any type --------------------------------------------------------------------------

// Required field of a given type: ConfigError "<what>: field 'key' ..." when missing or mistyped.
// Integer types are read with json_int over T's whole range (pass a narrower range with json_get_int).
template <class T>
T json_get(const Json& j, const std::string& key, const std::string& what) {
  if (!j.is_object()) throw ConfigError(what + ": expected a JSON object");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw ConfigError(what + ": missing field '" + key + "'");
  if constexpr (detail::kJsonInteger<T>) {
    return detail::json_integer_as<T>(*it, key, what);
  } else {
    try {
      return it->get<T>();
    } catch (const nlohmann::json::exception&) {
      throw ConfigError(what + ": field '" + key + "' has the wrong type (" + it->type_name() + ")");
    }
  }
}

// Optional field: `fallback` when absent or null.
template <class T>
T json_get_or(const Json& j, const std::string& key, T fallback, const std::string& what) {
  if (!j.is_object()) throw ConfigError(what + ": expected a JSON object");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if constexpr (detail::kJsonInteger<T>) {
    return detail::json_integer_as<T>(*it, key, what);
  } else {
    try {
      return it->get<T>();
    } catch (const nlohmann::json::exception&) {
      throw ConfigError(what + ": field '" + key + "' has the wrong type (" + it->type_name() + ")");
    }
  }
}

}  // namespace calq
