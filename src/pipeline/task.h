// prefopt pipeline: the built-in verifiable task of `prefopt demo`.
// Seeded GSM8K-style multi-step arithmetic word problems with exact integer
// answers and worked solutions ending "#### N", gradeable by grade_gsm8k
// (verify/math_grader.h). Train and held-out splits are disjoint by prompt.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace prefopt::pipeline {

enum class Op { ADD, SUB, MUL };

struct Step {
  Op op;
  int64_t lhs, rhs, result;
};

struct TaskProblem {
  std::string question;        // the word problem, ends with '?'
  std::string solution;        // worked steps "a+b=c. ... #### N"
  int64_t answer = 0;          // exact integer answer
  std::vector<Step> steps;     // 2-3 steps, for recomputation
  int template_id = 0;
};

// Operand ranges: the first number in [3, start_max]; an addition adds
// [1, add_max]; a subtraction takes [1, min(current, sub_max)] (sub_max <= 0:
// up to the current value); a multiplication is by [2, mul_max].
struct TaskOptions {
  int64_t start_max = 40, add_max = 20, sub_max = 0, mul_max = 6;
};

// The demo's numbers: intermediate values stay below 100 and every operand after
// the first is one digit, so a tiny model can learn the arithmetic from a few
// hundred worked solutions.
TaskOptions small_numbers();

struct TaskSplits {
  std::vector<TaskProblem> train, held_out;
};

// n_train + n_held distinct problems (distinct questions), seeded; the
// held-out questions never appear in train. Every intermediate and the answer
// are non-negative. Throws prefopt::Error if the template space cannot supply
// that many distinct problems.
TaskSplits make_task(uint64_t seed, size_t n_train, size_t n_held, const TaskOptions& opt = {});

// Recomputes the answer from the steps (each step's lhs is the previous
// result after the first); used by tests and as a self-check.
int64_t recompute_answer(const TaskProblem& p);

// The prompt the model sees (question + "\nAnswer: ") and the TRL-style
// prompt/completion pair.
std::string task_prompt(const TaskProblem& p);

// The tool-use form of the worked solution (demo --tools python): a
// Python block that computes the answer step by step and prints it, e.g.
//   ```python\nx = 23 + 15\nx = x - 7\nprint(x)\n```
// The tool loop then appends observation_text("31") and the model ends with
// "#### 31".
std::string tool_solution_code(const TaskProblem& p);

}  // namespace prefopt::pipeline
