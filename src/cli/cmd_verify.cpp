// prefopt grade --kind gsm8k|math --input F.jsonl [--output G.jsonl]
// prefopt passk RESULTS.jsonl [MORE.jsonl ...] [--out PREFIX]
// prefopt pairs --kind random|best-worst|dstc --input F.jsonl [--output P.jsonl] [--kto-output K.jsonl]
// Input fields of each command: docs/graders.md.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "verify/dstc.h"
#ifdef PREFOPT_HAVE_SANDBOX
#include "verify/dstc_sandbox.h"
#endif
#include "verify/math_grader.h"
#include "verify/pairs.h"
#include "verify/passk.h"
#include "verify/passk_plot.h"
#include "verify/results_io.h"

namespace prefopt::cli {

namespace {

// Lines go to an atomic file when a path is given, else to stdout.
class LineSink {
 public:
  explicit LineSink(const std::string& path) {
    if (!path.empty()) file_ = std::make_unique<AtomicFile>(path);
  }
  void line(const json& j) {
    std::string s = j.dump() + "\n";
    if (file_) file_->write(s);
    else std::fwrite(s.data(), 1, s.size(), stdout);
  }
  void commit() {
    if (file_) file_->commit();
    else std::fflush(stdout);
  }

 private:
  std::unique_ptr<AtomicFile> file_;
};

// ---- grade -----------------------------------------------------------------

enum class GradeKind { GSM8K, MATH };
const std::map<std::string, GradeKind> kGradeKinds{{"gsm8k", GradeKind::GSM8K}, {"math", GradeKind::MATH}};

GradeResult grade_one(GradeKind kind, const std::string& pred, const std::string& gold) {
  switch (kind) {
    case GradeKind::GSM8K: return grade_gsm8k(pred, gold);
    case GradeKind::MATH: return grade_math(pred, gold);
  }
  return {};
}

void run_grade(GradeKind kind, const std::string& input, const std::string& output) {
  int counts[3] = {0, 0, 0};
  LineSink out(output);
  for_each_jsonl(input, [&](const json& row, size_t line) {
    const json& pred = require_field(row, "prediction", input, line);
    const json& ans = require_field(row, "answer", input, line);
    if (!pred.is_string())
      fail(where(input, line), std::string("\"prediction\" must be a string, found ") + pred.type_name(),
           "put the full model response in \"prediction\"");
    std::string gold = ans.is_string() ? ans.get<std::string>() : ans.dump();  // numbers allowed
    auto g = grade_one(kind, pred.get<std::string>(), gold);
    json o = row;
    o["verdict"] = to_string(g.grade);
    o["extracted"] = g.extracted;
    counts[static_cast<int>(g.grade)]++;
    out.line(o);
  });
  out.commit();
  const int n = counts[0] + counts[1] + counts[2];
  info("graded {} rows of {}: {} CORRECT ({:.2f}%), {} INCORRECT, {} UNGRADABLE", n, input, counts[0],
       n ? 100.0 * counts[0] / n : 0.0, counts[1], counts[2]);
}

// ---- passk -----------------------------------------------------------------

std::string base_name(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

void run_passk(const std::vector<std::string>& files, const std::string& prefix) {
  std::vector<std::map<std::string, ProblemCounts>> all;
  int64_t nmin = INT64_MAX;
  for (auto& f : files) {
    all.push_back(read_results(f));
    for (auto& [id, pc] : all.back()) nmin = std::min(nmin, pc.n);
  }
  const auto ks = pass_at_k_grid(nmin);
  std::vector<std::map<int64_t, double>> curves;
  for (auto& m : all) curves.push_back(mean_pass_at_k(m, ks));

  std::printf("%8s", "k");
  for (auto& f : files) std::printf("  %s", f.c_str());
  std::printf("\n");
  for (int64_t k : ks) {
    std::printf("%8lld", static_cast<long long>(k));
    for (auto& c : curves) std::printf("  %.4f", c[k]);
    std::printf("\n");
  }
  std::fflush(stdout);
  if (prefix.empty()) return;

  // Per-problem values and means, the picture, and a PNG when a converter exists.
  json summary = json::array();
  std::vector<PassKCurve> plot;
  for (size_t i = 0; i < files.size(); ++i) {
    json problems = json::object();
    for (auto& [id, pc] : all[i]) {
      json pk = json::object();
      for (int64_t k : ks) pk[std::to_string(k)] = pass_at_k(pc.n, pc.c, k);
      problems[id] = {{"n", pc.n}, {"c", pc.c}, {"pass@k", pk}};
    }
    json mean = json::object();
    PassKCurve c{base_name(files[i]), {}};
    for (int64_t k : ks) {
      mean[std::to_string(k)] = curves[i][k];
      c.points.emplace_back(k, curves[i][k]);
    }
    plot.push_back(c);
    summary.push_back({{"file", files[i]}, {"problems", problems}, {"mean", mean}});
  }
  atomic_write(prefix + ".json", summary.dump(1) + "\n");
  atomic_write(prefix + ".svg", passk_svg(plot, "pass@k"));
  std::string tool = svg_to_png(prefix + ".svg", prefix + ".png");
  if (tool.empty())
    info("wrote {0}.json and {0}.svg (no PNG: neither rsvg-convert nor ImageMagick convert could convert it)", prefix);
  else
    info("wrote {0}.json, {0}.svg and {0}.png (via {1})", prefix, tool);
}

// ---- pairs -----------------------------------------------------------------

enum class PairKind { RANDOM, BEST_WORST, DSTC };
const std::map<std::string, PairKind> kPairKinds{
    {"random", PairKind::RANDOM}, {"best-worst", PairKind::BEST_WORST}, {"dstc", PairKind::DSTC}};
const std::map<std::string, DstcOrder> kOrders{{"code-first", DstcOrder::CODE_FIRST},
                                               {"test-first", DstcOrder::TEST_FIRST}};

struct PairOptions {
  PairKind kind = PairKind::RANDOM;
  std::string input, output, kto_output;
  uint64_t seed = 0;
  int max_pairs = 1;
  double min_margin = 0;
  DstcOrder order = DstcOrder::CODE_FIRST;
  int workers = 2;
  double timeout = 10;
};

// One line per problem: prompt, codes [..], tests [..], and matrix [[..]]
// (codes x tests); without a matrix the codes run against the tests in the sandbox.
void run_dstc(const PairOptions& o, LineSink& pairs, LineSink* kto, int* n_prompts, int* n_pairs) {
  CodeTestRunner runner;  // the sandbox pool, started at the first row without a matrix
  for_each_jsonl(o.input, [&](const json& row, size_t line) {
    ++*n_prompts;
    const json& prompt = require_field(row, "prompt", o.input, line);
    auto codes = string_list(row, "codes", o.input, line);
    auto tests = string_list(row, "tests", o.input, line);
    ExecMatrix m;
    if (row.contains("matrix")) {
      m = matrix_from_json(row["matrix"], codes.size(), tests.size(), where(o.input, line));
    } else {
#ifdef PREFOPT_HAVE_SANDBOX
      if (!runner) {
        Limits lim;
        lim.wall_seconds = lim.cpu_seconds = o.timeout;
        runner = sandbox_code_test_runner(o.workers, lim);
      }
      m = dstc_execute(codes, tests, runner);
#else
      fail(where(o.input, line), "no \"matrix\"",
           "running codes against tests needs the sandbox floor (src/sandbox), which this build does not have; "
           "give \"matrix\": [[1,0,...], ...] with one row per code and one 0/1 per test");
#endif
    }
    auto c = dstc_select(m);
    if (!c) return;
    ++*n_pairs;
    PreferencePair p{prompt_key(row), prompt, dstc_response(codes[c->chosen_code], tests[c->chosen_test], o.order),
                     dstc_response(codes[c->rejected_code], tests[c->rejected_test], o.order)};
    json pj = to_json(p);
    pj["dstc"] = {{"chosen_code", c->chosen_code},
                  {"chosen_test", c->chosen_test},
                  {"rejected_code", c->rejected_code},
                  {"rejected_test", c->rejected_test}};
    pairs.line(pj);
    if (kto) {
      kto->line(to_json(UnpairedRow{p.id, prompt, p.chosen, true}));
      kto->line(to_json(UnpairedRow{p.id, prompt, p.rejected, false}));
    }
  });
}

void run_pairs(const PairOptions& o) {
  LineSink pairs(o.output);
  std::unique_ptr<LineSink> kto;
  if (!o.kto_output.empty()) kto = std::make_unique<LineSink>(o.kto_output);
  int n_prompts = 0, n_pairs = 0;
  if (o.kind == PairKind::DSTC) {
    run_dstc(o, pairs, kto.get(), &n_prompts, &n_pairs);
  } else {
    auto groups = read_graded_samples(o.input);
    n_prompts = static_cast<int>(groups.size());
    std::vector<PreferencePair> ps;
    switch (o.kind) {
      case PairKind::RANDOM: ps = random_correct_incorrect_pairs(groups, o.seed, o.max_pairs); break;
      case PairKind::BEST_WORST: ps = best_worst_pairs(groups, o.min_margin); break;
      case PairKind::DSTC: break;
    }
    for (auto& p : ps) pairs.line(to_json(p));
    n_pairs = static_cast<int>(ps.size());
    if (kto)
      for (auto& r : unpaired_rows(groups)) kto->line(to_json(r));
  }
  pairs.commit();
  if (kto) kto->commit();
  info("{} prompts -> {} pairs ({} prompts gave none)", n_prompts, n_pairs, n_prompts - n_pairs);
}

}  // namespace

void register_verify(CLI::App& app) {
  {
    auto* g = app.add_subcommand("grade", "Grade math answers: adds verdict (CORRECT/INCORRECT/UNGRADABLE) and extracted");
    auto kind = std::make_shared<GradeKind>(GradeKind::GSM8K);
    auto input = std::make_shared<std::string>();
    auto output = std::make_shared<std::string>();
    g->add_option("--kind", *kind, "gsm8k (#### N / last number) or math (last \\boxed{}, LaTeX-aware)")
        ->transform(CLI::CheckedTransformer(kGradeKinds, CLI::ignore_case));
    g->add_option("--input", *input, "JSONL: prediction (full response), answer (gold)")->required();
    g->add_option("--output", *output, "write the graded JSONL here (default: stdout)");
    g->callback([=] { run_grade(*kind, *input, *output); });
  }
  {
    auto* p = app.add_subcommand("passk", "Unbiased pass@k table (k = 1, 2, 4, ..., n) and curve for result files");
    auto files = std::make_shared<std::vector<std::string>>();
    auto prefix = std::make_shared<std::string>("passk");
    p->add_option("results", *files, "JSONL: task_id|problem_id|prompt_id, passed (bool) or verdict")->required();
    p->add_option("--out", *prefix, "write PREFIX.json (per problem), PREFIX.svg (+ .png); '' for none")
        ->capture_default_str();
    p->callback([=] { run_passk(*files, *prefix); });
  }
  {
    auto* p = app.add_subcommand("pairs", "Preference pairs (TRL JSONL) from graded samples or DSTC matrices");
    auto o = std::make_shared<PairOptions>();
    p->add_option("--kind", o->kind, "random (correct vs incorrect), best-worst (by score), dstc")
        ->transform(CLI::CheckedTransformer(kPairKinds, CLI::ignore_case))
        ->required();
    p->add_option("--input", o->input, "JSONL (fields: docs/graders.md)")->required();
    p->add_option("--output", o->output, "pairs JSONL {prompt, chosen, rejected} (default: stdout)");
    p->add_option("--kto-output", o->kto_output, "also write unpaired rows {prompt, completion, label}");
    p->add_option("--seed", o->seed, "random: seed")->capture_default_str();
    p->add_option("--max-pairs", o->max_pairs, "random: pairs per prompt")->capture_default_str();
    p->add_option("--min-margin", o->min_margin, "best-worst: skip when best - worst <= margin")->capture_default_str();
    p->add_option("--workers", o->workers, "dstc: concurrent sandbox runs")->capture_default_str();
    p->add_option("--timeout", o->timeout, "dstc: seconds per run (wall and CPU)")->capture_default_str();
    p->add_option("--order", o->order, "dstc: code-first or test-first")
        ->transform(CLI::CheckedTransformer(kOrders, CLI::ignore_case));
    p->callback([o] { run_pairs(*o); });
  }
}

}  // namespace prefopt::cli
