// Calibration-set builders. Each produces token ids [nsamples, seqlen] and a manifest (builder,
// settings, source sha256, seed, chosen document/offset indices, tokenizer hash, counts).
// Same spec + same seed + same source + same tokenizer => byte-identical set on any platform
// (CalibRng, calib/rng.h). A source too small for the request is refused with an ArgError that
// says how much it has and what to change.
//
//  text   mode "gptq" (GPTQ, Frantar et al. 2022, datautils.get_c4): per sample pick a random
//                     document, retry until its tokenization is longer than seqlen, take a random
//                     window ids[j : j+seqlen], j uniform in [0, len-seqlen).
//         mode "concat" (AWQ style, Lin et al. 2023, get_calib_dataset): documents in a seeded
//                     random order, concatenated (separator "\n\n") and cut into blocks of seqlen.
//         mode "document": one random document per sample, truncated to seqlen, right-padded
//                     (attention_mask marks the padding).
//  punct  random strings of ASCII punctuation characters (the "nonsensical" set of the study),
//         tokenized, seqlen tokens per sample.
//  random-tokens  ids drawn uniformly from the vocabulary minus special tokens.
//  task   items of a zero-shot task file formatted as question + answer (calib/sources.h),
//         seeded order, packed like "concat" (or mode "document").
//  lang   FLORES-200 sentences of one language in seeded order (the same seed gives the same
//         sentence order in every language, so language sets are parallel), packed, separator " ".
//  mix    a weighted mixture of the above: part i gets round(w_i / Σw × nsamples) samples
//         (largest remainder) built with seed + i; the samples are then shuffled with `seed`.
// Packed modes encode text in chunks without special tokens; with add_special_tokens every sample
// starts with the tokenizer's BOS (when it has one) followed by seqlen-1 tokens of the stream.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "calib/calib_set.h"
#include "tokenizer/tokenizer.h"

namespace calq {

struct CalibMixPart;

struct CalibSpec {
  std::string builder = "text";  // text | punct | random-tokens | task | lang | mix
  int64_t nsamples = 128;
  int64_t seqlen = 2048;
  uint64_t seed = 0;
  bool add_special_tokens = true;
  std::string mode;              // text: gptq (default) | concat | document; task, lang: concat (default) | document
  std::string source;            // text: corpus file (.txt, .jsonl, .raw)
  std::string field = "text";    // text: jsonl field
  std::string split = "auto";    // text: document split (calib/sources.h)
  std::string task;              // task: name under <data_root>/data/tasks or a .jsonl path
  std::string lang;              // lang: FLORES-200 code, e.g. "fra_Latn"
  std::string charset;           // punct: characters to draw from (default: the 32 ASCII punctuation marks)
  int64_t vocab = 0;             // random-tokens: id range [0, vocab) (default: the tokenizer's)
  std::vector<CalibMixPart> parts;  // mix (std::pair may not hold an incomplete type; a named struct may)
  std::string data_root;          // task, lang: the data pack (the caller resolves it; the CLI: $CALQ_DATA)
};

struct CalibMixPart {
  double weight = 1.0;
  CalibSpec spec;
};

// Builds the set. `tok` may be null only for random-tokens with spec.vocab > 0.
CalibSet build_calib_set(const CalibSpec& spec, const Tokenizer* tok);

// One mix part from "WEIGHT:BUILDER[:key=value,key=value...]", keys: source, mode, field, split,
// task, lang, charset, vocab; other settings come from `defaults`. ArgError on bad syntax.
CalibMixPart parse_mix_part(const std::string& text, const CalibSpec& defaults);

// The window length of a set meant for a model with `max_position` positions (0: not known):
// `requested` when positive, refused (ArgError naming `model`) when longer than the model takes —
// every consumer (statistics, quantization) would refuse the set later; else GPTQ's 2048, capped
// at the model's context.
int64_t calib_seqlen(int64_t requested, int64_t max_position, const std::string& model);

// The spec's settings as stored in the manifest.
Json calib_spec_json(const CalibSpec& spec);

// The 32 ASCII punctuation characters (Python's string.punctuation).
const std::string& ascii_punctuation();

}  // namespace calq
