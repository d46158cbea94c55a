// prefopt verify: readers of the JSONL files the graders, the sandbox and the
// samplers write (docs/graders.md lists the fields). Bad rows are errors
// naming file:line and what to do.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "verify/dstc.h"
#include "verify/pairs.h"
#include "verify/passk.h"

namespace prefopt {

// A row with verdict SANDBOX_ERROR: an infrastructure failure that says nothing
// about the model, left out of pass@k and pairs (docs/sandbox.md).
bool is_sandbox_error(const nlohmann::json& row);

// Per-problem sample counts of a results file. Problem id: task_id,
// problem_id, prompt_id, prompt_index or idx; success: "passed" (bool) or
// "verdict" PASSED / CORRECT. SANDBOX_ERROR rows are skipped (with a warning).
std::map<std::string, ProblemCounts> read_results(const std::string& path);

// The pass@k part of an eval-code summary: "pass@K" (mean over problems) for every K in
// ks that every problem reaches, "skipped_k" for the others, and "tasks": {id: {"n", "c",
// "pass@K"...}}.
nlohmann::json passk_summary(const std::map<std::string, ProblemCounts>& counts, const std::vector<int64_t>& ks);

// A row's prompt id: prompt_id, task_id or problem_id ("" when none).
std::string prompt_key(const nlohmann::json& row);

// Graded samples grouped by prompt (id, else the prompt itself), in file
// order: one line per sample with prompt, completion, verdict | correct |
// passed, and an optional numeric score.
std::vector<PromptSamples> read_graded_samples(const std::string& path);

// A field that must be a list of strings.
std::vector<std::string> string_list(const nlohmann::json& row, const char* key, const std::string& path, size_t line);

// An execution matrix given as JSON: `codes` rows of `tests` 0/1 or booleans.
ExecMatrix matrix_from_json(const nlohmann::json& m, size_t codes, size_t tests, const std::string& at);

}  // namespace prefopt
