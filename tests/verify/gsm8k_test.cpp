// GSM8K grading: every test answer grades CORRECT against itself and INCORRECT
// against a perturbed final number; hand cases for the normalisations.
#include <gtest/gtest.h>

#include "core/jsonl.h"
#include "verify/math_grader.h"
#include <nlohmann/json.hpp>

using namespace prefopt;

TEST(Gsm8k, EveryTestAnswerAgainstItselfAndPerturbed) {
  auto rows = read_jsonl(std::string(PREFOPT_SHARED_DATA) + "/gsm8k/test.jsonl");
  ASSERT_EQ(rows.size(), 1319u);
  int ok = 0, bad = 0;
  for (auto& r : rows) {
    std::string ans = r["answer"];
    auto g = grade_gsm8k(ans, ans);
    ok += g.grade == Grade::CORRECT;
    EXPECT_EQ(g.grade, Grade::CORRECT) << ans.substr(ans.size() > 80 ? ans.size() - 80 : 0);
    auto k = ans.rfind("####");
    std::string gold = ans.substr(k + 4);
    double v = *parse_number(gold);
    std::string perturbed = ans.substr(0, k) + "#### " + std::to_string(static_cast<long long>(v) + 1);
    auto w = grade_gsm8k(perturbed, ans);
    bad += w.grade == Grade::INCORRECT;
    EXPECT_EQ(w.grade, Grade::INCORRECT) << perturbed.substr(perturbed.size() - 40);
  }
  EXPECT_EQ(ok, 1319);
  EXPECT_EQ(bad, 1319);
}

TEST(Gsm8k, Normalisations) {
  EXPECT_EQ(grade_gsm8k("so the total is 900,000,000.", "#### 900000000").grade, Grade::CORRECT);
  EXPECT_EQ(grade_gsm8k("She pays $18.", "18").grade, Grade::CORRECT);
  EXPECT_EQ(grade_gsm8k("The answer is 10%.", "#### 10").grade, Grade::CORRECT);
  EXPECT_EQ(grade_gsm8k("#### 5 apples", "5").grade, Grade::CORRECT);
  EXPECT_EQ(grade_gsm8k("2+3=5. 5*2=10. #### 10", "#### 10").grade, Grade::CORRECT);
  EXPECT_EQ(grade_gsm8k("It dropped to -3 degrees", "-3").grade, Grade::CORRECT);
  EXPECT_EQ(grade_gsm8k("about 2.50 dollars", "2.5").grade, Grade::CORRECT);
  EXPECT_EQ(grade_gsm8k("12 then 13", "12").grade, Grade::INCORRECT);  // the last number counts
  auto u = grade_gsm8k("I do not know", "7");
  EXPECT_EQ(u.grade, Grade::UNGRADABLE);
  EXPECT_EQ(grade_gsm8k("7", "no number here").grade, Grade::UNGRADABLE);
  EXPECT_EQ(grade_gsm8k("#### 1,234", "1234").extracted, "1,234");
}
