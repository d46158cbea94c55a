// Equivalence of two normalised MATH answers and grade_math. The order of the
// checks follows Qwen2.5-Math evaluation/grader.py math_equal (string, number,
// structure, equation, symbolic); the sympy step is LatexExpr's numeric
// identity test. Differences from Qwen: docs/graders.md.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "verify/latex_expr.h"
#include "verify/math_grader.h"

namespace prefopt {

namespace {

constexpr double kRelTol = 1e-4;  // Qwen numeric_equal: math.isclose(rel_tol=1e-4)
constexpr int kMaxRecursion = 8;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Numbers: relative tolerance 1e-4 (Qwen numeric_equal), except that an
// integer gold answer must be met exactly: with 1e-4 alone 9999 would equal
// 10000 (see docs/graders.md).
bool values_equal(double pred, double gold) {
  if (std::abs(gold) >= 1 && gold == std::round(gold))
    return std::abs(pred - gold) <= std::max(1e-6, 1e-15 * std::abs(gold));
  return numeric_close(pred, gold, kRelTol);
}

// Qwen parse_digits: a plain float after removing commas; "x%" is x/100.
// Unlike Qwen, commas must group thousands: "63,27,171" is a list, not 6327171.
std::optional<double> parse_digits(std::string_view s) {
  if (s.find(',') != std::string_view::npos) {
    size_t i = s[0] == '-' ? 1 : 0, first = s.find(',');
    if (first - i < 1 || first - i > 3) return std::nullopt;
    for (size_t p = first; p < s.size() && s[p] == ','; p += 4) {
      if (p + 4 > s.size()) return std::nullopt;
      for (size_t k = p + 1; k < p + 4; ++k)
        if (!std::isdigit(static_cast<unsigned char>(s[k]))) return std::nullopt;
      if (p + 4 < s.size() && s[p + 4] != ',' && s[p + 4] != '.' && s[p + 4] != '%') return std::nullopt;
    }
  }
  std::string t;
  for (char c : s)
    if (c != ',') t += c;
  if (t.empty()) return std::nullopt;
  bool percent = false;
  if (t.back() == '%') {
    percent = true;
    t.pop_back();
    if (!t.empty() && t.back() == '\\') t.pop_back();
  }
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || !std::isfinite(v)) return std::nullopt;
  for (char c : t)  // strtod also reads "inf", "nan", hex
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      return std::nullopt;
  return percent ? v / 100 : v;
}

// Splits at top-level occurrences of `sep` (outside (), [], {}).
std::vector<std::string> split_top(std::string_view s, std::string_view sep) {
  std::vector<std::string> parts;
  int depth = 0;
  size_t b = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
    else if (depth == 0 && s.compare(i, sep.size(), sep) == 0) {
      parts.emplace_back(s.substr(b, i - b));
      b = i + sep.size();
      i = b - 1;
    }
  }
  parts.emplace_back(s.substr(b));
  return parts;
}

// "(...)", "[...)", "{...}" where the first bracket closes only at the end.
bool bracketed(std::string_view s) {
  if (s.size() < 2 || std::string_view("([{").find(s.front()) == std::string_view::npos ||
      std::string_view(")]}").find(s.back()) == std::string_view::npos)
    return false;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') {
      if (--depth == 0 && i + 1 != s.size()) return false;
    }
  }
  return depth == 0;
}

// The choice letter of "(C)", "C", "\text{(C)} 5": the last standalone A-E.
std::string choice_letter(std::string_view s) {
  std::string found;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s[i])));
    if (c < 'A' || c > 'E') continue;
    bool l = i == 0 || !std::isalnum(static_cast<unsigned char>(s[i - 1]));
    bool r = i + 1 == s.size() || !std::isalnum(static_cast<unsigned char>(s[i + 1]));
    if (l && r && !(i > 0 && s[i - 1] == '\\')) found = std::string(1, c);
  }
  return found;
}

bool equal_rec(std::string_view pred, std::string_view gold, int depth);

// Elements in order.
bool all_equal(const std::vector<std::string>& a, const std::vector<std::string>& b, int depth) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!equal_rec(a[i], b[i], depth + 1)) return false;
  return true;
}

// Elements in any order (a multiset matching; lists are short).
bool set_equal(const std::vector<std::string>& a, const std::vector<std::string>& b, int depth) {
  if (a.size() != b.size() || a.size() > 16) return a.size() == b.size() && all_equal(a, b, depth);
  std::vector<bool> used(b.size(), false);
  for (auto& x : a) {
    bool hit = false;
    for (size_t j = 0; j < b.size() && !hit; ++j)
      if (!used[j] && equal_rec(x, b[j], depth + 1)) used[j] = hit = true;
    if (!hit) return false;
  }
  return true;
}

// "a\pm b" -> {"a+b", "a-b"} for each element holding one \pm.
std::vector<std::string> expand_pm(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (auto& it : items) {
    size_t p = it.find("\\pm");
    if (p == std::string::npos || it.find("\\pm", p + 3) != std::string::npos) {
      out.push_back(it);
      continue;
    }
    out.push_back(it.substr(0, p) + "+" + it.substr(p + 3));
    out.push_back(it.substr(0, p) + "-" + it.substr(p + 3));
  }
  return out;
}

std::vector<std::vector<std::string>> matrix_cells(std::string_view s) {
  const std::string_view open = "\\begin{pmatrix}", close = "\\end{pmatrix}";
  std::string_view body = s.substr(open.size(), s.size() - open.size() - close.size());
  std::vector<std::vector<std::string>> rows;
  for (auto& line : split_top(body, "\\\\")) {
    if (line.empty()) continue;
    rows.push_back(split_top(line, "&"));
  }
  return rows;
}

