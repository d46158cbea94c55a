// The built-in verifiable task: templates of 2-3 step word problems with + - x
// over small numbers (GSM8K answer format, Cobbe et al. 2021, "#### N").
#include "pipeline/task.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "core/error.h"
#include "core/rng.h"

namespace prefopt::pipeline {
namespace {

const char* kNames[] = {"Tom", "Ana", "Li", "Sara", "Omar", "Mia", "Ravi", "Zoe"};
const char* kThings[] = {"apples", "books", "coins", "stamps", "shells", "pens", "cards"};

char op_char(Op op) {
  switch (op) {
    case Op::ADD: return '+';
    case Op::SUB: return '-';
    case Op::MUL: return '*';
  }
  return '?';
}

int64_t apply(Op op, int64_t a, int64_t b) {
  switch (op) {
    case Op::ADD: return a + b;
    case Op::SUB: return a - b;
    case Op::MUL: return a * b;
  }
  return 0;
}

int64_t pick(Rng& rng, int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng.below(uint64_t(hi - lo + 1))); }

// One template: a sentence per step, filled with the name, thing, operand.
struct Template {
  std::vector<Op> ops;
  std::string intro;                    // "{n} has {a} {t}."
  std::vector<std::string> step_text;   // one per op, "{b}" = operand
};

const std::vector<Template>& templates() {
  static const std::vector<Template> t = {
      {{Op::ADD, Op::SUB}, "{n} has {a} {t}.", {" {n} gets {b} more.", " Then {n} gives away {b}."}},
      {{Op::MUL, Op::ADD}, "{n} buys {a} boxes with {b0} {t} in each.", {"", " A friend adds {b} more."}},
      {{Op::ADD, Op::MUL}, "{n} has {a} {t} and finds {b0} more.", {"", " Then the pile is copied {b} times over in total."}},
      {{Op::SUB, Op::ADD, Op::SUB}, "{n} has {a} {t}.", {" {n} loses {b}.", " {n} wins {b}.", " {n} sells {b}."}},
      {{Op::MUL, Op::SUB}, "{n} packs {a} bags of {b0} {t}.", {"", " {n} eats {b} of them."}},
  };
  return t;
}

std::string fill(std::string s, const std::string& n, const std::string& t, int64_t a, int64_t b) {
  auto rep = [&](const std::string& key, const std::string& val) {
    for (size_t p; (p = s.find(key)) != std::string::npos;) s.replace(p, key.size(), val);
  };
  rep("{n}", n);
  rep("{t}", t);
  rep("{a}", std::to_string(a));
  rep("{b0}", std::to_string(b));
  rep("{b}", std::to_string(b));
  return s;
}

TaskProblem make_one(Rng& rng, const TaskOptions& opt) {
  const auto& tpls = templates();
  const int id = static_cast<int>(rng.below(tpls.size()));
  const Template& tp = tpls[id];
  const std::string n = kNames[rng.below(std::size(kNames))];
  const std::string t = kThings[rng.below(std::size(kThings))];
  TaskProblem p;
  p.template_id = id;
  int64_t cur = pick(rng, 3, opt.start_max);
  std::string q = tp.intro;
  std::string sol;
  for (size_t i = 0; i < tp.ops.size(); ++i) {
    const Op op = tp.ops[i];
    const int64_t sub_hi = opt.sub_max > 0 ? std::min(cur, opt.sub_max) : cur;
    int64_t b = op == Op::MUL   ? pick(rng, 2, opt.mul_max)
                : op == Op::SUB ? pick(rng, 1, std::max<int64_t>(1, sub_hi))
                                : pick(rng, 1, opt.add_max);
    if (i == 0) q = fill(q, n, t, cur, b);
    if (!tp.step_text[i].empty()) q += fill(tp.step_text[i], n, t, cur, b);
    const int64_t r = apply(op, cur, b);
    p.steps.push_back({op, cur, b, r});
    sol += std::to_string(cur) + op_char(op) + std::to_string(b) + "=" + std::to_string(r) + ". ";
    cur = r;
  }
  q += " How many " + t + " are there now?";
  p.question = q;
  p.answer = cur;
  p.solution = sol + "#### " + std::to_string(cur);
  return p;
}

}  // namespace

TaskOptions small_numbers() { return {20, 9, 9, 3}; }

TaskSplits make_task(uint64_t seed, size_t n_train, size_t n_held, const TaskOptions& opt) {
  Rng rng(seed);
  std::set<std::string> seen;
  std::vector<TaskProblem> all;
  const size_t want = n_train + n_held;
  if (want > 200000)
    fail("make_task", "asked for " + std::to_string(want) + " problems, at most 200000 are supported",
         "ask for fewer train/held-out problems");
  size_t dup_run = 0;
  while (all.size() < want) {
    if (dup_run > 5000)
      fail("make_task", "could not draw " + std::to_string(want) + " distinct problems (found " +
                                        std::to_string(all.size()) + ")",
           "ask for fewer train/held-out problems");
    TaskProblem p = make_one(rng, opt);
    if (seen.insert(p.question).second) {
      all.push_back(std::move(p));
      dup_run = 0;
    } else {
      ++dup_run;
    }
  }
  TaskSplits s;
  s.train.assign(all.begin(), all.begin() + n_train);
  s.held_out.assign(all.begin() + n_train, all.end());
  return s;
}

int64_t recompute_answer(const TaskProblem& p) {
  if (p.steps.empty()) fail("recompute_answer", "a problem with no steps", "build problems with make_task");
  int64_t cur = p.steps[0].lhs;
  for (const Step& s : p.steps) cur = apply(s.op, cur, s.rhs);
  return cur;
}

std::string task_prompt(const TaskProblem& p) { return p.question + "\nAnswer: "; }

std::string tool_solution_code(const TaskProblem& p) {
  std::string code = "```python\n";
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const Step& s = p.steps[i];
    const std::string lhs = i == 0 ? std::to_string(s.lhs) : "x";
    code += "x = " + lhs + " " + op_char(s.op) + " " + std::to_string(s.rhs) + "\n";
  }
  return code + "print(x)\n```";
}

}  // namespace prefopt::pipeline
