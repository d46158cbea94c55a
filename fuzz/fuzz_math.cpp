// Fuzz target: the math answer grader. The input is split at the first NUL
// (or the middle) into a prediction and a gold answer: answer extraction,
// LaTeX normalisation, math_equal (which runs the LatexExpr evaluator),
// grade_math and grade_gsm8k. Graders return values and never throw: here
// any exception, a prefopt::Error included, is a finding.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/fuzz_common.h"
#include "verify/latex_expr.h"
#include "verify/math_grader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t cut = in.find('\0');
  if (cut == std::string_view::npos) cut = size / 2;
  std::string_view pred = in.substr(0, cut), gold = in.substr(std::min(size, cut + 1));
  try {
    (void)prefopt::extract_boxed(pred);
    const std::string ans = prefopt::extract_math_answer(pred);
    const std::string np = prefopt::normalize_math_answer(ans), ng = prefopt::normalize_math_answer(gold);
    (void)prefopt::math_equal(np, ng);
    (void)prefopt::math_equal(np, np);
    if (auto e = prefopt::LatexExpr::parse(ng)) {
      std::vector<double> v(e->variables().size(), 0.5);
      (void)e->eval(v);
    }
    (void)prefopt::grade_math(pred, gold);
    (void)prefopt::grade_gsm8k(pred, gold);
    (void)prefopt::parse_number(pred);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: the grader threw: %s\n", e.what());
    std::abort();
  }
  return 0;
}
