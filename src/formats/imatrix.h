// The importance matrix in llama.cpp's GGUF imatrix format (tools/imatrix/imatrix.cpp, 2025),
// which `llama-quantize --imatrix FILE` reads:
//   general.type = "imatrix"; imatrix.datasets (string array); imatrix.chunk_count (u32: chunks
//   = calibration samples); imatrix.chunk_size (u32: tokens per chunk = seqlen)
//   per weight, GGUF tensor names (formats/gguf_names.h): "<name>.in_sum2" F32 [cols] = Σx² per
//   input channel, "<name>.counts" F32 [1] = number of tokens, "<name>.in_sum" F32 [cols] = Σx
//   (written by current llama.cpp; older readers ignore it), tensors sorted by name.
// Dense models only (MoE experts would add a dimension). Every linear weight gets its own entry;
// q/k/v (and gate/up) carry the same values because they read the same input.
#pragma once
#include <string>
#include <vector>

#include "io/gguf.h"
#include "observe/act_stats.h"

namespace calq {

struct ImatrixOptions {
  std::vector<std::string> datasets;  // default: the calibration sets' builder + token sha256
  int64_t chunk_size = 0;             // default: the calibration set's seqlen (from the sources)
};

// Builds the GGUF image. Throws ArgError when no observed linear input has a GGUF name (only the
// Llama family, whose names llama.cpp knows, can be exported) or when the stats are empty.
gguf::Writer imatrix_writer(const ActStats& s, const ImatrixOptions& opt = {});
void write_imatrix(const ActStats& s, const std::string& path, const ImatrixOptions& opt = {});

}  // namespace calq
