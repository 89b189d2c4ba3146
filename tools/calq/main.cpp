// calq command line: builds the subcommand tree from the registry (see command.h), runs the
// chosen one, and turns any calq::Error into one line on stderr with a non-zero exit code.
#include <algorithm>
#include <cstdio>
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

}  // namespace calq::cli

int main(int argc, char** argv) {
  using namespace calq::cli;
  CLI::App app{"calq: post-training quantization and calibration-set analysis for LLMs (v" CALQ_VERSION ")"};
  app.require_subcommand(1);
  app.set_version_flag("--version", CALQ_VERSION);
  app.add_option("-t,--threads", g_threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  std::string isa;
  app.add_option("--isa", isa, "cap calq's kernels at this instruction set (default: the best the CPU runs)")
      ->check(CLI::IsMember({"avx512", "avx2", "scalar"}));

  // A command may also be the parent of others (`calq study FILE` and `calq study plan FILE`): its
  // node is made from its own spec, whichever comes first in the registry.
  std::map<std::string, const CommandSpec*> specs;
  for (const auto& spec : registry()) {
    std::string key;
    for (const auto& p : spec.path) key += "/" + p;
    specs[key] = &spec;
  }
  std::map<std::string, CLI::App*> nodes;  // "/eval" -> its CLI::App, for nested commands
  struct Node {
    CLI::App* app;
    Runner run;
    size_t depth;
  };
  std::vector<Node> runners;
  auto make = [&](CLI::App* parent, const std::string& key, const std::string& name, size_t depth) {
    auto it = specs.find(key);
    if (it == specs.end()) {
      nodes[key] = parent->add_subcommand(name, name + " commands");
      nodes[key]->require_subcommand(1);
    } else {
      nodes[key] = parent->add_subcommand(name, it->second->help);
      runners.push_back({nodes[key], it->second->setup(*nodes[key]), depth});
    }
  };
  for (auto& spec : registry()) {
    CLI::App* parent = &app;
    std::string key;
    for (size_t i = 0; i < spec.path.size(); ++i) {
      key += "/" + spec.path[i];
      if (!nodes.count(key)) make(parent, key, spec.path[i], i);
      parent = nodes[key];
    }
  }
  // The deepest command given runs (`calq study plan` rather than `calq study`).
  std::stable_sort(runners.begin(), runners.end(), [](const Node& a, const Node& b) { return a.depth > b.depth; });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (calq::Isa i; !isa.empty() && calq::isa_from_name(isa, &i)) calq::set_max_isa(i);
  try {
    for (auto& r : runners)
      if (r.app->parsed()) return r.run();
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
