// Making one artifact of the grid (study/grid.h) with the library — the same calls, with the same
// settings, that `calq synth`, `calq calib build`, `calq stats`, `calq eval kld-ref`,
// `calq quantize` and `calq eval ppl|kld|tasks` make, so a study cell and the same steps typed by
// hand give bitwise the same numbers.
//
// The artifact protocol: a step builds into <cache>/<kind>/<key>.partial/ and, when complete,
// writes artifact.json there and renames the folder to <cache>/<kind>/<key>/. A folder under its
// key is complete; a killed step leaves only its .partial folder, from which the next run resumes
// (quantization from its finished layers, statistics from their last checkpoint, evaluations from
// their finished windows) — the resumable states of the commands themselves.
#pragma once
#include <functional>
#include <string>

#include "study/grid.h"
#include "util/progress.h"

namespace calq::study {

struct StepEnv {
  const StudyConfig& cfg;
  const Grid& grid;
  int threads = 0;
  ProgressFn progress;                           // the step's own progress (layers, tokens, samples)
  std::function<void(const std::string&)> log;   // info lines
};

// Whether the step's artifact is complete, and its record (artifact.json; null when incomplete).
bool artifact_complete(const StudyConfig& c, const Step& s);
Json artifact_record(const StudyConfig& c, const Step& s);
// Removes a complete artifact (and any partial one) — `keep` rules.
void remove_artifact(const StudyConfig& c, const Step& s);

// Builds the artifact of `s` (its dependencies must be complete) and returns its record:
// {kind, key, label, identity, seconds, peak_rss_mb, finished_utc, calq_version, machine, ...};
// eval records carry the results file under "result". Throws calq::Error on failure (the partial
// folder stays, for the next attempt to resume from).
Json build_step(const Step& s, const StepEnv& env);

// Where the pieces of complete artifacts are.
std::string model_dir(const StudyConfig& c, const Grid& g, int model);      // a model folder
std::string tokenizer_dir(const StudyConfig& c, int model);                  // folder with tokenizer.json
std::string calib_path(const StudyConfig& c, const Step& calib);            // set.safetensors
std::string stats_path(const StudyConfig& c, const Step& stats);            // stats.safetensors
std::string kldref_path(const StudyConfig& c, const Step& ref);             // ref.safetensors
std::string quant_dir(const StudyConfig& c, const Step& quant);             // fake-quant model folder

}  // namespace calq::study
