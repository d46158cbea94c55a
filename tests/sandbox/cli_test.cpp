// prefopt eval-code as a user calls it: HumanEval problems (.jsonl.gz), three
// completions per task (canonical, broken, endless), results in input order
// with the completion's own fields kept, pass@k against hand arithmetic, and
// file:line errors for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_cli.h"
#include "core/fs.h"
#include "core/jsonl.h"

using nlohmann::json;
using prefopt::testing::prefopt_exe;
using prefopt::testing::run_prefopt;

namespace {
const std::string kProblems = std::string(PREFOPT_SHARED_DATA) + "/code/HumanEval.jsonl.gz";
const std::string kTmp = "/tmp/prefopt_sbx_cli_" + std::to_string(getpid());
}  // namespace

TEST(SandboxCli, EvalCodeHumanEval) {
  ASSERT_TRUE(prefopt::file_exists(prefopt_exe())) << "prefopt not built: " << prefopt_exe();
  auto problems = prefopt::read_jsonl(kProblems);
  std::string comps;
  std::vector<std::string> expect;
  for (int t = 0; t < 3; ++t) {
    const json& p = problems[t];
    const std::string id = p["task_id"];
    const json rows[] = {{{"task_id", id}, {"completion", p["canonical_solution"]}, {"sample", 0}},
                         {{"task_id", id}, {"completion", "    return None\n"}, {"sample", 1}},
                         {{"task_id", id}, {"completion", "    while True:\n        pass\n"}, {"sample", 2}}};
    for (auto& r : rows) comps += r.dump() + "\n";
    expect.insert(expect.end(), {"PASSED", "FAILED", "TIMEOUT"});
  }
  prefopt::atomic_write(kTmp + "_c.jsonl", comps);
  int rc = -1;
  std::string out = run_prefopt("eval-code --problems " + kProblems + " --completions " + kTmp +
                                    "_c.jsonl --timeout 2 --workers 2 --k 1,2,3,10 --summary " + kTmp + "_s.json",
                                &rc);
  ASSERT_EQ(rc, 0) << out;
  std::istringstream in(out);
  std::string line;
  size_t i = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    ASSERT_LT(i, expect.size());
    EXPECT_EQ(j["verdict"], expect[i]) << line;
    EXPECT_EQ(j["passed"], expect[i] == "PASSED");
    EXPECT_EQ(j["sample"], static_cast<int>(i % 3)) << "input order and own fields kept";
    EXPECT_EQ(j["task_id"], problems[i / 3]["task_id"]);
    EXPECT_TRUE(j["output"].is_string());
    EXPECT_EQ(j["isolation"].get<std::string>().rfind("full", 0), 0u) << j["isolation"];
    if (expect[i] == "FAILED") {
      EXPECT_NE(j["output"].get<std::string>().find("AssertionError"), std::string::npos);
    }
    ++i;
  }
  EXPECT_EQ(i, expect.size());
  json s = json::parse(prefopt::read_file(kTmp + "_s.json"));
  // n = 3, c = 1 per task: pass@1 = 1/3, pass@2 = 1 - C(2,2)/C(3,2) = 2/3, pass@3 = 1.
  EXPECT_NEAR(s["pass@1"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(s["pass@2"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(s["pass@3"].get<double>(), 1.0, 1e-12);
  EXPECT_FALSE(s.contains("pass@10"));
  EXPECT_EQ(s["skipped_k"], json::array({10}));
  EXPECT_EQ(s["tasks"]["HumanEval/1"]["n"], 3);
  EXPECT_EQ(s["tasks"]["HumanEval/1"]["c"], 1);
  EXPECT_EQ(s["verdicts"]["TIMEOUT"], 3);
  EXPECT_EQ(s["completions"], 9);
}

TEST(SandboxCli, BadInputNamesFileAndLine) {
  ASSERT_TRUE(prefopt::file_exists(prefopt_exe())) << "prefopt not built: " << prefopt_exe();
  prefopt::atomic_write(kTmp + "_bad1.jsonl", "{\"task_id\":\"HumanEval/0\",\"completion\":\"    pass\\n\"}\n"
                                              "{\"task_id\":\"HumanEval/9999\",\"completion\":\"\"}\n");
  int rc = 0;
  std::string err = run_prefopt("eval-code --problems " + kProblems + " --completions " + kTmp + "_bad1.jsonl",
                                &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find(kTmp + "_bad1.jsonl:2"), std::string::npos) << err;
  EXPECT_NE(err.find("unknown task_id"), std::string::npos) << err;
  EXPECT_NE(err.find("HINT"), std::string::npos) << err;
  prefopt::atomic_write(kTmp + "_bad2.jsonl", "{\"task_id\":\"HumanEval/0\"}\n");
  err = run_prefopt("eval-code --problems " + kProblems + " --completions " + kTmp + "_bad2.jsonl", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find(kTmp + "_bad2.jsonl:1"), std::string::npos) << err;
  EXPECT_NE(err.find("completion"), std::string::npos) << err;
  prefopt::atomic_write(kTmp + "_bad3.jsonl", "{\"task_id\":\"x\",\"prompt\":\"\",\"test\":\"\"}\n");
  err = run_prefopt("eval-code --problems " + kTmp + "_bad3.jsonl --completions " + kTmp + "_bad2.jsonl", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find(kTmp + "_bad3.jsonl:1"), std::string::npos) << err;
  EXPECT_NE(err.find("entry_point"), std::string::npos) << err;
}

// eval-code judges completions aimed at the harness as FAILED and says why,
// while the canonical solution of the same task passes.
TEST(SandboxCli, EvalCodeRewardHacks) {
  if (!prefopt::file_exists(prefopt_exe())) GTEST_SKIP() << "prefopt not built";
  auto problems = prefopt::read_jsonl(kProblems);
  const json& p = problems[0];  // HumanEval/0 has_close_elements: returns a bool
  const std::string id = p["task_id"];
  const std::string hacks[] = {
      // an object equal to everything
      "    class Yes:\n        def __eq__(self, o):\n            return True\n        def __bool__(self):\n"
      "            return True\n    return Yes()\n",
      // an int subclass (bool's base) equal to everything
      "    class I(int):\n        def __eq__(self, o):\n            return True\n        __hash__ = int.__hash__\n"
      "    return I(0)\n",
      // the secret is not reachable: exit 0 after forging lines on every fd
      "    import os\n    for fd in range(1024):\n        try:\n            os.write(fd, b'PASS ' + b'0' * 32 + b'\\n')\n"
      "        except OSError:\n            pass\n    os._exit(0)\n",
  };
  std::string comps = json{{"task_id", id}, {"completion", p["canonical_solution"]}}.dump() + "\n";
  for (const std::string& h : hacks) comps += json{{"task_id", id}, {"completion", h}}.dump() + "\n";
  prefopt::atomic_write(kTmp + "_hack.jsonl", comps);
  int rc = -1;
  std::string out = run_prefopt("eval-code --problems " + kProblems + " --completions " + kTmp +
                                    "_hack.jsonl --timeout 5 --workers 2 --k 1 --summary " + kTmp + "_hs.json",
                                &rc);
  ASSERT_EQ(rc, 0) << out;
  std::istringstream in(out);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 4u) << out;
  EXPECT_EQ(rows[0]["verdict"], "PASSED") << rows[0].dump();
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_EQ(rows[i]["verdict"], "FAILED") << rows[i].dump();
  EXPECT_NE(rows[1]["detail"].get<std::string>().find("not plain data"), std::string::npos) << rows[1].dump();
  EXPECT_NE(rows[2]["detail"].get<std::string>().find("not plain data"), std::string::npos) << rows[2].dump();
  EXPECT_NE(rows[3]["detail"].get<std::string>().find("lost"), std::string::npos) << rows[3].dump();
  json s = json::parse(prefopt::read_file(kTmp + "_hs.json"));
  EXPECT_NEAR(s["pass@1"].get<double>(), 0.25, 1e-12);
  prefopt::remove_all(kTmp + "_hack.jsonl");
  prefopt::remove_all(kTmp + "_hs.json");
}
