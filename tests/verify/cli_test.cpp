// prefopt grade / passk as a user calls them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_cli.h"
#include "core/fs.h"

static std::string run(const std::string& args, int* rc = nullptr) {
  return prefopt::testing::run_prefopt(args, rc);
}

TEST(VerifyCli, GradeAndPassk) {
  ASSERT_TRUE(prefopt::file_exists(prefopt::testing::prefopt_exe())) << "prefopt not built";
  prefopt::atomic_write("/tmp/prefopt_grade.jsonl",
                        "{\"prediction\":\"so 1,200 in all. #### 1,200\",\"answer\":\"x #### 1200\",\"id\":1}\n"
                        "{\"prediction\":\"#### 3\",\"answer\":\"#### 4\"}\n{\"prediction\":\"?\",\"answer\":\"4\"}\n");
  std::istringstream out(run("grade --kind gsm8k --input /tmp/prefopt_grade.jsonl"));
  std::string line;
  std::vector<std::string> v;
  while (std::getline(out, line)) v.push_back(nlohmann::json::parse(line)["verdict"]);
  EXPECT_EQ(v, (std::vector<std::string>{"CORRECT", "INCORRECT", "UNGRADABLE"}));
  prefopt::atomic_write("/tmp/prefopt_grade_bad.jsonl", "{\"prediction\":\"1\"}\n");
  int rc = 0;
  run("grade --kind gsm8k --input /tmp/prefopt_grade_bad.jsonl", &rc);
  EXPECT_EQ(rc, 2);
  // 2 problems, 4 samples each: c = 1 and c = 4 -> pass@1 = (0.25+1)/2, pass@2 = (0.5+1)/2, pass@4 = 1
  std::string rows;
  for (int i = 0; i < 4; ++i) rows += "{\"task_id\":\"a\",\"passed\":" + std::string(i == 0 ? "true" : "false") + "}\n";
  for (int i = 0; i < 4; ++i) rows += "{\"task_id\":\"b\",\"verdict\":\"PASSED\"}\n";
  prefopt::atomic_write("/tmp/prefopt_passk.jsonl", rows);
  auto t = run("passk /tmp/prefopt_passk.jsonl --out ''");
  EXPECT_NE(t.find("       1  0.6250"), std::string::npos) << t;
  EXPECT_NE(t.find("       2  0.7500"), std::string::npos) << t;
  EXPECT_NE(t.find("       4  1.0000"), std::string::npos) << t;
  // eval-code's SANDBOX_ERROR rows (passed: false) are the infrastructure's
  // fault: left out of n, so the table is the same as without them.
  std::string with_errors = rows;
  for (const char* id : {"a", "b"})
    with_errors += "{\"task_id\":\"" + std::string(id) + "\",\"verdict\":\"SANDBOX_ERROR\",\"passed\":false}\n";
  prefopt::atomic_write("/tmp/prefopt_passk_err.jsonl", with_errors);
  auto te = run("passk /tmp/prefopt_passk_err.jsonl --out ''");
  EXPECT_NE(te.find("       1  0.6250"), std::string::npos) << te;
  EXPECT_NE(te.find("       4  1.0000"), std::string::npos) << te;
  EXPECT_EQ(te.find("       5 "), std::string::npos) << te;
}

TEST(VerifyCli, GradeMath) {
  ASSERT_TRUE(prefopt::file_exists(prefopt::testing::prefopt_exe())) << "prefopt not built";
  nlohmann::json rows[] = {
      {{"prediction", "So the answer is $\\boxed{\\dfrac12}$."}, {"answer", "0.5"}},
      {{"prediction", "We get \\boxed{(1,2)}"}, {"answer", "(1,2]"}},
      {{"prediction", "no idea"}, {"answer", "\\frac{1}{2}"}},
      {{"prediction", "The total is \\boxed{900{,}000{,}000} dollars."},
       {"answer", "Hence $\\boxed{900,000,000}$."}},
  };
  std::string in;
  for (auto& r : rows) in += r.dump() + "\n";
  prefopt::atomic_write("/tmp/prefopt_grade_math.jsonl", in);
  int rc = -1;
  run("grade --kind math --input /tmp/prefopt_grade_math.jsonl --output /tmp/prefopt_grade_math.out.jsonl", &rc);
  EXPECT_EQ(rc, 0);
  std::istringstream out(prefopt::read_file("/tmp/prefopt_grade_math.out.jsonl"));
  std::string line;
  std::vector<std::string> v, ex;
  while (std::getline(out, line)) {
    auto j = nlohmann::json::parse(line);
    v.push_back(j["verdict"]);
    ex.push_back(j["extracted"]);
  }
  EXPECT_EQ(v, (std::vector<std::string>{"CORRECT", "INCORRECT", "UNGRADABLE", "CORRECT"}));
  EXPECT_EQ(ex[0], "\\frac{1}{2}");
  // an unknown kind is refused by the option parser
  run("grade --kind physics --input /tmp/prefopt_grade_math.jsonl", &rc);
  EXPECT_NE(rc, 0);
}

