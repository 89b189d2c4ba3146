// Scale-out on Slurm: `calq study submit FILE --slurm` writes three job-array scripts, one per phase
// of study/runner.h, and a submit script that chains them with --dependency=afterok:
//   <out>/slurm/prep.sbatch     1 task: synthetic models and calibration sets
//   <out>/slurm/shared.sbatch   one task per model: activation statistics, float KLD references
//   <out>/slurm/cells.sbatch    one task per quantized model (the cells sharing it) or float cell
//   <out>/slurm/submit.sh       sbatch --parsable each, the next with --dependency=afterok:<previous>
// Every array task runs `calq study run-cell FILE --phase P --index $SLURM_ARRAY_TASK_ID`, builds
// into the shared cache and writes its own result files; `calq study collect FILE` merges them
// into the store afterwards (one writer: no SQLite over NFS).
#pragma once
#include <string>
#include <vector>

#include "study/grid.h"

namespace calq::study {

struct SlurmOptions {
  std::string calq;          // the calq executable (absolute path)
  std::string config;        // the study file (absolute path)
  std::string data_root;     // exported as CALQ_DATA
  std::string partition, time, mem, account, qos;  // #SBATCH settings (empty: the cluster's default)
  int cpus_per_task = 0;     // 0: the cluster's default
  int max_parallel = 0;      // array throttle (%N), 0: none
  std::vector<std::string> extra;  // more "#SBATCH ..." lines, e.g. "--gres=gpu:0"
};

struct SlurmScripts {
  std::string dir, submit;
  std::vector<std::string> phases;   // phases with tasks, in order
  std::vector<std::string> scripts;  // their .sbatch files
  std::vector<int> tasks;            // array sizes
};

// Writes the scripts for the study's grid (IoError on failure).
SlurmScripts write_slurm_scripts(const StudyConfig& c, const Grid& g, const SlurmOptions& o);

}  // namespace calq::study
