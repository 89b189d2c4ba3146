#include "util/json.h"

#include <algorithm>
#include <cmath>

#include "util/fs.h"

namespace calq {

namespace {

constexpr int kMaxDepth = 512;  // deeper input is hostile; nlohmann's dump/compare/get recurse

// The deepest nesting of arrays/objects in `text`, stopping early once it exceeds `limit`. Exact for
// valid JSON (brackets inside strings are skipped, escapes included); for invalid JSON the parse that
// follows reports the error. One pass over the bytes: nlohmann's parser-callback depth guard made
// nlohmann 3.11 re-scan the parent container at every end of an object, which was quadratic in the
// number of entries (a 50k-tensor safetensors header took minutes).
int max_depth(const std::string& text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// [lo, hi] in 128-bit arithmetic, so that every int64 and uint64 bound and value compares exactly.
using Wide = __int128;

std::string wide_str(Wide x) { return x < 0 ? std::to_string(int64_t(x)) : std::to_string(uint64_t(x)); }

std::string int_problem(const Json& v, Wide lo, Wide hi) {
  const auto out_of_range = [&] { return "= " + v.dump() + " is out of range [" + wide_str(lo) + ", " + wide_str(hi) + "]"; };
  if (v.is_number_integer()) {  // nlohmann keeps non-negative integer literals as unsigned, the rest as signed
    const Wide x = v.is_number_unsigned() ? Wide(v.get<uint64_t>()) : Wide(v.get<int64_t>());
    return x < lo || x > hi ? out_of_range() : "";
  }
  if (v.is_number_float()) {
    // A whole number outside the range (1e12; 18446744073709551616, beyond 64 bits) is named as such.
    const double d = v.get<double>();
    if (d == std::floor(d) && (d < double(lo) || d > double(hi))) return out_of_range();
    return "must be an integer (no fraction or exponent), got " + v.dump();
  }
  return std::string("has the wrong type (") + v.type_name() + "), expected an integer";
}

}  // namespace

Json parse_json(const std::string& text, const std::string& what) {
  if (max_depth(text, kMaxDepth) > kMaxDepth) throw FormatError(what + ": JSON nested deeper than 512 levels");
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(what + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                      std::string(e.what()).substr(0, 160));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(what + ": invalid JSON: " + std::string(e.what()).substr(0, 160));
  }
}

Json load_json_file(const std::string& path) { return parse_json(read_file(path), path); }

std::string json_int_problem(const Json& v, int64_t lo, int64_t hi) { return int_problem(v, lo, hi); }
std::string json_uint_problem(const Json& v, uint64_t hi) { return int_problem(v, 0, hi); }

}  // namespace calq
