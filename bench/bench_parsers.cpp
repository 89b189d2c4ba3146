// Cost of parsing untrusted headers, which must be linear in their size (docs/fuzzing.md records
// the figures):
//  - safetensors headers of 1k .. ~1.1M entries (the last is just under the 100 MB header limit),
//    parsed by parse_safetensors_header; and, up to 20k entries, the former depth guard (an
//    nlohmann parser callback, which nlohmann 3.11 calls with a re-scan of the parent object at
//    every entry's end: quadratic) on the same bytes in the same run, for the ratio;
//  - a GGUF header holding one u8 array of 2^24 elements (16 MiB), parsed by gguf::parse_header,
//    with the process's peak RSS before and after (the per-element variant took ~104 bytes each).
//
// Usage: bench_parsers [--max-entries N (default: as many as fit in 100 MB)] [--reps 3]
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench_util.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "util/json.h"

using namespace calq;
using namespace calq::bench;

namespace {

// A safetensors file image with n F32 [2] entries (~95 header bytes each) and their data; n <= 0: as
// many as fit in a header just under the 100 MB limit (n is set to that count).
std::string safetensors_image(int64_t& n) {
  constexpr size_t kLimit = (size_t(100) << 20) - 1024;
  std::string h = "{\"__metadata__\": {\"format\": \"pt\"}";
  int64_t i = 0;
  for (; n <= 0 || i < n; ++i) {
    const std::string e = ", \"model.layers." + std::to_string(i) + ".weight\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [" +
         std::to_string(i * 8) + ", " + std::to_string(i * 8 + 8) + "]}";
    if (n <= 0 && h.size() + e.size() + 1 > kLimit) break;
    h += e;
  }
  n = i;
  h += "}";
  std::string file(8, '\0');
  const uint64_t len = h.size();
  std::memcpy(file.data(), &len, 8);
  return file + h + std::string(size_t(i) * 8, '\0');
}

// The depth guard parse_json used before: a parser callback (what nlohmann 3.11.2 makes quadratic).
size_t parse_with_callback_guard(const std::string& text) {
  auto guard = [](int depth, Json::parse_event_t, Json&) { return depth <= 512; };
  return Json::parse(text, guard, true).size();
}

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t max_entries = 0;  // 0: up to the 100 MB header limit
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--max-entries") max_entries = std::atoll(argv[i + 1]);
    else if (k == "--reps") reps = std::atoi(argv[i + 1]);
  }
  std::printf("# %s\n", load_line().c_str());
  // GGUF: one u8 array of 2^24 elements.
  const uint64_t n = uint64_t(1) << 24;
  std::string g = "GGUF";
  auto put = [&](const void* p, size_t k) { g.append(static_cast<const char*>(p), k); };
  const uint32_t version = 3, arr = 9, u8 = 0;
  const uint64_t zero = 0, one = 1, klen = 5;
  put(&version, 4), put(&zero, 8), put(&one, 8), put(&klen, 8), g += "a.big", put(&arr, 4), put(&u8, 4), put(&n, 8);
  g.append(n, '\1');
  const long rss0 = peak_rss_kb();
  size_t held = 0;
  const Timing t = time_runs(
      [&] { held = gguf::parse_header(reinterpret_cast<const uint8_t*>(g.data()), g.size(), "bench").kv[0].value.packed().size(); },
      reps);
  std::printf("gguf u8[2^24] (%.1f MiB file): parse %.4f s, array holds %zu bytes, peak RSS %ld -> %ld MB\n",
              double(g.size()) / 1048576.0, t.best, held, rss0 / 1024, peak_rss_kb() / 1024);
  std::printf("%-10s %12s %12s %12s %14s\n", "entries", "header MiB", "parse s", "us/entry", "callback s");
  std::vector<int64_t> sizes;
  for (int64_t n : {1000, 10000, 20000, 50000, 200000})
    if (max_entries <= 0 || n < max_entries) sizes.push_back(n);
  sizes.push_back(max_entries);  // 0: filled up to the limit
  for (int64_t n : sizes) {
    const std::string img = safetensors_image(n);
    const size_t hlen = img.size() - 8 - size_t(n) * 8;
    const Timing t = time_runs(
        [&] { parse_safetensors_header(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "bench"); },
        n >= 200000 ? 1 : reps);
    std::string old = "-";
    if (n <= 20000) {
      const std::string text = img.substr(8, hlen);
      old = std::to_string(time_runs([&] { parse_with_callback_guard(text); }, 1, 0).best);
    }
    std::printf("%-10lld %12.1f %12.4f %12.3f %14s\n", (long long)n, double(hlen) / 1048576.0, t.best,
                t.best / double(n) * 1e6, old.c_str());
  }
  std::printf("peak RSS %ld MB (the largest header and its nlohmann DOM)\n", peak_rss_kb() / 1024);
  return 0;
}
