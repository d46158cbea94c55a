// Readers of graded results and samples (see results_io.h).
#include "verify/results_io.h"

#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"

namespace prefopt {

// A sandbox infrastructure failure (eval-code's verdict SANDBOX_ERROR) says
// nothing about the model: such rows are left out of n (docs/sandbox.md).
bool is_sandbox_error(const json& row) {
  return row.contains("verdict") && row["verdict"].is_string() && row["verdict"] == "SANDBOX_ERROR";
}

// Problem id: task_id, problem_id, prompt_id, prompt_index or idx; success:
// "passed" (bool) or "verdict" PASSED / CORRECT. SANDBOX_ERROR rows are skipped.
std::map<std::string, ProblemCounts> read_results(const std::string& path) {
  std::map<std::string, ProblemCounts> m;
  int64_t skipped = 0;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    std::string id;
    for (const char* k : {"task_id", "problem_id", "prompt_id", "prompt_index", "idx"})
      if (row.contains(k)) {
        id = row[k].is_string() ? row[k].get<std::string>() : row[k].dump();
        break;
      }
    if (id.empty())
      fail(where(path, line), "no problem id", "each line needs task_id, problem_id, prompt_id, prompt_index or idx");
    if (is_sandbox_error(row)) {
      ++skipped;
      return;
    }
    bool ok;
    if (row.contains("passed") && row["passed"].is_boolean()) ok = row["passed"];
    else if (row.contains("verdict") && row["verdict"].is_string())
      ok = row["verdict"] == "PASSED" || row["verdict"] == "CORRECT";
    else
      fail(where(path, line), "no outcome", "each line needs \"passed\" (bool) or \"verdict\" (PASSED/CORRECT = success)");
    auto& pc = m[id];
    pc.n++;
    pc.c += ok;
  });
  if (skipped)
    warn("{}: {} rows with verdict SANDBOX_ERROR (infrastructure) left out of pass@k", path, skipped);
  if (m.empty()) fail(path, "no results", "the file has no JSON lines (other than SANDBOX_ERROR rows)");
  return m;
}

std::string prompt_key(const json& row) {
  for (const char* k : {"prompt_id", "task_id", "problem_id"})
    if (row.contains(k)) return row[k].is_string() ? row[k].get<std::string>() : row[k].dump();
  return "";
}

// One line per sample: prompt, completion, verdict|correct|passed, [score], [prompt_id].
std::vector<PromptSamples> read_graded_samples(const std::string& path) {
  std::vector<PromptSamples> groups;
  std::map<std::string, size_t> index;
  int64_t skipped = 0;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    const json& prompt = require_field(row, "prompt", path, line);
    const json& completion = require_field(row, "completion", path, line);
    if (is_sandbox_error(row)) {  // neither correct nor incorrect: never a chosen or rejected response
      ++skipped;
      return;
    }
    GradedSample s;
    s.completion = completion;
    if (row.contains("correct") && row["correct"].is_boolean()) s.correct = row["correct"];
    else if (row.contains("passed") && row["passed"].is_boolean()) s.correct = row["passed"];
    else if (row.contains("verdict") && row["verdict"].is_string())
      s.correct = row["verdict"] == "CORRECT" || row["verdict"] == "PASSED";
    else
      fail(where(path, line), "no outcome",
           "each sample needs \"verdict\" (from prefopt grade / eval-code), or \"correct\" / \"passed\" (bool)");
    if (row.contains("score")) {
      if (!row["score"].is_number())
        fail(where(path, line), std::string("\"score\" must be a number, found ") + row["score"].type_name());
      s.score = row["score"];
    } else {
      s.score = s.correct ? 1 : 0;
    }
    std::string id = prompt_key(row);
    std::string key = id.empty() ? prompt.dump() : id;
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, groups.size()).first;
      groups.push_back({id, prompt, {}});
    }
    groups[it->second].samples.push_back(std::move(s));
  });
  if (skipped) warn("{}: {} samples with verdict SANDBOX_ERROR (infrastructure) left out of the pairs", path, skipped);
  return groups;
}

std::vector<std::string> string_list(const json& row, const char* key, const std::string& path, size_t line) {
  const json& v = require_field(row, key, path, line);
  if (!v.is_array()) fail(where(path, line), std::string("\"") + key + "\" must be a list of strings");
  std::vector<std::string> out;
  for (auto& x : v) {
    if (!x.is_string()) fail(where(path, line), std::string("\"") + key + "\" must be a list of strings");
    out.push_back(x);
  }
  return out;
}

ExecMatrix matrix_from_json(const json& mj, size_t codes, size_t tests, const std::string& at) {
  ExecMatrix m;
  m.codes = codes;
  m.tests = tests;
  if (!mj.is_array() || mj.size() != codes)
    fail(at, fmt::format("\"matrix\" must have {} rows (one per code)", codes));
  for (auto& r : mj) {
    if (!r.is_array() || r.size() != tests)
      fail(at, fmt::format("each \"matrix\" row must have {} entries (one per test)", tests));
    for (auto& v : r) {
      if (!v.is_boolean() && !v.is_number_integer()) fail(at, "\"matrix\" entries must be 0/1 or true/false");
      m.pass.push_back(v.is_boolean() ? v.get<bool>() : v.get<int>() != 0);
    }
  }
  return m;
}

nlohmann::json passk_summary(const std::map<std::string, ProblemCounts>& counts, const std::vector<int64_t>& ks) {
  int64_t min_n = counts.empty() ? 0 : INT64_MAX;
  for (auto& [id, pc] : counts) min_n = std::min(min_n, pc.n);
  std::vector<int64_t> usable, skipped;
  for (int64_t k : ks) (k <= min_n ? usable : skipped).push_back(k);
  nlohmann::json s = nlohmann::json::object();
  if (!usable.empty())
    for (auto& [k, v] : mean_pass_at_k(counts, usable)) s["pass@" + std::to_string(k)] = v;
  if (!skipped.empty()) s["skipped_k"] = skipped;
  nlohmann::json tasks = nlohmann::json::object();
  for (auto& [id, pc] : counts) {
    nlohmann::json t = {{"n", pc.n}, {"c", pc.c}};
    for (int64_t k : ks)
      if (k <= pc.n) t["pass@" + std::to_string(k)] = pass_at_k(pc.n, pc.c, k);
    tasks[id] = std::move(t);
  }
  s["tasks"] = std::move(tasks);
  return s;
}

}  // namespace prefopt
