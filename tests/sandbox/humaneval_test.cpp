// Real benchmark code in the sandbox (../shared/data/code):
// - HumanEval: all 164 canonical solutions PASS (prompt + canonical_solution +
//   test + check(entry_point)), and broken variants FAIL (the body replaced by
//   `return None` for all 164, by `pass` for every 4th);
// - HumanEval+: the canonical solution on its base inputs prints the same
//   outputs in the sandbox as plain python3 without isolation (parity), for
//   every 8th task;
// - MBPP+: the 378 canonical solutions pass their `assertion`s except the
//   three that return a re.Match object (not plain data: FAILED), and a broken
//   one (the function redefined to return None) fails, for every 3rd task;
// - HumanEval+ (Mini by default): the canonical solution, called through the
//   harness's proxy, answers every base and plus input as the same solution
//   run inside the tests does.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/jsonl.h"
#include "sandbox/sandbox.h"
#include "test_util.h"

using namespace prefopt;

namespace {

const std::string kData = std::string(PREFOPT_SHARED_DATA) + "/code/";

SandboxPool& pool() {
  static SandboxPool p(2, [] {
    Limits l;
    l.wall_seconds = 20;  // generous: the machine is shared while tests run
    l.cpu_seconds = 20;
    return l;
  }());
  return p;
}

std::string verdicts_of(const std::vector<RunResult>& rs, const std::vector<std::string>& ids, Verdict want) {
  std::string bad;
  for (size_t i = 0; i < rs.size(); ++i)
    if (rs[i].verdict != want)
      bad += ids[i] + "=" + to_string(rs[i].verdict) + " (" + rs[i].detail + ": " + rs[i].stderr_text.substr(0, 300) +
             ")\n";
  return bad;
}

}  // namespace

TEST(SandboxHumanEval, CanonicalSolutionsPassBrokenOnesFail) {
  auto rows = read_jsonl(kData + "HumanEval.jsonl.gz");
  ASSERT_EQ(rows.size(), 164u);
  std::vector<TestJob> good, none, pass_body;
  std::vector<std::string> ids, pass_ids;
  for (auto& r : rows) {
    const std::string prompt = r["prompt"], sol = r["canonical_solution"], test = r["test"], ep = r["entry_point"];
    const std::string tests = "\n" + test + "\ncheck(" + ep + ")\n";
    ids.push_back(r["task_id"]);
    good.push_back({prompt + sol, tests});
    none.push_back({prompt + "    return None\n", tests});
    if (ids.size() % 4 == 1) {  // a second broken variant for every 4th task
      pass_body.push_back({prompt + "    pass\n", tests});
      pass_ids.push_back(ids.back());
    }
  }
  auto rg = pool().run_tests_all(good);
  EXPECT_EQ(verdicts_of(rg, ids, Verdict::PASSED), "");
  for (auto& r : rg) EXPECT_TRUE(r.secret_ok);
  auto rn = pool().run_tests_all(none);
  EXPECT_EQ(verdicts_of(rn, ids, Verdict::FAILED), "");
  auto rp = pool().run_tests_all(pass_body);
  EXPECT_EQ(verdicts_of(rp, pass_ids, Verdict::FAILED), "");
  EXPECT_TRUE(prefopt::testing::run_survivors().empty());
}

TEST(SandboxHumanEval, PlusBaseInputsMatchPlainPython) {
  auto rows = read_jsonl(kData + "HumanEvalPlus.jsonl.gz");
  ASSERT_EQ(rows.size(), 164u);
  std::vector<std::string> programs, ids;
  for (size_t i = 0; i < rows.size(); i += 8) {
    const json& r = rows[i];
    const json& inputs = r["base_input"];
    ASSERT_TRUE(inputs.is_array()) << r["task_id"];
    programs.push_back(r["prompt"].get<std::string>() + r["canonical_solution"].get<std::string>() +
                       "\nimport json\nfor args in json.loads(" + json(inputs.dump()).dump() +
                       "):\n    print(repr(" + r["entry_point"].get<std::string>() + "(*args)))\n");
    ids.push_back(r["task_id"]);
  }
  auto rs = pool().run_all(programs);
  for (size_t i = 0; i < rs.size(); ++i) {
    ASSERT_EQ(rs[i].verdict, Verdict::PASSED) << ids[i] << ": " << rs[i].stderr_text;
    ASSERT_FALSE(rs[i].stdout_truncated) << ids[i];
    int rc = -1;
    std::string plain = prefopt::testing::plain_python(programs[i], &rc);
    EXPECT_EQ(rc, 0) << ids[i];
    EXPECT_EQ(rs[i].stdout_text, plain) << ids[i];
    EXPECT_FALSE(plain.empty()) << ids[i];
  }
}

