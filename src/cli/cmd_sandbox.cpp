// prefopt eval-code --problems P.jsonl --completions C.jsonl [--workers N]
//                   [--timeout S] [--summary FILE] [--k 1,10,100]
// HumanEval-style functional correctness (Chen et al. 2021, openai/human-eval
// evaluate_functional_correctness): each completion runs in the sandbox as
//   code  = prompt + completion
//   tests = "\n" + test + "\ncheck(" + entry_point + ")\n"
// and PASSES only when the tests ran to their end (the sandbox's secret).
// stdout: one JSON line per completion, in input order: its own fields plus
// verdict, passed, output (stdout then stderr, each capped), output_truncated,
// detail, isolation. stderr (or --summary FILE as JSON): pass@k per task and
// overall with the unbiased estimator; SANDBOX_ERROR runs are left out of n.
// Also: prefopt sandbox-info [--json] prints what the machine allows.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "sandbox/sandbox.h"
#include "verify/passk.h"
#include "verify/results_io.h"

namespace prefopt::cli {

namespace {

struct EvalCodeOptions {
  std::string problems, completions, summary, ks = "1,10,100";
  int workers = 0;
  double timeout = 10.0;
  int64_t output_bytes = 4096;
};

struct Problem {
  std::string prompt, test, entry_point;
};

std::string string_field(const json& row, const char* key, const std::string& file, size_t line) {
  const json& v = require_field(row, key, file, line);
  if (!v.is_string())
    fail(where(file, line), fmt::format("field \"{}\" must be a string, found {}", key, v.type_name()),
         "use HumanEval's fields: task_id, prompt, test, entry_point (problems); task_id, completion (completions)");
  return v.get<std::string>();
}

std::vector<int64_t> parse_ks(const std::string& s) {
  std::vector<int64_t> ks;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    try {
      size_t used = 0;
      long long k = std::stoll(tok, &used);
      if (used != tok.size() || k < 1) throw std::invalid_argument(tok);
      ks.push_back(k);
    } catch (const std::exception&) {
      fail("--k", "expected a comma-separated list of positive integers, found \"" + s + "\"", "e.g. --k 1,10,100");
    }
  }
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

void run_eval_code(const EvalCodeOptions& o) {
  const std::vector<int64_t> ks = parse_ks(o.ks);
  if (o.timeout <= 0) fail("--timeout", "expected seconds > 0", "e.g. --timeout 10");
  std::map<std::string, Problem> problems;
  for_each_jsonl(o.problems, [&](const json& row, size_t line) {
    std::string id = string_field(row, "task_id", o.problems, line);
    Problem p{string_field(row, "prompt", o.problems, line), string_field(row, "test", o.problems, line),
              string_field(row, "entry_point", o.problems, line)};
    if (!problems.emplace(id, std::move(p)).second)
      fail(where(o.problems, line), "duplicate task_id \"" + id + "\"", "each problem must appear once");
  });
  if (problems.empty()) fail(o.problems, "no problems found", "one JSON object per line with task_id, prompt, test, entry_point");

  std::vector<json> rows;
  std::vector<TestJob> jobs;
  std::vector<std::string> task_of;
  for_each_jsonl(o.completions, [&](const json& row, size_t line) {
    std::string id = string_field(row, "task_id", o.completions, line);
    auto it = problems.find(id);
    if (it == problems.end())
      fail(where(o.completions, line), "unknown task_id \"" + id + "\"",
           "every completion's task_id must name a problem in " + o.problems);
    std::string completion = string_field(row, "completion", o.completions, line);
    const Problem& p = it->second;
    jobs.push_back({p.prompt + completion, "\n" + p.test + "\ncheck(" + p.entry_point + ")\n", {p.entry_point}});
    rows.push_back(row);
    task_of.push_back(id);
  });

  Limits lim;
  lim.wall_seconds = o.timeout;
  lim.cpu_seconds = o.timeout;
  lim.output_bytes = o.output_bytes;
  const int workers = o.workers > 0 ? o.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  SandboxPool pool(workers, lim);
  info("eval-code: {} completions of {} problems, {} workers, timeout {} s; isolation: {}", jobs.size(),
       problems.size(), workers, o.timeout, isolation_level());

  std::map<std::string, ProblemCounts> counts;
  std::map<std::string, int64_t> verdicts;
  Progress progress("eval-code", static_cast<long>(jobs.size()));
  const size_t chunk = static_cast<size_t>(workers) * 16;
  std::string isolation_seen;
  for (size_t start = 0; start < jobs.size(); start += chunk) {
    const size_t end = std::min(jobs.size(), start + chunk);
    std::vector<TestJob> part(jobs.begin() + start, jobs.begin() + end);
    std::vector<RunResult> res = pool.run_tests_all(part);
    for (size_t i = 0; i < res.size(); ++i) {
      const RunResult& r = res[i];
      json out = rows[start + i];
      add_result_fields(out, r);
      std::string s = out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      std::fwrite(s.data(), 1, s.size(), stdout);
      verdicts[to_string(r.verdict)]++;
      if (counts_against_model(r.verdict)) {
        ProblemCounts& pc = counts[task_of[start + i]];
        pc.n++;
        pc.c += r.verdict == Verdict::PASSED ? 1 : 0;
      }
      if (isolation_seen.empty()) isolation_seen = r.isolation;
    }
    std::fflush(stdout);
    progress.update(static_cast<long>(end));
  }
  progress.finish();

  // pass@k per task and overall, for every requested k that every task reaches.
  json summary;
  summary["completions"] = jobs.size();
  summary["problems_evaluated"] = counts.size();
  summary["verdicts"] = verdicts;
  summary["isolation"] = isolation_seen.empty() ? isolation_level() : isolation_seen;
  summary["timeout_s"] = o.timeout;
  summary.update(passk_summary(counts, ks));
  if (!o.summary.empty()) {
    atomic_write(o.summary, summary.dump(2) + "\n");
    info("eval-code: summary written to {}", o.summary);
  }
  std::string v;
  for (auto& [name, n] : verdicts) v += fmt::format(" {}={}", name, n);
  log_line(fmt::format("eval-code: {} completions, verdicts:{}", jobs.size(), v));
  if (o.summary.empty()) {
    for (auto& [id, pc] : counts) {
      std::string line = fmt::format("  {:<24} n={:<4} c={:<4}", id, pc.n, pc.c);
      for (int64_t k : ks)
        if (k <= pc.n) line += fmt::format(" pass@{}={:.4f}", k, pass_at_k(pc.n, pc.c, k));
      log_line(line);
    }
  }
  std::string line = fmt::format("eval-code: overall over {} problems:", counts.size());
  for (int64_t k : ks)
    if (summary.contains("pass@" + std::to_string(k)))
      line += fmt::format(" pass@{}={:.4f}", k, summary["pass@" + std::to_string(k)].get<double>());
  if (summary.contains("skipped_k")) {
    line += " (skipped k=";
    const auto skipped = summary["skipped_k"].get<std::vector<int64_t>>();
    for (size_t i = 0; i < skipped.size(); ++i) line += (i ? "," : "") + std::to_string(skipped[i]);
    line += ": a problem has fewer samples)";
  }
  log_line(line);
  if (verdicts.count("SANDBOX_ERROR"))
    warn("eval-code: {} runs hit SANDBOX_ERROR (infrastructure, left out of pass@k)", verdicts["SANDBOX_ERROR"]);
}

}  // namespace

void register_sandbox(CLI::App& app) {
  auto o = std::make_shared<EvalCodeOptions>();
  CLI::App* e = app.add_subcommand("eval-code", "Run code completions against their tests in the sandbox (HumanEval format)");
  e->add_option("--problems", o->problems, "JSONL(.gz): task_id, prompt, test, entry_point")->required();
  e->add_option("--completions", o->completions, "JSONL(.gz): task_id, completion (several per task allowed)")
      ->required();
  e->add_option("--workers", o->workers, "concurrent executions (default: number of cores)");
  e->add_option("--timeout", o->timeout, "wall-clock and CPU seconds per completion")->capture_default_str();
  e->add_option("--summary", o->summary, "write pass@k per task and overall as JSON here (else a table on stderr)");
  e->add_option("--k", o->ks, "k values for pass@k")->capture_default_str();
  e->add_option("--max-output", o->output_bytes, "bytes of stdout and of stderr kept per completion")
      ->capture_default_str();
  e->callback([o] { run_eval_code(*o); });

  CLI::App* s = app.add_subcommand("sandbox-info", "Print what isolation this machine allows for code execution");
  auto json = std::make_shared<bool>(false);
  s->add_flag("--json", *json, "print the probe as one JSON object");
  s->callback([json] { std::fputs((*json ? isolation_report_json() : isolation_report()).c_str(), stdout); });
}

}  // namespace prefopt::cli
