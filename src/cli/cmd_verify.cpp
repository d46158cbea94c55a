// prefopt grade --kind gsm8k --input F.jsonl
// prefopt passk RESULTS.jsonl [MORE.jsonl ...]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "verify/math_grader.h"
#include "verify/passk.h"

namespace prefopt::cli {

static void run_grade(const std::string& kind, const std::string& input) {
  if (kind != "gsm8k")
    fail("--kind", "unsupported kind \"" + kind + "\"", "supported now: gsm8k (MATH-style grading is not built yet)");
  int counts[3] = {0, 0, 0};
  for_each_jsonl(input, [&](const json& row, size_t line) {
    const json& pred = require_field(row, "prediction", input, line);
    const json& ans = require_field(row, "answer", input, line);
    if (!pred.is_string()) fail(where(input, line), "\"prediction\" must be a string");
    std::string gold = ans.is_string() ? ans.get<std::string>() : ans.dump();
    auto g = grade_gsm8k(pred.get<std::string>(), gold);
    json out = row;
    out["verdict"] = to_string(g.grade);
    out["extracted"] = g.extracted;
    counts[static_cast<int>(g.grade)]++;
    std::printf("%s\n", out.dump().c_str());
  });
  info("graded {}: {} CORRECT, {} INCORRECT, {} UNGRADABLE", input, counts[0], counts[1], counts[2]);
}

// Problem id: task_id, problem_id or prompt_id; success: "passed" true or
// "verdict" PASSED / CORRECT.
static std::map<std::string, ProblemCounts> read_results(const std::string& path) {
  std::map<std::string, ProblemCounts> m;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    std::string id;
    for (const char* k : {"task_id", "problem_id", "prompt_id", "prompt_index"})
      if (row.contains(k)) {
        id = row[k].is_string() ? row[k].get<std::string>() : row[k].dump();
        break;
      }
    if (id.empty())
      fail(where(path, line), "no problem id", "each line needs task_id, problem_id, prompt_id or prompt_index");
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
  return m;
}

static void run_passk(const std::vector<std::string>& files) {
  std::vector<std::map<int64_t, double>> curves;
  int64_t nmin = INT64_MAX;
  std::vector<std::map<std::string, ProblemCounts>> all;
  for (auto& f : files) {
    all.push_back(read_results(f));
    for (auto& [id, pc] : all.back()) nmin = std::min(nmin, pc.n);
  }
  auto ks = pass_at_k_grid(nmin);
  std::printf("%8s", "k");
  for (auto& f : files) std::printf("  %s", f.c_str());
  std::printf("\n");
  for (auto& m : all) curves.push_back(mean_pass_at_k(m, ks));
  for (int64_t k : ks) {
    std::printf("%8lld", static_cast<long long>(k));
    for (auto& c : curves) std::printf("  %.4f", c[k]);
    std::printf("\n");
  }
}

void register_verify(CLI::App& app) {
  auto* g = app.add_subcommand("grade", "Grade math answers: adds verdict (CORRECT/INCORRECT/UNGRADABLE) and extracted");
  auto kind = std::make_shared<std::string>("gsm8k");
  auto input = std::make_shared<std::string>();
  g->add_option("--kind", *kind, "gsm8k");
  g->add_option("--input", *input, "JSONL with prediction and answer")->required();
  g->callback([=] { run_grade(*kind, *input); });

  auto* p = app.add_subcommand("passk", "Unbiased pass@k table (k = 1, 2, 4, ..., n) for one or more result files");
  auto files = std::make_shared<std::vector<std::string>>();
  p->add_option("results", *files, "JSONL files with a problem id and passed/verdict per sample")->required();
  p->callback([=] { run_passk(*files); });
}

}  // namespace prefopt::cli
