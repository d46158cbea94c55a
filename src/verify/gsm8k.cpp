#include "verify/math_grader.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace prefopt {

const char* to_string(Grade g) {
  switch (g) {
    case Grade::CORRECT: return "CORRECT";
    case Grade::INCORRECT: return "INCORRECT";
    case Grade::UNGRADABLE: return "UNGRADABLE";
  }
  return "?";
}

// A number token: optional sign, digits with optional thousands commas, optional
// decimal part. Returns [begin, end) of the last one in `s`, scanning from `from`.
static std::optional<std::pair<size_t, size_t>> last_number(std::string_view s) {
  std::optional<std::pair<size_t, size_t>> best;
  size_t i = 0;
  while (i < s.size()) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      size_t b = i;
      if (b > 0 && s[b - 1] == '-') --b;
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) ||
                              (s[i] == ',' && i + 3 < s.size() + 0 && i + 1 < s.size() &&
                               std::isdigit(static_cast<unsigned char>(s[i + 1]))) ||
                              (s[i] == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))))
        ++i;
      best = std::make_pair(b, i);
    } else {
      ++i;
    }
  }
  return best;
}

std::optional<double> parse_number(std::string_view s) {
  std::string t;
  for (char ch : s) {
    if (ch == ',' || ch == '$' || ch == ' ' || ch == '%') continue;
    t += ch;
  }
  while (!t.empty() && t.back() == '.') t.pop_back();
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end == t.c_str()) return std::nullopt;
  // allow trailing units ("5 apples", "12cm") but not other numbers
  for (const char* p = end; *p; ++p)
    if (std::isdigit(static_cast<unsigned char>(*p))) return std::nullopt;
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::string> extract_gsm8k_answer(std::string_view text) {
  auto k = text.rfind("####");
  std::string_view tail = k == std::string_view::npos ? text : text.substr(k + 4);
  auto r = last_number(k == std::string_view::npos ? text : tail);
  if (!r) return std::nullopt;
  if (k != std::string_view::npos) {  // the first number after ####
    auto first = tail.find_first_of("-0123456789");
    if (first == std::string_view::npos) return std::nullopt;
    size_t e = first + 1;
    while (e < tail.size() && (std::isdigit(static_cast<unsigned char>(tail[e])) ||
                               ((tail[e] == ',' || tail[e] == '.') && e + 1 < tail.size() &&
                                std::isdigit(static_cast<unsigned char>(tail[e + 1])))))
      ++e;
    return std::string(tail.substr(first, e - first));
  }
  return std::string(text.substr(r->first, r->second - r->first));
}

GradeResult grade_gsm8k(std::string_view prediction, std::string_view gold) {
  GradeResult r;
  auto g = extract_gsm8k_answer(gold);
  auto gv = g ? parse_number(*g) : std::nullopt;
  if (!gv) return r;  // gold unparseable: UNGRADABLE
  r.gold_normalized = *g;
  auto p = extract_gsm8k_answer(prediction);
  if (!p) return r;
  r.extracted = *p;
  auto pv = parse_number(*p);
  if (!pv) return r;
  // Integer gold answers (all of GSM8K) must match exactly; otherwise a
  // relative tolerance of 1e-4 (Qwen2.5-Math's math_equal).
  const bool integral = std::floor(*gv) == *gv;
  const double tol = integral ? 1e-9 : 1e-4 * std::max(1.0, std::abs(*gv));
  r.grade = std::abs(*pv - *gv) <= tol ? Grade::CORRECT : Grade::INCORRECT;
  return r;
}

}  // namespace prefopt
