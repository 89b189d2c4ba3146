// Subcommand registry of the calq command line. Each tools/calq/cmd_*.cpp registers itself with
// CALQ_REGISTER_COMMAND; main.cpp builds the CLI11 tree from the registry. Commands only parse
// arguments, call the library and print: logic a test would need belongs in src/.
//
// Conventions (README "Exit status"): every failure is one line `calq: error: …` on stderr; exit 0
// on success, 1 when the work fails (bad input file, failed check; any calq::Error of the library),
// 2 for a usage error (unknown command or option, bad or missing argument: CLI11's parse errors and
// UsageError), 3 for an internal error (a bug), 128+signal when interrupted (130 for Ctrl-C).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "util/error.h"

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

// The one-line description of a command group (a path with subcommands but no runner of its own,
// e.g. {"calib", "build"}), shown by `calq --help` and `calq calib --help`.
struct GroupSpec {
  std::vector<std::string> path;
  std::string help;
};
std::vector<GroupSpec>& groups();
inline int register_group(GroupSpec g) {
  groups().push_back(std::move(g));
  return 0;
}

#define CALQ_CLI_CONCAT2(a, b) a##b
#define CALQ_CLI_CONCAT(a, b) CALQ_CLI_CONCAT2(a, b)
#define CALQ_REGISTER_COMMAND(...) \
  static const int CALQ_CLI_CONCAT(calq_cmd_reg_, __LINE__) = ::calq::cli::register_command(__VA_ARGS__)
#define CALQ_REGISTER_GROUP(...) \
  static const int CALQ_CLI_CONCAT(calq_grp_reg_, __LINE__) = ::calq::cli::register_group(__VA_ARGS__)

// A command-line mistake found after parsing (options that exclude each other, a value out of its
// set): exit status 2 like CLI11's own parse errors. Errors of the work itself stay calq::Error (1).
class UsageError : public Error {
  using Error::Error;
};

// A CLI11 validator for an option whose value is one of `names`, whose error names the choices and
// the nearest one ("--format 'gguff': expected gptq, awq or gguf (did you mean 'gguf'?)").
CLI::Validator one_of(std::vector<std::string> names);

// Prints a progress/info line on stderr (stdout stays machine-readable).
void info(const std::string& line);

// The global -t/--threads option (0: the OpenMP default, every core). There is no process-wide
// setting: each command passes it into the options of the library calls it makes
// (kernels/threads.h).
int threads();

}  // namespace calq::cli
