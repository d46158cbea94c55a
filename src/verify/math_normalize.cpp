// MATH-style answer extraction and LaTeX normalisation. Follows the behaviour
// of Qwen2.5-Math evaluation/parser.py (extract_answer, strip_string,
// _fix_fracs, _fix_a_slash_b, _fix_sqrt); deliberate differences are listed in
// docs/graders.md ("Where we differ from Qwen").
#include <algorithm>
#include <cctype>
#include <cstring>

#include "verify/math_grader.h"

namespace prefopt {

namespace {

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Replaces "\cmd" when the next character is not a letter (so "\left" does not
// eat "\leftarrow").
void replace_command(std::string& s, std::string_view cmd, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(cmd, pos)) != std::string::npos) {
    size_t end = pos + cmd.size();
    if (end < s.size() && is_alpha(s[end])) {
      pos = end;
      continue;
    }
    s.replace(pos, cmd.size(), to);
    pos += to.size();
  }
}

// Index of the '}' closing the '{' at `open`, or npos.
size_t matching_brace(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    else if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// "\cmd{X}" -> X (keep_content) or "" everywhere, braces balanced.
void unwrap_command(std::string& s, std::string_view cmd, bool keep_content) {
  size_t pos = 0;
  while ((pos = s.find(cmd, pos)) != std::string::npos) {
    size_t open = pos + cmd.size();
    while (open < s.size() && s[open] == ' ') ++open;
    if (open >= s.size() || s[open] != '{') {
      pos += cmd.size();
      continue;
    }
    size_t close = matching_brace(s, open);
    if (close == std::string::npos) return;
    std::string inner = keep_content ? s.substr(open + 1, close - open - 1) : "";
    s.replace(pos, close + 1 - pos, inner);
  }
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Units removed as whole words when the answer has a digit in it. Multi-letter
// words only: Qwen's MathQA list also strips single letters ("a", "t", "m"),
// which would turn variables into nothing.
const char* const kUnits[] = {
    "square units", "sq units", "square feet", "square inches", "square meters", "square centimeters",
    "cubic units", "cubic feet", "cubic inches", "cubic meters", "cubic centimeters",
    "units", "unit", "degrees", "degree", "deg", "radians", "cents", "cent", "dollars", "dollar",
    "feet", "foot", "ft", "inches", "inch", "meters", "meter", "metres", "metre", "centimeters",
    "centimeter", "cm", "mm", "km", "kilometers", "miles", "mile", "mph", "hours", "hour", "hrs",
    "hr", "minutes", "minute", "mins", "min", "seconds", "second", "sec", "days", "day", "weeks",
    "week", "months", "month", "years", "year", "pounds", "pound", "lbs", "lb", "ounces", "ounce",
    "oz", "grams", "gram", "kg", "liters", "liter", "litres", "litre", "gallons", "gallon",
    "yards", "yard", "percent", "sq", "cubic", "square",
};

void remove_units(std::string& s) {
  if (std::none_of(s.begin(), s.end(), is_digit)) return;
  for (const char* u : kUnits) {
    const size_t n = std::strlen(u);
    size_t pos = 0;
    while ((pos = s.find(u, pos)) != std::string::npos) {
      bool left_ok = pos == 0 || (!is_alnum(s[pos - 1]) && s[pos - 1] != '\\');
      bool right_ok = pos + n >= s.size() || !is_alnum(s[pos + n]);
      if (!left_ok || !right_ok) {
        pos += n;
        continue;
      }
      size_t end = pos + n;
      // "cm^2", "inches^{2}": the power belongs to the unit.
      if (end + 1 < s.size() && s[end] == '^' && (s[end + 1] == '2' || s[end + 1] == '3')) end += 2;
      else if (end + 3 < s.size() && s.compare(end, 2, "^{") == 0 && s[end + 3] == '}') end += 4;
      s.erase(pos, end - pos);
    }
  }
}

// A trailing \text{...} / \mbox{...} is a unit ("5.4 \text{ cents}") when a
// number stays in front of it.
void remove_trailing_text_unit(std::string& s) {
  for (const char* cmd : {"\\text", "\\mbox", "\\mathrm"}) {
    std::string t = trim(s);
    // strip a trailing ^2 / ^{2} of the unit first
    std::string power;
    if (t.size() > 2 && t[t.size() - 2] == '^' && is_digit(t.back())) {
      power = t.substr(t.size() - 2);
      t.resize(t.size() - 2);
    } else if (t.size() > 4 && t.compare(t.size() - 4, 2, "^{") == 0 && t.back() == '}') {
      power = t.substr(t.size() - 4);
      t.resize(t.size() - 4);
    }
    if (t.empty() || t.back() != '}') continue;
    size_t pos = t.rfind(cmd);
    if (pos == std::string::npos) continue;
    size_t open = pos + std::strlen(cmd);
    if (open >= t.size() || t[open] != '{' || matching_brace(t, open) != t.size() - 1) continue;
    std::string inner = t.substr(open + 1, t.size() - open - 2);
    if (std::any_of(inner.begin(), inner.end(), is_digit)) continue;  // "\text{4:30 p.m.}" is content
    if (trim(inner) == "pm" || trim(inner) == "am") continue;            // 4:30 p.m. is not 4:30 a.m.
    std::string rest = trim(t.substr(0, pos));
    if (!rest.empty() && std::any_of(rest.begin(), rest.end(), is_digit)) s = rest;
  }
}

// \! disappears; \, \; \: "\ " and ~ become spaces; "\\" (a matrix row break) stays.
std::string replace_spacing(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '~') {
      out += ' ';
    } else if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[i + 1];
      if (n == '\\') {
        out += "\\\\";
        ++i;
      } else if (n == '!') {
        ++i;
      } else if (n == ',' || n == ';' || n == ':' || n == ' ') {
        out += ' ';
        ++i;
      } else {
        out += s[i];
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

// \frac12 -> \frac{1}{2}, \frac1{72} -> \frac{1}{72}, \frac{270}7 -> \frac{270}{7}.
std::string fix_fracs(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 5, "\\frac") == 0 && (i + 5 >= s.size() || !is_alpha(s[i + 5]))) {
      out += "\\frac";
      i += 5;
      for (int a = 0; a < 2 && i < s.size(); ++a) {
        if (s[i] == '{') {
          size_t close = matching_brace(s, i);
          if (close == std::string::npos) break;
          out += s.substr(i, close + 1 - i);
          i = close + 1;
        } else if (s[i] == '\\') {
          break;  // \frac\pi2: leave as is, the evaluator reads it
        } else {
          out += '{';
          out += s[i++];
          out += '}';
        }
      }
    } else {
      out += s[i++];
    }
  }
  return out;
}

bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

// "-1,234,567.5" with thousands groups.
bool is_grouped_number(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  size_t b = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == b || i - b > 3) return false;
  bool groups = false;
  while (i < s.size() && s[i] == ',') {
    if (i + 4 > s.size() || !all_digits(s.substr(i + 1, 3))) return false;
    if (i + 4 < s.size() && is_digit(s[i + 4])) return false;
    i += 4;
    groups = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i == s.size()) return false;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  return groups && i == s.size();
}

