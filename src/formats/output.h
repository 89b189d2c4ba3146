// The one output protocol of every writer in formats/ (GPTQ and AWQ folders, the fake-quant
// checkpoint, GGUF files), and what every writer reports.
//
//  * Input: a finished QuantState (quant/qstate.h), or for GGUF also a float model folder.
//  * Folders are filled under a temporary name beside the target, "<out>.calq-tmp" (a stale one
//    from a killed run is removed first), and moved into place when complete: a target that exists
//    is complete. Single files go through io's AtomicFile ("<out>.tmp", then a rename).
//  * Never over a device: a target that exists and is not a regular file or folder (/dev/null, a
//    FIFO, a socket, a link to one) is refused (io's check_output_target), for folders and files.
//  * One overwrite rule: calq replaces nothing it did not write for this run. The target must not
//    exist, or be an empty folder — unless it is the folder of the run itself, i.e. it holds one
//    of the `keep` entries (the QuantState of `calq quantize -o OUT` lives in OUT/qstate): then
//    the written files replace their namesakes and the previous weight files (model*.safetensors,
//    the shard index), config.json last; nothing else in the folder is touched.
//  * One list of side files copied from the source model: kSideFiles (the tokenizer and the
//    generation config; model cards, weights and anything else are not copied).
#pragma once
#include <string>
#include <vector>

#include "formats/packing.h"
#include "quant/qstate.h"

namespace calq {

class OutputDir {
 public:
  // Checks the overwrite rule for `out` (ArgError) and creates a fresh temporary folder.
  explicit OutputDir(std::string out, std::vector<std::string> keep = {});
  // Not committed (an exception on the way): the temporary folder is removed.
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  const std::string& out() const { return out_; }
  // The temporary folder to fill, and a path inside it.
  const std::string& tmp() const { return tmp_; }
  std::string path(const std::string& name) const;
  // Moves the content into place (IoError on failure).
  void commit();

 private:
  std::string out_, tmp_;
  std::vector<std::string> keep_;
  bool committed_ = false;
};

// The overwrite rule for a folder, checked before long work starts (OutputDir checks it again).
void check_output_dir(const std::string& out, const std::vector<std::string>& keep = {});
// The overwrite rule for a single-file output: ArgError when `path` exists.
void check_new_output_file(const std::string& path);

// Tokenizer and generation files copied next to written weights.
extern const char* const kSideFiles[8];
void copy_side_files(const std::string& from_dir, const std::string& to_dir);

// What a writer did, for the CLI to print.
struct ExportReport {
  std::string out;
  int64_t quantized = 0;  // packed (or re-quantized) linear weights of the run
  int64_t copied = 0;     // tensors copied from the source model
  int64_t replaced = 0;   // float tensors taken from the quantization run
  PackStats stats;
  std::vector<std::string> warnings;  // one line each
};

// Warnings every writer of a weights-only format reports for a run: activation quantization
// (W8A8) is not part of GPTQ/AWQ/GGUF, so the exported model runs with float activations.
std::vector<std::string> run_warnings(const QuantState& q, const std::string& format);

}  // namespace calq
