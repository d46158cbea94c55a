// prefopt verify: math answer grading. Results are values, never exceptions.
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

}  // namespace prefopt