// 5.00 -> 5, "5.0)" -> "5)" (Qwen: (\d+)\.0*([^\d]) and (\d+)\.0*$).
std::string drop_zero_decimals(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '.' && i > 0 && is_digit(s[i - 1])) {
      size_t j = i + 1;
      while (j < s.size() && s[j] == '0') ++j;
      if (j == s.size() || !is_digit(s[j])) {
        i = j;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

}  // namespace

std::optional<std::string> extract_boxed(std::string_view text) {
  size_t best = std::string_view::npos, len = 0;
  for (std::string_view cmd : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    size_t p = text.rfind(cmd);
    if (p != std::string_view::npos && (best == std::string_view::npos || p > best)) {
      best = p;
      len = cmd.size();
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  size_t i = best + len;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '{') {
    size_t close = matching_brace(text, i);
    if (close == std::string_view::npos) return std::nullopt;
    return std::string(text.substr(i + 1, close - i - 1));
  }
  // "\boxed 5$": up to the next '$' (Qwen)
  size_t end = text.find('$', i);
  return trim(text.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
}

std::string extract_math_answer(std::string_view response) {
  std::string pred;
  const std::string_view minerva_open = "final answer is $", minerva_close = "$. I hope";
  size_t m = response.find(minerva_open);
  if (m != std::string_view::npos && response.find(minerva_close, m) != std::string_view::npos) {
    size_t b = m + minerva_open.size();
    pred = trim(response.substr(b, response.find(minerva_close, b) - b));
  } else if (auto boxed = extract_boxed(response)) {
    pred = *boxed;
  } else if (response.find("boxed") != std::string_view::npos) {
    pred.clear();  // an unclosed box: no answer
  } else if (size_t p = response.rfind("he answer is"); p != std::string_view::npos) {
    pred = trim(response.substr(p + 12));
  } else if (size_t q = response.rfind("final answer is"); q != std::string_view::npos) {
    pred = trim(response.substr(q + 15));
  } else {
    // The last number (Qwen: -?\d*\.?\d+ over the text with commas removed).
    std::string t;
    for (char c : response)
      if (c != ',') t += c;
    size_t end = std::string::npos;
    for (size_t i = t.size(); i-- > 0;)
      if (is_digit(t[i])) {
        end = i + 1;
        break;
      }
    if (end == std::string::npos) return "";
    size_t b = end;
    while (b > 0 && is_digit(t[b - 1])) --b;
    if (b > 1 && t[b - 1] == '.' && is_digit(t[b - 2])) {
      --b;
      while (b > 0 && is_digit(t[b - 1])) --b;
    } else if (b > 0 && t[b - 1] == '.') {
      --b;
    }
    if (b > 0 && t[b - 1] == '-') --b;
    pred = t.substr(b, end - b);
  }
  // Qwen: drop newlines (and the indentation after them), a leading ':', a
  // trailing '.' or '/'.
  std::string flat;
  for (size_t i = 0; i < pred.size(); ++i) {
    if (pred[i] == '\n') {
      while (i + 1 < pred.size() && std::isspace(static_cast<unsigned char>(pred[i + 1]))) ++i;
      continue;
    }
    flat += pred[i];
  }
  if (!flat.empty() && flat.front() == ':') flat.erase(0, 1);
  if (!flat.empty() && (flat.back() == '.' || flat.back() == '/')) flat.pop_back();
  return flat;
}

std::string normalize_math_answer(std::string_view answer) {
  std::string s = trim(answer);
  s.erase(std::remove(s.begin(), s.end(), '\n'), s.end());
  // Unicode forms models print.
  static const std::pair<const char*, const char*> kUnicode[] = {
      {"\xE2\x88\x92", "-"},       {"\xCF\x80", "\\pi "},     {"\xE2\x88\x9A", "\\sqrt"},
      {"\xC2\xB0", "^\\circ"},      {"\xC3\x97", "\\times "},  {"\xC2\xB7", "\\cdot "},
      {"\xE2\x88\x9E", "\\infty"},  {"\xE2\x89\xA4", "\\le "}, {"\xE2\x89\xA5", "\\ge "},
      {"\xE2\x80\xAF", " "},        {"\xC2\xA0", " "},
  };
  for (auto& [from, to] : kUnicode) replace_all(s, from, to);
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();

  // Spacing commands: \! disappears, \, \; \: \quad ~ "\ " become spaces.
  replace_all(s, "{,}", ",");  // 10{,}000
  s = replace_spacing(s);
  replace_command(s, "\\quad", " ");
  replace_command(s, "\\qquad", " ");

  // Matrices, fraction and relation spellings.
  for (size_t p; (p = s.find("\\begin{array}{")) != std::string::npos;) {
    size_t close = matching_brace(s, p + 13);
    if (close == std::string::npos) break;
    s.replace(p, close + 1 - p, "\\begin{pmatrix}");
  }
  replace_all(s, "\\end{array}", "\\end{pmatrix}");
  replace_all(s, "bmatrix", "pmatrix");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "\\dfrac", "\\frac");
  replace_command(s, "\\neq", "\\ne");
  replace_command(s, "\\leq", "\\le");
  replace_command(s, "\\geq", "\\ge");
  for (const char* sz : {"\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big"})
    replace_command(s, sz, "");
  replace_all(s, "\\{", "{");
  replace_all(s, "\\}", "}");
  replace_command(s, "\\displaystyle", "");

  // Times of day: "p.m." / "a.m." -> pm / am (kept, not a unit).
  replace_all(s, "p.m.", "pm");
  replace_all(s, "a.m.", "am");
  replace_all(s, "p.m", "pm");
  replace_all(s, "a.m", "am");
  // Units: a trailing \text{...}, then unit words.
  remove_trailing_text_unit(s);
  // Degrees, dollars, inline-math delimiters.
  replace_all(s, "^{\\circ}", "");
  replace_all(s, "^\\circ", "");
  replace_command(s, "\\circ", "");
  replace_command(s, "\\degree", "");
  replace_all(s, "\\$", "");
  replace_all(s, "$", "");
  replace_all(s, "\\(", "");
  replace_all(s, "\\)", "");
  replace_all(s, "\\[", "");
  replace_all(s, "\\]", "");

  // \text{X} -> X (and friends); Qwen deletes \mbox{...} outright, we unwrap it
  // after the unit step so "\mbox{even}" stays an answer.
  for (const char* cmd : {"\\textbf", "\\textit", "\\text", "\\mbox", "\\mathrm", "\\mathbf", "\\operatorname",
                          "\\textnormal", "\\boxed"})
    unwrap_command(s, cmd, true);
  remove_units(s);
  replace_all(s, "\\%", "");
  replace_all(s, "%", "");

  // Leading "x=", "y \in", "x\to" (only at the start or after a comma, unlike
  // Qwen which removes "y=" inside "x+y=5").
  {
    std::string t = s;
    std::string out;
    size_t i = 0;
    while (i < t.size()) {
      bool at_start = out.empty() || out.back() == ',';
      if (at_start) {
        size_t j = i;
        while (j < t.size() && t[j] == ' ') ++j;
        if (j < t.size() && (t[j] == 'x' || t[j] == 'y' || t[j] == 'z')) {
          size_t k = j + 1;
          while (k < t.size() && t[k] == ' ') ++k;
          if (t.compare(k, 3, "\\in") == 0 && (k + 3 >= t.size() || !is_alpha(t[k + 3]))) {
            i = k + 3;
            continue;
          }
          if (t.compare(k, 3, "\\to") == 0) {
            i = k + 3;
            continue;
          }
          if (k < t.size() && t[k] == '=' && std::count(t.begin(), t.end(), '=') >= 1 &&
              t.find(',') != std::string::npos) {
            i = k + 1;  // "x=1, x=2" lists
            continue;
          }
        }
      }
      out += t[i++];
    }
    s = out;
  }
  replace_command(s, "\\emptyset", "{}");
  replace_command(s, "\\varnothing", "{}");
  replace_all(s, "infinity", "\\infty");

  // " .5" -> " 0.5", "{.5" -> "{0.5"
  replace_all(s, " .", " 0.");
  replace_all(s, "{.", "{0.");
  s = trim(s);
  // {5}, (C), [x] with alphanumeric content lose their brackets.
  if (s.size() >= 2 &&
      ((s.front() == '{' && s.back() == '}') || (s.front() == '(' && s.back() == ')') ||
       (s.front() == '[' && s.back() == ']')) &&
      std::all_of(s.begin() + 1, s.end() - 1, is_alnum))
    s = s.substr(1, s.size() - 2);
  // "1 and 2" -> "1, 2" (Qwen drops "and", gluing "12").
  {
    size_t p = 0;
    while ((p = s.find("and", p)) != std::string::npos) {
      bool l = p == 0 || !is_alpha(s[p - 1]), r = p + 3 >= s.size() || !is_alpha(s[p + 3]);
      if (l && r && p > 0 && s[p - 1] != '\\') {
        s.replace(p, 3, ",");
        ++p;
      } else {
        p += 3;
      }
    }
  }
  s = drop_zero_decimals(s);
  if (!s.empty() && s.front() == '.') s = "0" + s;
  // "k = 5": a short left-hand side goes.
  if (std::count(s.begin(), s.end(), '=') == 1) {
    size_t eq = s.find('=');
    if (trim(s.substr(0, eq)).size() <= 2) s = s.substr(eq + 1);
  }
  // \sqrt2 -> \sqrt{2} (one token, as TeX reads it).
  for (size_t p = 0; (p = s.find("\\sqrt", p)) != std::string::npos;) {
    size_t a = p + 5;
    while (a < s.size() && s[a] == ' ') ++a;
    if (a < s.size() && is_alnum(s[a]) && !(a == p + 5 && is_alpha(s[a]))) {
      s.replace(p + 5, a + 1 - (p + 5), std::string("{") + s[a] + "}");
    } else if (a < s.size() && is_digit(s[a])) {
      s.replace(p + 5, a + 1 - (p + 5), std::string("{") + s[a] + "}");
    }
    p += 5;
  }
  s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
  s = fix_fracs(s);
  // 3/4 -> \frac{3}{4} when the whole answer is integer/integer.
  if (std::count(s.begin(), s.end(), '/') == 1) {
    size_t sl = s.find('/');
    std::string a = s.substr(0, sl), b = s.substr(sl + 1);
    std::string an = !a.empty() && a[0] == '-' ? a.substr(1) : a;
    if (all_digits(an) && all_digits(b)) s = "\\frac{" + a + "}{" + b + "}";
  }
  // Base subscripts: 4210_{5} -> 4210_5.
  for (size_t p = 0; (p = s.find("_{", p)) != std::string::npos;) {
    size_t close = matching_brace(s, p + 1);
    if (close != std::string::npos && close > p + 2 && all_digits(std::string_view(s).substr(p + 2, close - p - 2)))
      s = s.substr(0, p + 1) + s.substr(p + 2, close - p - 2) + s.substr(close + 1);
    ++p;
  }
  if (is_grouped_number(s)) s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace prefopt
