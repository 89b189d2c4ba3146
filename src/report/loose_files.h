// Builds a ReportInput from loose files (`calq report`): statistics files from `calq stats` and
// results files from `calq eval ppl|kld|tasks`, each given with the labels it belongs to.
//
//   --stats MODEL:SET=FILE.stats.safetensors
//   --eval  MODEL:SET=RESULTS.json           SET "-": no calibration set (the float model, RTN)
//   --eval  MODEL:SET:METHOD=RESULTS.json    METHOD overrides what the file's model says
//   --set   SET=GROUP                        quality | content | language | other
//   --synthetic MODEL
//
// The text before the first '=' holds the labels (split at ':'), the rest is the path.
// From a results file: the evaluation names (ppl:<data>, kld:<data>, acc:<task>), values and
// standard errors; the method and its settings from the evaluated model's config.json
// ("calq_quant", written by `calq quantize`), else "float". A set's group, unless --set gives it,
// comes from how the set was built (recorded in the statistics file and in calq_quant): lang ->
// language, task -> content, text / punct / random-tokens -> quality, else other.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "report/input.h"

namespace calq::report {

struct LooseSpec {
  std::string model, set, method;  // set "" = none; method "" = from the file
  std::string path;
};
// `option` names the flag in errors ("--stats"). ArgError on a malformed spec.
LooseSpec parse_loose_spec(const std::string& spec, bool allow_method, const std::string& option);

struct LooseFiles {
  std::string title;
  std::vector<std::string> stats, evals;    // specs as above
  std::vector<std::string> groups;          // "SET=GROUP"
  std::vector<std::string> synthetic;       // model labels
};

ReportInput build_report_input(const LooseFiles& lf);

// The evaluation name of a results file's data: "wikitext2", "tinystories", "c4", a FLORES code,
// else the data file's name without extensions.
std::string data_label(const std::string& data_path);

// Rows of one results file (`calq eval ... -o FILE`), labels and method filled in by the caller:
// ppl -> ppl:<data> (ppl ± ppl_stderr); kld -> kld:<data> (kld_mean ± kld_mean_stderr);
// tasks -> acc:<task> (acc ± acc_stderr) for every task. FormatError naming `what` otherwise.
std::vector<ResultRow> rows_from_results(const Json& results, const std::string& what);

// Method and settings of an evaluated model folder from its config.json "calq_quant" block;
// {"float", {}} when there is none. `builder` receives the calibration builder when known.
std::pair<std::string, MethodSettings> method_from_model(const std::string& model_dir, std::string* builder);

// The calibration group a builder's sets belong to ("lang" -> "language", ...), "" if unknown.
std::string group_of_builder(const std::string& builder);

}  // namespace calq::report
