#include "eval/results.h"

#include <ctime>

#include "io/mapped_file.h"

namespace calq::eval {

namespace {
std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}
}  // namespace

Json make_results(const std::string& evaluation, const ModelInfo& model, const Json& data, const Json& settings,
                  const Json& metrics, double elapsed_s, const Json& details) {
  Json j = Json::object();
  j["calq_version"] = CALQ_VERSION;
  j["evaluation"] = evaluation;
  j["created_utc"] = utc_now();
  j["model"] = {{"path", model.path},
                {"format", model.format},
                {"hash", model.hash},
                {"hash_method", "calq-model-id-v1"},
                {"arch", model.arch},
                {"tokenizer_sha256", model.tokenizer_sha256}};
  j["data"] = data;
  j["settings"] = settings;
  j["elapsed_s"] = elapsed_s;
  j["metrics"] = metrics;
  j["details"] = details;
  return j;
}

void write_results(const std::string& path, const Json& results) { write_file_atomic(path, results.dump(1) + "\n"); }

}  // namespace calq::eval
