// The tiny studies the study and report tests run (one copy of their TOML): stories260K with a
// few calibration sets, float + RTN + GPTQ, one short perplexity; and the same grown by what the
// report draws (statistics, language sets, SmoothQuant, a KV-cache axis).
#pragma once
#include <fstream>
#include <string>

#include "test_util.h"

namespace calq::test {

// The head every tiny study shares: [study] `name` (plus `study_keys` lines), stories260K, and two
// calibration sets of n x 64 tokens (tinystories: quality text, punct: punctuation), in group
// "quality" when `grouped`.
inline std::string tiny_study_head(const std::string& name, int n, bool grouped, const std::string& study_keys = "") {
  const std::string group = grouped ? "group = \"quality\"\n" : "";
  return "[study]\nname = \"" + name + "\"\n" + study_keys + R"(
[[models]]
label = "stories260K"
path = "{data}/models/stories260K"

[calibration_defaults]
n = )" + std::to_string(n) + R"(
seqlen = 64

[[calibration]]
label = "tinystories"
)" + group + R"(builder = "text"
source = "{data}/data/tinystories/tinystories_val.txt"

[[calibration]]
label = "punct"
)" + group + R"(builder = "punct"
)";
}

// One real model, two calibration sets (tinystories: quality text, punct: punctuation), float +
// RTN + GPTQ at `gptq_bits`, one perplexity (64-token windows, 2 chunks); `stats`: statistics, one
// sample per batch (snapshots for the convergence curves); `extra` is appended
// (more [[calibration]], [[methods]], [[kv]], [[exclude]] entries).
inline std::string tiny_study(const std::string& extra = "", const std::string& gptq_bits = "[4, 3]", bool stats = false) {
  return tiny_study_head("t", 4, true, std::string("stats = ") + (stats ? "true\nstats_batch = 1" : "false") + "\n") + R"(
[[methods]]
method = "float"

[[methods]]
method = "rtn"
group_size = 32

[[methods]]
method = "gptq"
bits = )" + gptq_bits + R"(
group_size = 32

[[evaluations]]
kind = "ppl"
label = "ts"
data = "{data}/data/tinystories/tinystories_val.txt"
ctx = 64
chunks = 2
)" + extra;
}

// tiny_study with every figure of the report: statistics of four sets (two languages), GPTQ w4 and
// SmoothQuant W8A8 beside float and RTN, and a KV-cache axis (16 and 4 bits; SmoothQuant only at 16).
inline std::string tiny_report_study() {
  return tiny_study(R"(
[[calibration]]
label = "eng_Latn"
group = "language"
builder = "lang"
lang = "eng_Latn"

[[calibration]]
label = "fra_Latn"
group = "language"
builder = "lang"
lang = "fra_Latn"

[[methods]]
method = "smoothquant"
alpha = 0.5

[[kv]]
bits = 16

[[kv]]
bits = 4
group = 0

[[exclude]]
method = "sq-*"
kv = "kv4*"

[[exclude]]
method = "rtn-*"
kv = "kv4*"
)",
                    "4", true);
}

// Writes tiny_report_study() to <dir>/study.toml and runs `calq study` and `calq study report` on
// it (report in <dir>/report). Returns the commands' output; `ok` says whether both succeeded.
inline std::string run_tiny_report_study(const std::string& dir, bool* ok) {
  std::string out, more;
  const std::string file = dir + "/study.toml";
  {
    std::ofstream f(file);
    f << "[study]\nout = \"" << dir << "/out\"\n" << tiny_report_study().substr(std::string("[study]\n").size());
  }
  const std::string calq = "CALQ_PROGRESS=0 CALQ_DATA='" + data() + "' '" + cli() + "' ";
  *ok = run_command(calq + "study '" + file + "'", &out) == 0 &&
        run_command(calq + "study report '" + file + "' -o '" + dir + "/report'", &more) == 0;
  return out + more;
}

}  // namespace calq::test
