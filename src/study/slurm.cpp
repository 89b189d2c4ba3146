#include "study/slurm.h"

#include <sys/stat.h>

#include <filesystem>

#include "io/mapped_file.h"
#include "study/runner.h"
#include "util/error.h"

namespace calq::study {

namespace fs = std::filesystem;

namespace {

// Single-quoted for bash.
std::string q(const std::string& s) {
  std::string r = "'";
  for (char ch : s) r += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return r + "'";
}

std::string job_script(const StudyConfig& c, const SlurmOptions& o, const std::string& phase, int tasks,
                       const std::string& logs) {
  std::string s = "#!/bin/bash\n";
  s += "#SBATCH --job-name=calq-" + c.name + "-" + phase + "\n";
  s += "#SBATCH --array=0-" + std::to_string(tasks - 1) + (o.max_parallel > 0 ? "%" + std::to_string(o.max_parallel) : "") + "\n";
  s += "#SBATCH --output=" + logs + "/" + phase + "-%A_%a.out\n";
  if (!o.partition.empty()) s += "#SBATCH --partition=" + o.partition + "\n";
  if (!o.time.empty()) s += "#SBATCH --time=" + o.time + "\n";
  if (!o.mem.empty()) s += "#SBATCH --mem=" + o.mem + "\n";
  if (!o.account.empty()) s += "#SBATCH --account=" + o.account + "\n";
  if (!o.qos.empty()) s += "#SBATCH --qos=" + o.qos + "\n";
  if (o.cpus_per_task > 0) s += "#SBATCH --cpus-per-task=" + std::to_string(o.cpus_per_task) + "\n";
  for (const auto& e : o.extra) s += "#SBATCH " + e + "\n";
  s += "# calq study " + c.name + ", phase " + phase + ": " + std::to_string(tasks) +
       " array task(s); each writes its own result files, `calq study collect` merges them.\n";
  s += "set -euo pipefail\n";
  s += "export CALQ_DATA=" + q(o.data_root) + " CALQ_PROGRESS=1\n";
  s += "exec " + q(o.calq) + " -t \"${SLURM_CPUS_PER_TASK:-0}\" study run-cell " + q(o.config) + " --out " + q(c.out) +
       " --phase " + phase + " --index \"${SLURM_ARRAY_TASK_ID:?run this script as a Slurm array task}\"\n";
  return s;
}

void write_script(const std::string& path, const std::string& text) {
  write_file_atomic(path, text);
  if (::chmod(path.c_str(), 0755) != 0) throw IoError(path + ": cannot make it executable");
}

}  // namespace

SlurmScripts write_slurm_scripts(const StudyConfig& c, const Grid& g, const SlurmOptions& o) {
  SlurmScripts out;
  out.dir = path_join(c.out, "slurm");
  const std::string logs = path_join(out.dir, "logs");
  std::error_code ec;
  fs::create_directories(logs, ec);
  if (ec) throw IoError(logs + ": cannot create folder (" + ec.message() + ")");
  std::string submit =
      "#!/bin/bash\n"
      "# Submits the study's phases as dependent job arrays (sbatch --parsable; afterok: a phase starts when\n"
      "# every task of the previous one succeeded). Then, when all are done: calq study collect.\n"
      "set -euo pipefail\n"
      "cd \"$(dirname \"$0\")\"\n"
      "dep=()\n";
  for (const auto& phase : phases()) {
    const int n = int(phase_tasks(c, g, phase).size());
    if (n == 0) continue;
    const std::string file = phase + ".sbatch";
    write_script(path_join(out.dir, file), job_script(c, o, phase, n, logs));
    out.phases.push_back(phase);
    out.scripts.push_back(path_join(out.dir, file));
    out.tasks.push_back(n);
    submit += "id=$(sbatch --parsable \"${dep[@]}\" " + file + ")\n";
    submit += "id=${id%%;*}\n";
    submit += "echo \"" + phase + ": job $id (" + std::to_string(n) + " array tasks)\"\n";
    submit += "dep=(--dependency=afterok:$id)\n";
  }
  submit += "echo \"when the jobs are done: " + o.calq + " study collect " + o.config + " --out " + c.out + "\"\n";
  out.submit = path_join(out.dir, "submit.sh");
  write_script(out.submit, submit);
  return out;
}

}  // namespace calq::study