TEST(VerifyCli, PasskCurveFiles) {
  ASSERT_TRUE(prefopt::file_exists(prefopt::testing::prefopt_exe())) << "prefopt not built";
  // base: c = 1 of 8 on both problems; trained: c = 4 of 8.
  std::string base, trained;
  for (const char* id : {"p", "q"})
    for (int i = 0; i < 8; ++i) {
      base += nlohmann::json{{"problem_id", id}, {"passed", i == 0}}.dump() + "\n";
      trained += nlohmann::json{{"problem_id", id}, {"verdict", i < 4 ? "CORRECT" : "INCORRECT"}}.dump() + "\n";
    }
  prefopt::atomic_write("/tmp/prefopt_base.jsonl", base);
  prefopt::atomic_write("/tmp/prefopt_trained.jsonl", trained);
  int rc = -1;
  auto t = run("passk /tmp/prefopt_base.jsonl /tmp/prefopt_trained.jsonl --out /tmp/prefopt_curve", &rc);
  EXPECT_EQ(rc, 0);
  // pass@2: base 1 - C(7,2)/C(8,2) = 1 - 21/28 = 0.25; trained 1 - C(4,2)/C(8,2) = 1 - 6/28 = 0.7857
  EXPECT_NE(t.find("       2  0.2500  0.7857"), std::string::npos) << t;
  auto svg = prefopt::read_file("/tmp/prefopt_curve.svg");
  size_t polylines = 0;
  for (size_t p = 0; (p = svg.find("<polyline", p)) != std::string::npos; ++p) ++polylines;
  EXPECT_EQ(polylines, 2u);
  EXPECT_NE(svg.find("prefopt_trained.jsonl"), std::string::npos);  // legend
  auto js = nlohmann::json::parse(prefopt::read_file("/tmp/prefopt_curve.json"));
  EXPECT_NEAR(js[1]["problems"]["p"]["pass@k"]["2"].get<double>(), 1.0 - 6.0 / 28.0, 1e-12);
  EXPECT_NEAR(js[0]["mean"]["8"].get<double>(), 1.0, 1e-12);
}

TEST(VerifyCli, Pairs) {
  ASSERT_TRUE(prefopt::file_exists(prefopt::testing::prefopt_exe())) << "prefopt not built";
  std::string rows;
  for (int i = 0; i < 4; ++i)
    rows += nlohmann::json{{"prompt", "Q1"}, {"completion", "r" + std::to_string(i)},
                           {"verdict", i % 2 ? "CORRECT" : "INCORRECT"}, {"score", i}}
                .dump() +
            "\n";
  rows += nlohmann::json{{"prompt", "Q2"}, {"completion", "s"}, {"correct", true}}.dump() + "\n";
  prefopt::atomic_write("/tmp/prefopt_samples.jsonl", rows);
  int rc = -1;
  run("pairs --kind best-worst --input /tmp/prefopt_samples.jsonl --output /tmp/prefopt_bw.jsonl "
      "--kto-output /tmp/prefopt_kto.jsonl",
      &rc);
  EXPECT_EQ(rc, 0);
  auto bw = nlohmann::json::parse(prefopt::read_file("/tmp/prefopt_bw.jsonl"));
  EXPECT_EQ(bw, (nlohmann::json{{"prompt", "Q1"}, {"chosen", "r3"}, {"rejected", "r0"}}));
  auto kto = prefopt::read_file("/tmp/prefopt_kto.jsonl");
  EXPECT_EQ(std::count(kto.begin(), kto.end(), '\n'), 5);
  auto rnd = nlohmann::json::parse(run("pairs --kind random --seed 3 --input /tmp/prefopt_samples.jsonl", &rc));
  EXPECT_TRUE(rnd["chosen"] == "r1" || rnd["chosen"] == "r3");
  EXPECT_TRUE(rnd["rejected"] == "r0" || rnd["rejected"] == "r2");
  // A SANDBOX_ERROR sample is neither correct nor incorrect: never a rejected response.
  std::string err_rows;
  err_rows += nlohmann::json{{"prompt", "Q3"}, {"completion", "ok"}, {"verdict", "PASSED"}}.dump() + "\n";
  err_rows += nlohmann::json{{"prompt", "Q3"}, {"completion", "infra"}, {"verdict", "SANDBOX_ERROR"}, {"passed", false}}
                  .dump() + "\n";
  prefopt::atomic_write("/tmp/prefopt_samples_err.jsonl", err_rows);
  for (const char* kind : {"random", "best-worst"}) {
    std::string got = run(std::string("pairs --kind ") + kind + " --input /tmp/prefopt_samples_err.jsonl", &rc);
    EXPECT_EQ(rc, 0) << kind;
    EXPECT_EQ(got.find("infra"), std::string::npos) << kind << ": " << got;
  }
  // DSTC from a given matrix (the sandbox would compute it)
  nlohmann::json d = {{"prompt", "Write f."},
                      {"codes", {"def f(): return 1", "def f(): return 2"}},
                      {"tests", {"assert f() == 1", "assert f() > 0"}},
                      {"matrix", {{1, 1}, {0, 1}}}};
  prefopt::atomic_write("/tmp/prefopt_dstc.jsonl", d.dump() + "\n");
  auto dj = nlohmann::json::parse(run("pairs --kind dstc --input /tmp/prefopt_dstc.jsonl", &rc));
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(dj["chosen"], "def f(): return 1\n\nassert f() == 1\n");
  EXPECT_EQ(dj["rejected"], "def f(): return 2\n\nassert f() == 1\n");
  // a matrix of the wrong shape names the line
  d["matrix"] = {{1, 1}};
  prefopt::atomic_write("/tmp/prefopt_dstc_bad.jsonl", "\n" + d.dump() + "\n");
  auto err = prefopt::testing::run_prefopt("pairs --kind dstc --input /tmp/prefopt_dstc_bad.jsonl", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find("prefopt_dstc_bad.jsonl:2"), std::string::npos) << err;
}
