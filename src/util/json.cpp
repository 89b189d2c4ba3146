#include "util/json.h"

#include "util/fs.h"

namespace calq {

Json parse_json(const std::string& text, const std::string& what) {
  constexpr int kMaxDepth = 512;  // deeper input is hostile; nlohmann would recurse on destruction
  bool too_deep = false;
  auto depth_guard = [&](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  try {
    Json j = Json::parse(text, depth_guard, /*allow_exceptions=*/true);
    if (too_deep) throw FormatError(what + ": JSON nested deeper than 512 levels");
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(what + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                      std::string(e.what()).substr(0, 160));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(what + ": invalid JSON: " + std::string(e.what()).substr(0, 160));
  }
}

Json load_json_file(const std::string& path) { return parse_json(read_file(path), path); }

}  // namespace calq
