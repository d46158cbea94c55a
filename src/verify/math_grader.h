// prefopt verify: math answer grading. Results are values, never exceptions.
// Rules, agreement figures and every known disagreement: docs/graders.md.
//
// GSM8K: the gold answer follows "#### " (or is a bare number); the prediction's
// answer is its "#### N" if present, else the last number in the text.
// Thousands commas, $, %, units and trailing periods are stripped. Integer gold
// answers must match exactly; others within a relative tolerance of 1e-4 (as
// Qwen2.5-Math's math_equal).
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace prefopt {

enum class Grade { CORRECT, INCORRECT, UNGRADABLE };
const char* to_string(Grade g);

struct GradeResult {
  Grade grade = Grade::UNGRADABLE;
  std::string extracted;        // the prediction's answer as found
  std::string gold_normalized;  // the gold answer after normalisation
};

// The number a GSM8K-style text ends with ("#### N" first, else the last number).
std::optional<std::string> extract_gsm8k_answer(std::string_view text);
std::optional<double> parse_number(std::string_view s);  // "1,234.5", "$5", "10%", "-3"
GradeResult grade_gsm8k(std::string_view prediction, std::string_view gold);

// MATH style (conventions of Qwen2.5-Math evaluation/parser.py extract_answer,
// strip_string and grader.py math_equal; see docs/graders.md for where we differ).
//
// The content of the last \boxed{...} / \fbox{...} (nested braces), or
// std::nullopt when there is none or its braces never close.
std::optional<std::string> extract_boxed(std::string_view text);
// The answer of a model response: the last box; else what follows the last
// "the answer is" / "final answer is"; else the last number. Empty if nothing.
std::string extract_math_answer(std::string_view response);
// LaTeX normalisation (strip_string): \dfrac/\tfrac -> \frac, \frac12 ->
// \frac{1}{2}, \left/\right, spacing, \text{}/\mbox{} and units, degrees,
// percent, dollars, trailing periods, "x=" / "k = " prefixes, thousands commas,
// \sqrt2 -> \sqrt{2}, a/b -> \frac{a}{b}, spaces removed.
std::string normalize_math_answer(std::string_view answer);
// Equivalence of two normalised answers: string, number (rel. tol. 1e-4, also
// x100 and /100 for percent), tuples / intervals / sets / unions / matrices
// element-wise, \pm expansion, equations up to a constant factor, and
// arithmetic identity via LatexExpr (verify/latex_expr.h).
bool math_equal(std::string_view pred, std::string_view gold);
// gold: a bare answer, or a solution whose last \boxed{} is the answer.
// UNGRADABLE when the response yields no answer or the gold none.
GradeResult grade_math(std::string_view prediction, std::string_view gold);

}  // namespace prefopt
