// calq command line: builds the subcommand tree from the registry (see command.h), runs the
// chosen one, and turns any calq::Error into one line on stderr with a non-zero exit code.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "command.h"
#include "kernels/isa.h"
#include "util/error.h"

namespace calq::cli {

std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> r;
  return r;
}

void info(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

namespace {
int g_threads = 0;
}
int threads() { return g_threads; }

// OpenMP's wait policy, chosen for the user (docs/performance.md, "Threads on a shared machine"):
// libgomp's default lets idle workers spin ~300k iterations between parallel regions, which on a
// machine with other work steals the cores calq's own threads need (`-t 2` took 97 s against 38 s at
// `-t 1` with the other core busy). libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when it is
// loaded, before main() runs: setenv() here is too late, so calq sets the default and executes
// itself again (once; an explicit setting of the user is never touched, and if the re-exec fails
// the run simply continues with libgomp's default).
constexpr const char* kWaitPolicyVar = "OMP_WAIT_POLICY";
constexpr const char* kWaitPolicyValue = "passive";

void default_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (::setenv(kWaitPolicyVar, kWaitPolicyValue, 0) != 0) return;
  ::execv("/proc/self/exe", argv);
}

}  // namespace calq::cli

int main(int argc, char** argv) {
  using namespace calq::cli;
  default_wait_policy(argv);
  CLI::App app{"calq: post-training quantization and calibration-set analysis for LLMs (v" CALQ_VERSION ")"};
  app.require_subcommand(1);
  app.set_version_flag("--version", CALQ_VERSION);
  app.add_option("-t,--threads", g_threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  std::string isa;
  app.add_option("--isa", isa, "cap calq's kernels at this instruction set (default: the best the CPU runs)")
      ->check(CLI::IsMember({"avx512", "avx2", "scalar"}));

  std::map<std::string, CLI::App*> nodes;  // "eval" -> its CLI::App, for nested commands
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (auto& spec : registry()) {
    CLI::App* parent = &app;
    std::string key;
    for (size_t i = 0; i + 1 < spec.path.size(); ++i) {
      key += "/" + spec.path[i];
      if (!nodes.count(key)) {
        nodes[key] = parent->add_subcommand(spec.path[i], spec.path[i] + " commands");
        nodes[key]->require_subcommand(1);
      }
      parent = nodes[key];
    }
    CLI::App* sub = parent->add_subcommand(spec.path.back(), spec.help);
    runners.emplace_back(sub, spec.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (calq::Isa i; !isa.empty() && calq::isa_from_name(isa, &i)) calq::set_max_isa(i);
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const calq::Error& e) {
    std::fprintf(stderr, "calq: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "calq: error: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calq: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
