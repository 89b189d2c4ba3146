// calq command line: builds the subcommand tree from the registry (see command.h), runs the
// chosen one, and turns every failure into one `calq: error: …` line on stderr with the exit status
// of command.h (0 ok, 1 the work failed, 2 usage, 3 internal error, 128+signal interrupted).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "command.h"
#include "interrupt.h"
#include "kernels/isa.h"
#include "suggest.h"
#include "util/progress.h"

namespace calq::cli {

std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> r;
  return r;
}

std::vector<GroupSpec>& groups() {
  static std::vector<GroupSpec> g;
  return g;
}

void info(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

namespace {
int g_threads = 0;

constexpr int kExitError = 1, kExitUsage = 2, kExitInternal = 3;

std::string join_names(const std::vector<std::string>& v, const std::string& last_sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i == 0 ? "" : i + 1 == v.size() ? last_sep : ", ") + v[i];
  return s;
}

// "calq eval ppl": the names from the root to `a`.
std::string command_path(const CLI::App* a) {
  std::string s;
  for (; a; a = a->get_parent()) s = a->get_name() + (s.empty() ? "" : " " + s);
  return s;
}

std::vector<std::string> subcommand_names(const CLI::App* a) {
  std::vector<std::string> r;
  for (const CLI::App* s : a->get_subcommands([](const CLI::App*) { return true; })) r.push_back(s->get_name());
  return r;
}

// Every spelling of every option of `a` ("--group-size", "-o", "--out", ...).
std::vector<std::string> option_names(const CLI::App* a) {
  std::vector<std::string> r;
  for (const CLI::Option* o : a->get_options()) {
    for (const auto& l : o->get_lnames()) r.push_back("--" + l);
    for (const auto& s : o->get_snames()) r.push_back("-" + s);
  }
  return r;
}

// The deepest subcommand the parser entered.
CLI::App* deepest(CLI::App* a) {
  for (;;) {
    const auto subs = a->get_subcommands();
    if (subs.empty()) return a;
    a = subs.back();
  }
}

// One line for a parse error, with a "did you mean" for a near miss.
std::string usage_message(CLI::App& app, const CLI::ParseError& e) {
  CLI::App* at = deepest(&app);
  const std::string where = at == &app ? "" : command_path(at) + ": ";
  const std::string help = "; see '" + command_path(at) + " --help'";
  std::vector<std::string> rest = at->remaining();
  if (rest.empty()) rest = app.remaining(true);
  for (const auto& t : rest) {  // options first: CLI11 keeps a leftover option's value beside it
    if (t.size() < 2 || t[0] != '-' || (t[1] >= '0' && t[1] <= '9') || t[1] == '.') continue;
    const std::string name = t.substr(0, t.find('='));
    return where + "unknown option '" + name + "'" + did_you_mean(name, option_names(at)) + help;
  }
  const std::vector<std::string> subs = subcommand_names(at);
  if (!rest.empty()) {
    if (!subs.empty())
      return where + "unknown command '" + rest.front() + "'" + did_you_mean(rest.front(), subs) + "; commands: " +
             join_names(subs, " and ") + help;
    return where + "unexpected argument '" + rest.front() + "'" + help;
  }
  if (!subs.empty() && at->get_subcommands().empty())
    return where + "a command is required: " + join_names(subs, " or ") + help;
  std::string what = e.what();
  for (char& c : what)
    if (c == '\n') c = ' ';
  return where + what + help;
}

// The subcommand tree from the registry: each command's runner with its CLI11 node, deepest first.
// A command may also be the parent of others (`calq study FILE` and `calq study plan FILE`): its node
// is made from its own spec, and the deepest command given runs.
std::vector<std::pair<CLI::App*, Runner>> build_tree(CLI::App& app) {
  std::map<std::string, std::string> group_help;
  for (const auto& g : groups()) {
    std::string key;
    for (const auto& p : g.path) key += "/" + p;
    group_help[key] = g.help;
  }
  std::map<std::string, const CommandSpec*> specs;
  for (const auto& spec : registry()) {
    std::string key;
    for (const auto& p : spec.path) key += "/" + p;
    specs[key] = &spec;
  }
  std::map<std::string, CLI::App*> nodes;  // "/eval" -> its CLI::App, for nested commands
  std::vector<std::pair<size_t, std::pair<CLI::App*, Runner>>> made;  // (depth, node)
  auto make = [&](CLI::App* parent, const std::string& key, const std::string& name, size_t depth) {
    const auto it = specs.find(key);
    if (it == specs.end()) {
      const auto h = group_help.find(key);
      nodes[key] = parent->add_subcommand(name, h != group_help.end() ? h->second : name + " commands");
      nodes[key]->require_subcommand(1);
    } else {
      nodes[key] = parent->add_subcommand(name, it->second->help);
      made.push_back({depth, {nodes[key], it->second->setup(*nodes[key])}});
    }
  };
  for (const auto& spec : registry()) {
    CLI::App* parent = &app;
    std::string key;
    for (size_t i = 0; i < spec.path.size(); ++i) {
      key += "/" + spec.path[i];
      if (!nodes.count(key)) make(parent, key, spec.path[i], i);
      parent = nodes[key];
    }
  }
  std::stable_sort(made.begin(), made.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (auto& m : made) runners.push_back(std::move(m.second));
  return runners;
}

// OpenMP's wait policy, chosen for the user (docs/performance.md, "Threads on a shared machine"):
// libgomp's default lets idle workers spin ~300k iterations between parallel regions, which on a
// machine with other work steals the cores calq's own threads need (`-t 2` took 97 s against 38 s at
// `-t 1` with the other core busy). libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when it is
// loaded, before main() runs: setenv() here is too late, so calq sets the default and executes
// itself again (once; an explicit setting of the user is never touched, and if the re-exec fails
// the run simply continues with libgomp's default).
void default_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (::setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
  ::execv("/proc/self/exe", argv);
}

}  // namespace

int threads() { return g_threads; }

CLI::Validator one_of(std::vector<std::string> names) {
  std::string desc;
  for (const auto& n : names) desc += (desc.empty() ? "" : "|") + n;
  return CLI::Validator(
      [names](std::string& v) -> std::string {
        for (const auto& n : names)
          if (v == n) return "";
        return "'" + v + "': expected " + join_names(names, " or ") + did_you_mean(v, names);
      },
      desc);
}

}  // namespace calq::cli

