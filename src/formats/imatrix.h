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

// The legacy binary imatrix (.dat): the only one llama.cpp read before the GGUF imatrix format
// (llama.cpp PR #9400, merged mid-2025; the default since PR #14842) and the one forks built from
// older releases (ik_llama.cpp) still read; current llama-quantize tries GGUF and falls back to it.
// As the old tools/imatrix/imatrix.cpp save_imatrix() wrote it, little-endian:
//   int32 n_entries; per entry (sorted by name): int32 len, name (GGUF tensor name), int32 ncall,
//   int32 nval, float32 values[nval] = mean(x²) · ncall (the reader divides by ncall);
//   then int32 last_call (= ncall) and int32 len + the dataset name (opt.datasets joined by ",").
// ncall is the number of chunks (calibration samples, at least 1).
std::string imatrix_dat_bytes(const ActStats& s, const ImatrixOptions& opt = {});

}  // namespace calq
