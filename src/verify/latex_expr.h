// prefopt verify: a small, bounded evaluator for LaTeX-ish arithmetic answers.
//
// It stands in for the sympy step of Qwen2.5-Math's math_equal (grader.py,
// symbolic_equal): two answers are equivalent when they evaluate to the same
// value (relative tolerance 1e-4, as Qwen's numeric_equal) at every one of a
// few fixed random points for their free variables. Supported: integers,
// decimals, scientific notation (1.5e6, 1.5\times10^{6}), + - * / ^,
// \cdot \times \div, implicit multiplication, {} () groups, \frac{a}{b}
// (also \frac12), mixed numbers (2\frac{1}{3} = 7/3 when both parts are
// integers), \sqrt{x}, \sqrt[n]{x}, \pi, |x|, n!, \binom{n}{k}, trig / log /
// exp functions, single-letter and Greek variables.
// Bounded: inputs over 400 characters or nested deeper than 64 are refused
// (std::nullopt), so no answer can make the grader slow.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace prefopt {

class LatexExpr {
 public:
  // Parses a normalised answer (see normalize_math_answer); std::nullopt when
  // it is not an arithmetic expression this evaluator understands.
  static std::optional<LatexExpr> parse(std::string_view s);

  // Free variables, sorted ("x", "y", "\theta", ...).
  const std::vector<std::string>& variables() const { return vars_; }
  // Value with variables[i] = values[i]; NaN where undefined.
  double eval(const std::vector<double>& values) const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
  std::vector<std::string> vars_;
};

// True when a and b agree at every sample point (rel. tolerance `rel_tol`);
// false when they differ anywhere or fewer than two points are defined.
// `up_to_scale`: equal up to a constant non-zero factor (equations a=b, c=d
// compared as a-b vs c-d).
bool expr_equivalent(const LatexExpr& a, const LatexExpr& b, double rel_tol = 1e-4,
                     bool up_to_scale = false);

// Qwen's numeric_equal: |a-b| <= rel_tol * max(|a|,|b|) (math.isclose).
bool numeric_close(double a, double b, double rel_tol = 1e-4);

}  // namespace prefopt
