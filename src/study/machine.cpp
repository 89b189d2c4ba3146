#include "study/machine.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

namespace calq::study {

namespace {

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(line.find_first_not_of(" \t", c + 1));
    }
  return "unknown";
}

double proc_kb(const char* file, const char* key) {
  std::ifstream f(file);
  std::string line;
  const std::string k = key;
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::atof(line.c_str() + k.size());
  return -1;
}

}  // namespace

Json machine_json() {
  utsname u{};
  uname(&u);
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return {{"host", host},
          {"cpu", cpu_model()},
          {"cores", std::thread::hardware_concurrency()},
          {"memory_gb", proc_kb("/proc/meminfo", "MemTotal:") / (1024.0 * 1024.0)},
          {"os", std::string(u.sysname) + " " + u.release}};
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

PeakRss::PeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}

double PeakRss::mb() const {
  const double kb = proc_kb("/proc/self/status", "VmHWM:");
  if (kb >= 0) return kb / 1024.0;
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return double(r.ru_maxrss) / 1024.0;
}

}  // namespace calq::study
