// Built-in task generator: answers by recomputation, GSM8K-gradeable
// solutions, disjoint splits, seeded determinism.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "pipeline/task.h"
#include "verify/math_grader.h"

using namespace prefopt;
using namespace prefopt::pipeline;

TEST(Task, AnswersRecomputeAndGrade) {
  auto s = make_task(7, 300, 50);
  ASSERT_EQ(s.train.size(), 300u);
  ASSERT_EQ(s.held_out.size(), 50u);
  std::set<int> templates;
  for (const auto* split : {&s.train, &s.held_out})
    for (const auto& p : *split) {
      templates.insert(p.template_id);
      ASSERT_GE(p.steps.size(), 2u);
      ASSERT_LE(p.steps.size(), 3u);
      EXPECT_EQ(recompute_answer(p), p.answer) << p.question;
      for (const auto& st : p.steps) EXPECT_GE(st.result, 0) << p.question;
      // Each step's result is arithmetic over its operands (hand check).
      for (size_t i = 1; i < p.steps.size(); ++i) EXPECT_EQ(p.steps[i].lhs, p.steps[i - 1].result);
      EXPECT_EQ(grade_gsm8k(p.solution, std::to_string(p.answer)).grade, Grade::CORRECT) << p.solution;
      EXPECT_EQ(grade_gsm8k(p.solution, std::to_string(p.answer + 1)).grade, Grade::INCORRECT) << p.solution;
      EXPECT_NE(p.question.find(std::to_string(p.steps[0].lhs)), std::string::npos);
    }
  EXPECT_GE(templates.size(), 4u);
}

TEST(Task, SplitsDisjoint) {
  auto s = make_task(1, 400, 100);
  std::set<std::string> train;
  for (auto& p : s.train) train.insert(p.question);
  EXPECT_EQ(train.size(), s.train.size());
  for (auto& p : s.held_out) EXPECT_EQ(train.count(p.question), 0u) << p.question;
}

TEST(Task, SeededDeterminism) {
  auto a = make_task(42, 50, 10), b = make_task(42, 50, 10), c = make_task(43, 50, 10);
  for (size_t i = 0; i < a.train.size(); ++i) {
    EXPECT_EQ(a.train[i].question, b.train[i].question);
    EXPECT_EQ(a.train[i].solution, b.train[i].solution);
  }
  size_t same = 0;
  for (size_t i = 0; i < a.train.size(); ++i) same += a.train[i].question == c.train[i].question;
  EXPECT_LT(same, a.train.size() / 2);
}

TEST(Task, TooManyProblemsIsAnError) {
  EXPECT_THROW(make_task(1, 1000000, 1), prefopt::Error);
}

TEST(Task, HandExample) {
  TaskProblem p;
  p.steps = {{Op::ADD, 10, 5, 15}, {Op::MUL, 15, 3, 45}, {Op::SUB, 45, 4, 41}};
  EXPECT_EQ(recompute_answer(p), 41);
}
