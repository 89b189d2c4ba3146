// Evaluation text: how a data file becomes the one string that is tokenized for perplexity/KLD.
// The construction is explicit (TextMode) because it changes the numbers: GPTQ-style WikiText-2
// perplexity joins the Hugging Face rows with "\n\n", llama.cpp tokenizes the raw file as-is.
#pragma once
#include <string>

namespace calq::eval {

enum class TextMode {
  Auto,    // by file name: *.jsonl / *.json -> Jsonl, *.devtest / *.dev -> Lines, otherwise Raw
  Raw,     // the file's bytes as-is (llama.cpp)
  HfRows,  // WikiText-2 rows as Hugging Face `wikitext-2-raw-v1` has them, joined with "\n\n" (GPTQ)
  Jsonl,   // one JSON object per line; its text field, documents joined with "\n\n"
  Lines,   // one sentence per line (FLORES-200); non-empty lines joined with "\n"
};

const char* text_mode_name(TextMode m);
// "auto", "raw", "hf-rows", "jsonl", "lines"; ArgError otherwise.
TextMode parse_text_mode(const std::string& s);
// The mode Auto resolves to for `path`.
TextMode resolve_text_mode(TextMode m, const std::string& path);

// The HF rows of a WikiText raw file: split after every "\n" (each line keeps its "\n"), a
// whitespace-only line becomes "", then "\n\n".join(rows).
std::string wikitext_hf_rows_text(const std::string& raw);

struct EvalText {
  std::string text;
  TextMode mode = TextMode::Raw;  // resolved
  std::string file_sha256;        // of the file's bytes
  size_t documents = 0;           // rows / records / lines joined (1 for Raw)
};

// Reads `path` and builds the text. Throws IoError, FormatError (bad JSON line, missing field,
// naming file and line) or ArgError when no text results (empty file, only empty records).
EvalText load_eval_text(const std::string& path, TextMode mode, const std::string& jsonl_field = "text");

}  // namespace calq::eval
