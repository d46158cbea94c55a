// prefopt grade / passk as a user calls them.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_cli.h"
#include "core/fs.h"

static std::string run(const std::string& args, int* rc = nullptr) {
  return prefopt::testing::run_prefopt(args, rc);
}

TEST(VerifyCli, GradeAndPassk) {
  if (!prefopt::file_exists(std::string(PREFOPT_BINARY_DIR) + "/src/cli/prefopt")) GTEST_SKIP();
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
  auto t = run("passk /tmp/prefopt_passk.jsonl");
  EXPECT_NE(t.find("       1  0.6250"), std::string::npos) << t;
  EXPECT_NE(t.find("       2  0.7500"), std::string::npos) << t;
  EXPECT_NE(t.find("       4  1.0000"), std::string::npos) << t;
}