TEST(SandboxHumanEval, MbppPlusAssertions) {
  std::vector<json> rows;
  std::istringstream in(prefopt::testing::python_json_to_json(read_maybe_gz(kData + "MbppPlus.jsonl.gz")));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 378u);
  std::vector<TestJob> good, broken;
  std::vector<std::string> ids, broken_ids;
  for (auto& r : rows) {
    const std::string sol = r["canonical_solution"], assertion = r["assertion"], ep = r["entry_point"];
    // Mbpp/120's assertion calls math.isclose without importing math (its
    // solution does not import it either), so the tests get the import.
    const std::string tests = "import math\n" + assertion;
    ids.push_back(r["task_id"]);
    good.push_back({sol, tests, {ep}});  // one task names its function `sum`, a builtin
    // Same name, wrong body, defined after the solution so it wins (every 3rd task).
    if (ids.size() % 3 == 1) {
      broken.push_back({sol + "\ndef " + ep + "(*args, **kwargs):\n    return None\n", tests, {ep}});
      broken_ids.push_back(ids.back());
    }
  }
  auto rg = pool().run_tests_all(good);
  // Three canonical solutions return a re.Match object (their tests assert
  // its truth value): it crosses as its pattern, string and spans, and the
  // harness finds the same Match again with its own re, so they pass too.
  // Mbpp/88's Counter crosses as the dict it compares as.
  std::string bad;
  for (size_t i = 0; i < rg.size(); ++i)
    if (rg[i].verdict != Verdict::PASSED)
      bad += ids[i] + "=" + to_string(rg[i].verdict) + " (" + rg[i].detail + ": " + rg[i].stderr_text.substr(0, 300) + ")\n";
  EXPECT_EQ(bad, "");
  auto rb = pool().run_tests_all(broken);
  EXPECT_EQ(verdicts_of(rb, broken_ids, Verdict::FAILED), "");
}

// HumanEval+ through the proxy: for every task, the canonical solution (the
// candidate, in its own process) must give the same answer on every base and
// plus input as the same solution run inside the tests (the reference, in the
// harness). A broken candidate (off by one on ints, None otherwise) fails.
// HumanEvalPlus-Mini by default; PREFOPT_SANDBOX_FULL_PLUS=1 runs the full
// HumanEval+ input set (124k inputs, minutes).
TEST(SandboxHumanEval, PlusInputsThroughTheProxy) {
  const char* full = std::getenv("PREFOPT_SANDBOX_FULL_PLUS");
  const bool all = full && std::string(full) == "1";
  auto rows = read_jsonl(kData + (all ? "HumanEvalPlus.jsonl.gz" : "HumanEvalPlus-Mini.jsonl.gz"));
  ASSERT_EQ(rows.size(), 164u);
  std::vector<TestJob> good, broken;
  std::vector<std::string> ids, broken_ids;
  size_t n_inputs = 0;
  for (auto& r : rows) {
    const std::string src = r["prompt"].get<std::string>() + r["canonical_solution"].get<std::string>();
    const std::string ep = r["entry_point"];
    json inputs = r["base_input"];
    for (auto& x : r["plus_input"]) inputs.push_back(x);
    n_inputs += inputs.size();
    // An input the reference raises on (nlohmann reads integers past 64 bits
    // as floats: HumanEval/79, 108, 131) must raise the same type through
    // the proxy.
    const std::string tests =
        "import copy, json\n_ref = {}\nexec(" + json(src).dump() + ", _ref)\n_inputs = json.loads(" +
        json(inputs.dump()).dump() +
        ")\ndef _outcome(f, args):\n    try:\n        return ('ok', f(*copy.deepcopy(args)))\n"
        "    except Exception as e:\n        return ('raised', type(e).__name__)\n"
        "for _i, _args in enumerate(_inputs):\n    _want = _outcome(_ref[" + json(ep).dump() + "], _args)\n"
        "    _got = _outcome(" + ep + ", _args)\n"
        "    assert _got == _want or repr(_got) == repr(_want), (_i, _got, _want)\n"
        "print(len(_inputs))\n";
    ids.push_back(r["task_id"]);
    good.push_back({src, tests});
    if (ids.size() % 4 == 1) {
      broken.push_back({src + "\n_orig = " + ep + "\ndef " + ep +
                            "(*a, **k):\n    v = _orig(*a, **k)\n    return v + 1 if type(v) is int else None\n",
                        tests});
      broken_ids.push_back(ids.back());
    }
  }
  EXPECT_GT(n_inputs, all ? 100000u : 2000u);
  Limits l = pool().limits();
  if (all) l.wall_seconds = l.cpu_seconds = 120;
  // The full set runs one task at a time, each with a long limit.
  std::vector<RunResult> rg;
  if (all)
    for (auto& j : good) rg.push_back(pool().run_tests(j.code, j.test_code, l));
  else
    rg = pool().run_tests_all(good);
  EXPECT_EQ(verdicts_of(rg, ids, Verdict::PASSED), "");
  for (size_t i = 0; i < rg.size(); ++i)
    EXPECT_EQ(rg[i].stdout_text, std::to_string(rows[i]["base_input"].size() + rows[i]["plus_input"].size()) + "\n")
        << ids[i];
  if (!all) {
    EXPECT_EQ(verdicts_of(pool().run_tests_all(broken), broken_ids, Verdict::FAILED), "");
  }
}
