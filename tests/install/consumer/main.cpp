// Uses the installed headers and libraries: pass@k by the unbiased estimator
// (n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 0.7) and the GSM8K grader.
#include <cmath>
#include <cstdio>

#include "verify/math_grader.h"
#include "verify/passk.h"

int main() {
  const double p = prefopt::pass_at_k(5, 2, 2);
  const bool graded = prefopt::grade_gsm8k("3+4=7. #### 7", "7").grade == prefopt::Grade::CORRECT;
  std::printf("pass@2 = %.6f, graded %s\n", p, graded ? "CORRECT" : "wrong");
  return std::fabs(p - 0.7) < 1e-12 && graded ? 0 : 1;
}
