// prefopt.eval_code: HumanEval-style functional correctness in the sandbox, the
// calls of `prefopt eval-code` (src/cli/cmd_sandbox.cpp): each completion runs as
//   code  = prompt + completion
//   tests = "\n" + test + "\ncheck(" + entry_point + ")\n"
// on a SandboxPool, and pass@k per task and overall uses the unbiased estimator
// (SANDBOX_ERROR runs are left out of n). The GIL is released while runs execute.
#include <pybind11/stl.h>

#include <algorithm>
#include <map>
#include <thread>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "sandbox/sandbox.h"
#include "verify/passk.h"
#include "verify/results_io.h"

namespace prefopt::py_bind {

namespace {

using json = nlohmann::json;

struct Problem {
  std::string prompt, test, entry_point;
};

// Rows of a JSONL(.gz) path or a list of dicts, each with the place errors name.
// `name` is the argument: errors say "eval_code(name[i])" or "file:line".
std::vector<std::pair<json, std::string>> rows_of(py::handle h, const std::string& name) {
  const std::string arg = "eval_code(" + name + ")";
  std::vector<std::pair<json, std::string>> rows;
  if (is_path_like(h)) {
    const std::string path = to_path(h, arg);
    for_each_jsonl(path, [&](const json& row, size_t line) { rows.emplace_back(row, where(path, line)); });
    return rows;
  }
  if (!py::isinstance<py::list>(h) && !py::isinstance<py::tuple>(h))
    fail(arg, "expected a JSONL path or a list of dicts", "HumanEval's fields, one dict per row");
  size_t i = 0;
  for (auto x : h) {
    const std::string w = fmt::format("eval_code({}[{}])", name, i++);
    json j = json(to_json(x, w));
    if (!j.is_object()) fail(w, "expected a dict", "HumanEval's fields, one dict per row");
    rows.emplace_back(std::move(j), w);
  }
  return rows;
}

std::string string_field(const json& row, const char* key, const std::string& w) {
  if (!row.contains(key))
    fail(w, fmt::format("missing field \"{}\"", key),
         "use HumanEval's fields: task_id, prompt, test, entry_point (problems); task_id, completion (completions)");
  const json& v = row[key];
  if (!v.is_string())
    fail(w, fmt::format("field \"{}\" must be a string, found {}", key, v.type_name()),
         "use HumanEval's fields: task_id, prompt, test, entry_point (problems); task_id, completion (completions)");
  return v.get<std::string>();
}

py::object eval_code(py::object problems_arg, py::object completions_arg, int workers_arg, double timeout,
                     std::vector<int64_t> ks, int64_t max_output) {
  if (!(timeout > 0)) fail("eval_code(timeout)", "expected seconds > 0", "e.g. timeout=10");
  for (int64_t k : ks)
    if (k < 1) fail("eval_code(k)", fmt::format("{} is not a positive integer", k), "e.g. k=[1, 10, 100]");
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());

  std::map<std::string, Problem> problems;
  for (auto& [row, w] : rows_of(problems_arg, "problems")) {
    std::string id = string_field(row, "task_id", w);
    Problem p{string_field(row, "prompt", w), string_field(row, "test", w), string_field(row, "entry_point", w)};
    if (!problems.emplace(id, std::move(p)).second)
      fail(w, "duplicate task_id \"" + id + "\"", "each problem must appear once");
  }
  if (problems.empty())
    fail("eval_code(problems)", "no problems found", "one dict per problem with task_id, prompt, test, entry_point");
  std::vector<json> rows;
  std::vector<TestJob> jobs;
  std::vector<std::string> task_of;
  for (auto& [row, w] : rows_of(completions_arg, "completions")) {
    std::string id = string_field(row, "task_id", w);
    auto it = problems.find(id);
    if (it == problems.end())
      fail(w, "unknown task_id \"" + id + "\"", "every completion's task_id must name a problem");
    std::string completion = string_field(row, "completion", w);
    const Problem& p = it->second;
    jobs.push_back({p.prompt + completion, "\n" + p.test + "\ncheck(" + p.entry_point + ")\n", {p.entry_point}});
    rows.push_back(row);
    task_of.push_back(id);
  }

  json results = json::array(), summary;
  {
    py::gil_scoped_release nogil;
    Limits lim;
    lim.wall_seconds = timeout;
    lim.cpu_seconds = timeout;
    lim.output_bytes = max_output;
    const int workers = workers_arg > 0 ? workers_arg : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<RunResult> res;
    if (!jobs.empty()) {
      SandboxPool pool(workers, lim);
      res = pool.run_tests_all(jobs);
    }
    std::map<std::string, ProblemCounts> counts;
    std::map<std::string, int64_t> verdicts;
    std::string isolation_seen;
    for (size_t i = 0; i < res.size(); ++i) {
      const RunResult& r = res[i];
      json out = rows[i];
      add_result_fields(out, r);
      results.push_back(std::move(out));
      verdicts[to_string(r.verdict)]++;
      if (counts_against_model(r.verdict)) {
        ProblemCounts& pc = counts[task_of[i]];
        pc.n++;
        pc.c += r.verdict == Verdict::PASSED ? 1 : 0;
      }
      if (isolation_seen.empty()) isolation_seen = r.isolation;
    }
    summary["completions"] = jobs.size();
    summary["problems_evaluated"] = counts.size();
    summary["verdicts"] = verdicts;
    summary["isolation"] = isolation_seen.empty() ? isolation_level() : isolation_seen;
    summary["timeout_s"] = timeout;
    summary.update(passk_summary(counts, ks));
    if (verdicts.count("SANDBOX_ERROR"))
      warn("eval_code: {} runs hit SANDBOX_ERROR (infrastructure, left out of pass@k)", verdicts["SANDBOX_ERROR"]);
  }
  py::dict d;
  d["results"] = from_json(results);
  d["summary"] = from_json(summary);
  return std::move(d);
}

}  // namespace

void bind_eval_code(py::module_& m) {
  m.def("eval_code", &eval_code, py::arg("problems"), py::arg("completions"), py::arg("workers") = 0,
        py::arg("timeout") = 10.0, py::arg("k") = std::vector<int64_t>{1, 10, 100}, py::arg("max_output") = 4096,
        R"(Run code completions against their tests in the sandbox (as `prefopt eval-code`).
problems: a JSONL(.gz) path or a list of {"task_id", "prompt", "test", "entry_point"};
completions: a path or a list of {"task_id", "completion"} (several per task allowed).
Returns {"results": [each completion's dict plus "verdict", "passed", "output",
"output_truncated", "detail", "isolation"], "summary": {"completions", "problems_evaluated",
"verdicts", "isolation", "timeout_s", "pass@K"..., "tasks": {task_id: {"n", "c", "pass@K"...}}}}.)");
}

}  // namespace prefopt::py_bind
