// Zero-shot task files (../shared/data/tasks, llm-foundry copies; HellaSwag in the rowanz
// schema) turned into the (context, continuation) string pairs lm-evaluation-harness scores.
// Per task (docs/eval.md has the full table):
//   arc_easy, arc_challenge  context "Question: <q>\nAnswer:"  continuation " <choice>"
//   piqa                     context "Question: <goal>\nAnswer:" continuation " <solution>"
//     (the files' `query` is "Question: <q>" (ARC) or "Question: <goal>\n" (PIQA); one trailing
//      "\n" is dropped before "\nAnswer:" is appended, giving the harness's doc_to_text exactly)
//   hellaswag   context preprocess("<activity_label>: <ctx_a> <Ctx_b capitalized>")
//               continuation " " + preprocess(ending)  (harness hellaswag/utils.py)
//   winogrande  partial evaluation: context = context_options[i] (the sentence up to the blank,
//               filled with option i), continuation " <text after the blank>" shared by both
//   lambada     context = passage without its last word, continuation " <last word>"
#pragma once
#include <string>
#include <vector>

namespace calq::eval {

enum class TaskKind {
  MultipleChoice,  // acc + acc_norm (arc_*, piqa, hellaswag)
  Partial,         // acc only (winogrande)
  LastWord,        // greedy acc + perplexity of the continuation (lambada)
};

struct TaskChoice {
  std::string context, continuation;
  double norm_length = 1;  // characters of the choice text (acc_norm divisor, harness: len(choice))
};

struct TaskDoc {
  std::vector<TaskChoice> choices;
  int gold = 0;
  int64_t line = 0;  // 1-based line in the task file
};

struct TaskData {
  std::string name, file, file_sha256;
  TaskKind kind = TaskKind::MultipleChoice;
  std::vector<TaskDoc> docs;
};

// arc_challenge, arc_easy, piqa, hellaswag, winogrande, lambada (alias lambada_openai).
const std::vector<std::string>& known_tasks();
std::string canonical_task_name(const std::string& name);  // ArgError for unknown names
// File name of a task inside the task folder.
std::string task_file_name(const std::string& canonical);

// Reads <dir>/<file>; limit > 0 keeps the first `limit` documents. FormatError naming file:line
// and the field for a malformed record, a missing field or a gold label out of range.
TaskData load_task(const std::string& name, const std::string& dir, int64_t limit = 0);

// --- string helpers, exactly as the harness's Python does them ---
// str.capitalize(): first character title-cased, the rest lower-cased (per code point, utf8proc).
std::string py_capitalize(const std::string& s);
// hellaswag/utils.py preprocess: strip, " [title]" -> ". ", drop "[...]" (no newline inside),
// then replace "  " by " " (one non-overlapping pass, as str.replace).
std::string hellaswag_preprocess(const std::string& s);
// Unicode code points in a UTF-8 string (Python len()).
int64_t utf8_length(const std::string& s);

}  // namespace calq::eval