int main(int argc, char** argv) {
  using namespace calq::cli;
  default_wait_policy(argv);
  CLI::App app{"calq: post-training quantization and calibration-set analysis for LLMs (v" CALQ_VERSION ")"};
  app.name("calq");
  app.require_subcommand(1);
  app.set_version_flag("--version", CALQ_VERSION);
  app.add_option("-t,--threads", g_threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  std::string isa;
  app.add_option("--isa", isa, "cap calq's kernels at this instruction set (default: the best the CPU runs)")
      ->check(one_of({"avx512", "avx2", "scalar"}));
  const auto runners = build_tree(app);
  app.footer(  // after the tree: subcommands do not repeat it
      "Exit status: 0 done; 1 the work failed (bad input, failed check); 2 usage error; 3 internal error;\n"
      "130 interrupted (Ctrl-C: resumable jobs keep their finished steps; rerun to resume).\n"
      "Environment: CALQ_DATA (data pack, default ../shared beside the repository), CALQ_PROGRESS (0 none,\n"
      "1 log lines), OMP_WAIT_POLICY (calq sets passive unless it or GOMP_SPINCOUNT is given).");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "calq: error: %s\n", usage_message(app, e).c_str());
    return kExitUsage;
  }
  // CALQ_ISA (as the tests read it) when --isa is not given: CI's AVX2 pass caps the CLI runs too.
  if (const char* e = std::getenv("CALQ_ISA"); isa.empty() && e) isa = e;
  if (calq::Isa i; !isa.empty() && calq::isa_from_name(isa, &i)) calq::set_max_isa(i);
  install_interrupt_handlers();
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const calq::Interrupted&) {
    const std::string& hint = resume_hint();
    std::fprintf(stderr, "calq: interrupted%s%s\n", hint.empty() ? "" : " — ", hint.c_str());
    return 128 + (interrupt_signal() ? interrupt_signal() : 2);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "calq: error: %s\n", e.what());
    return kExitUsage;
  } catch (const calq::Error& e) {
    std::fprintf(stderr, "calq: error: %s\n", e.what());
    return kExitError;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "calq: error: out of memory\n");
    return kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calq: internal error: %s\n", e.what());
    return kExitInternal;
  }
  return 0;
}
