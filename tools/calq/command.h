// Subcommand registry of the calq command line. Each tools/calq/cmd_*.cpp registers itself with
// CALQ_REGISTER_COMMAND; main.cpp builds the CLI11 tree from the registry. Commands only parse
// arguments, call the library and print: logic a test would need belongs in src/.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace calq::cli {

using Runner = std::function<int()>;

struct CommandSpec {
  std::vector<std::string> path;  // e.g. {"eval", "ppl"}
  std::string help;
  // Adds options to `app`; returns what to run when this subcommand is chosen.
  std::function<Runner(CLI::App& app)> setup;
};

std::vector<CommandSpec>& registry();
inline int register_command(CommandSpec s) {
  registry().push_back(std::move(s));
  return 0;
}

#define CALQ_CLI_CONCAT2(a, b) a##b
#define CALQ_CLI_CONCAT(a, b) CALQ_CLI_CONCAT2(a, b)
#define CALQ_REGISTER_COMMAND(...) \
  static const int CALQ_CLI_CONCAT(calq_cmd_reg_, __LINE__) = ::calq::cli::register_command(__VA_ARGS__)

// Prints a progress/info line on stderr (stdout stays machine-readable).
void info(const std::string& line);

// The global -t/--threads option (0: the OpenMP default, every core). There is no process-wide
// setting: each command passes it into the options of the library calls it makes
// (kernels/threads.h).
int threads();

}  // namespace calq::cli
