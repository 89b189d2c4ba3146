// Text sources for calibration sets: corpora split into documents, zero-shot task files formatted
// as question + answer text, FLORES-200 sentences of one language. Every source carries the
// sha256 of the file it was read from (for the manifest).
#pragma once
#include <string>
#include <vector>

namespace calq {

struct TextSource {
  std::string path;
  std::string sha256;              // of the file's bytes
  std::string description;         // e.g. "jsonl field 'text'", "blank-line paragraphs"
  std::vector<std::string> docs;   // documents / examples / sentences, in file order
};

// How plain-text files split into documents:
//   "auto"     .jsonl: one document per line (JSON field `field`); .raw (WikiText): "wikitext";
//              anything else: "blank"
//   "blank"    paragraphs separated by blank lines
//   "line"     one document per non-empty line
//   "file"     the whole file is one document
//   "wikitext" articles, each starting at a top-level " = Title = " heading line
// Empty documents are dropped. Throws IoError (missing file) / FormatError (bad JSON line,
// missing field) naming the file and line, ArgError for an unknown split or an empty source.
TextSource read_text_source(const std::string& path, const std::string& field = "text",
                            const std::string& split = "auto");

// A zero-shot task file (jsonl) formatted as one text per item, the answer filled in:
//   {query, choices, gold} (ARC, PIQA, llm-foundry copies): rtrim(query) + "\nAnswer: " + choices[gold]
//   {ctx, endings, label} (HellaSwag): ctx + " " + endings[label]
//   {context_options, continuation, gold} (WinoGrande): context_options[gold] + " " + continuation
//   {context, continuation} (LAMBADA): context + " " + continuation
// `task` is a path to a .jsonl file or a name under <data_root>/data/tasks (e.g. "arc_challenge").
TextSource read_task_source(const std::string& task, const std::string& data_root);
// Names of the task files under <data_root>/data/tasks (without .jsonl).
std::vector<std::string> available_tasks(const std::string& data_root);

// FLORES-200 devtest sentences of `lang` (e.g. "fra_Latn") from <data_root>/data/flores200/devtest.
// ArgError listing the available languages when the file is missing.
TextSource read_flores_source(const std::string& lang, const std::string& data_root);
std::vector<std::string> available_flores_languages(const std::string& data_root);

}  // namespace calq