bool is_matrix(std::string_view s) {
  return s.size() > 28 && s.substr(0, 15) == "\\begin{pmatrix}" && s.substr(s.size() - 13) == "\\end{pmatrix}";
}

bool symbolic_equal(std::string_view pred, std::string_view gold, bool up_to_scale = false) {
  auto a = LatexExpr::parse(pred);
  if (!a) return false;
  auto b = LatexExpr::parse(gold);
  if (!b) return false;
  if (a->variables().empty() && b->variables().empty() && !up_to_scale) {
    double va = a->eval({}), vb = b->eval({});
    return std::isfinite(va) && std::isfinite(vb) && values_equal(va, vb);
  }
  return expr_equivalent(*a, *b, kRelTol, up_to_scale);
}

std::string strip_braces(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '{' && c != '}') out += c;
  return lower(out);
}

bool equal_rec(std::string_view pred, std::string_view gold, int depth) {
  if (depth > kMaxRecursion) return false;
  if (lower(pred) == lower(gold)) return true;
  if (gold.size() == 1 && gold[0] >= 'A' && gold[0] <= 'E') return choice_letter(pred) == std::string(gold);

  // 1. numbers; like Qwen (include_percentage) gold/100 and gold*100 also count.
  auto pv = parse_digits(pred), gv = parse_digits(gold);
  if (pv && gv) {
    for (double g : {*gv, *gv / 100, *gv * 100})
      if (values_equal(*pv, g)) return true;
    return false;
  }
  if (pred.empty()) return false;
  if (strip_braces(pred) == strip_braces(gold)) return true;

  // 2. matrices element-wise.
  if (is_matrix(pred) && is_matrix(gold)) {
    auto a = matrix_cells(pred), b = matrix_cells(gold);
    if (a.size() != b.size()) return false;
    for (size_t r = 0; r < a.size(); ++r)
      if (!all_equal(a[r], b[r], depth)) return false;
    return true;
  }

  // 3. unions of intervals, in order.
  auto pu = split_top(pred, "\\cup"), gu = split_top(gold, "\\cup");
  if (pu.size() > 1 || gu.size() > 1) return pu.size() == gu.size() && all_equal(pu, gu, depth);

  // 4. tuples, intervals, sets: brackets must agree ((1,2] is not [1,2]);
  //    a set {…} is unordered, a bare list "1, -2" is unordered.
  const bool pb = bracketed(pred), gb = bracketed(gold);
  if (pb && gb) {
    if (pred.front() != gold.front() || pred.back() != gold.back()) {
      // (a) vs [a] around a single expression are just groups: fall through to algebra.
      if (split_top(pred.substr(1, pred.size() - 2), ",").size() > 1 ||
          split_top(gold.substr(1, gold.size() - 2), ",").size() > 1)
        return false;
    } else {
      auto a = split_top(pred.substr(1, pred.size() - 2), ",");
      auto b = split_top(gold.substr(1, gold.size() - 2), ",");
      if (a.size() > 1 || b.size() > 1) {
        if (gold.front() == '{') return set_equal(expand_pm(a), expand_pm(b), depth);
        return all_equal(a, b, depth);
      }
    }
  }
  {
    auto a = split_top(pred, ","), b = split_top(gold, ",");
    const bool p_list = a.size() > 1 && !pb, g_list = b.size() > 1 && !gb;
    if (p_list || g_list || pred.find("\\pm") != std::string_view::npos ||
        gold.find("\\pm") != std::string_view::npos) {
      // A bare list may be written as a set or a tuple on the other side.
      if (pb && g_list) a = split_top(pred.substr(1, pred.size() - 2), ",");
      if (gb && p_list) b = split_top(gold.substr(1, gold.size() - 2), ",");
      auto ea = expand_pm(a), eb = expand_pm(b);
      if (ea.size() > 1 || eb.size() > 1) return set_equal(ea, eb, depth);
    }
  }

  // 5. equations: a=b vs c=d as a-b vs c-d up to a constant factor.
  const auto pe = std::count(pred.begin(), pred.end(), '='), ge = std::count(gold.begin(), gold.end(), '=');
  if (pe == 1 && ge == 1) {
    auto eq = [](std::string_view s) {
      size_t p = s.find('=');
      return "(" + std::string(s.substr(0, p)) + ")-(" + std::string(s.substr(p + 1)) + ")";
    };
    return symbolic_equal(eq(pred), eq(gold), /*up_to_scale=*/true);
  }
  if (pe == 1 && ge == 0 && pred.find('=') <= 2) return equal_rec(pred.substr(pred.find('=') + 1), gold, depth + 1);
  if (ge == 1 && pe == 0 && gold.find('=') <= 2) return equal_rec(pred, gold.substr(gold.find('=') + 1), depth + 1);

  // 6. arithmetic / algebraic identity.
  return symbolic_equal(pred, gold);
}

}  // namespace

bool math_equal(std::string_view pred, std::string_view gold) { return equal_rec(pred, gold, 0); }

GradeResult grade_math(std::string_view prediction, std::string_view gold) {
  GradeResult r;
  std::string g;
  if (gold.find("\\boxed") != std::string_view::npos || gold.find("\\fbox") != std::string_view::npos) {
    auto b = extract_boxed(gold);
    if (!b) return r;  // a solution whose box never closes
    g = *b;
  } else {
    g = std::string(gold);
  }
  r.gold_normalized = normalize_math_answer(g);
  if (r.gold_normalized.empty()) return r;
  r.extracted = normalize_math_answer(extract_math_answer(prediction));
  if (r.extracted.empty()) return r;
  r.grade = math_equal(r.extracted, r.gold_normalized) ? Grade::CORRECT : Grade::INCORRECT;
  return r;
}

}  // namespace prefopt
