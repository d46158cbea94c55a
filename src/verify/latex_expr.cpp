// LaTeX-ish arithmetic: a recursive-descent parser to a small tree, evaluated
// at fixed sample points. Replaces the sympy step of Qwen2.5-Math's grader.py
// (symbolic_equal) with numeric identity testing.
#include "verify/latex_expr.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>

#include "core/rng.h"

namespace prefopt {

enum class Op { NUM, VAR, NEG, ADD, SUB, MUL, DIV, POW, ROOT, FACT, ABS, BINOM, FUNC, LOGB };
enum class Fn { SIN, COS, TAN, COT, SEC, CSC, ASIN, ACOS, ATAN, LN, LOG, EXP, SINH, COSH, TANH };

struct LatexExpr::Node {
  Op op = Op::NUM;
  double value = 0;  // NUM; ROOT degree
  int var = -1;      // VAR: index into the variable list
  Fn fn = Fn::SIN;
  std::shared_ptr<const Node> a, b;
};
using NodeP = std::shared_ptr<const LatexExpr::Node>;

namespace {

constexpr size_t kMaxChars = 400;
constexpr int kMaxDepth = 64;
constexpr int kMaxNodes = 4000;

struct FnName {
  const char* name;
  Fn fn;
};
// Longest names first so "\arcsin" is not read as "\arc" + "sin".
const FnName kFunctions[] = {
    {"arcsin", Fn::ASIN}, {"arccos", Fn::ACOS}, {"arctan", Fn::ATAN}, {"sinh", Fn::SINH},
    {"cosh", Fn::COSH},   {"tanh", Fn::TANH},   {"sin", Fn::SIN},     {"cos", Fn::COS},
    {"tan", Fn::TAN},     {"cot", Fn::COT},     {"sec", Fn::SEC},     {"csc", Fn::CSC},
    {"ln", Fn::LN},       {"log", Fn::LOG},     {"exp", Fn::EXP},
};
const char* const kGreek[] = {"alpha", "beta",  "gamma", "delta", "epsilon", "varepsilon", "zeta",
                              "eta",   "theta", "vartheta", "iota", "kappa", "lambda", "mu",
                              "nu",    "xi",    "rho",   "sigma", "tau",     "upsilon", "phi",
                              "varphi", "chi",  "psi",   "omega", "Gamma",   "Delta",   "Theta",
                              "Lambda", "Sigma", "Phi",  "Psi",   "Omega"};
const char* const kOperators[] = {"cdot", "times", "div", "ast"};

struct ParseFail {};

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  NodeP parse_all() {
    NodeP e = expr();
    skip();
    if (i_ != s_.size()) throw ParseFail{};
    return e;
  }
  std::vector<std::string> vars;

 private:
  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0, nodes_ = 0, abs_open_ = 0;

  struct Depth {
    Parser& p;
    explicit Depth(Parser& p) : p(p) {
      if (++p.depth_ > kMaxDepth) throw ParseFail{};
    }
    ~Depth() { --p.depth_; }
  };

  NodeP make(Op op, NodeP a = nullptr, NodeP b = nullptr) {
    if (++nodes_ > kMaxNodes) throw ParseFail{};
    auto n = std::make_shared<LatexExpr::Node>();
    n->op = op;
    n->a = std::move(a);
    n->b = std::move(b);
    return n;
  }
  NodeP num(double v) {
    auto n = std::const_pointer_cast<LatexExpr::Node>(make(Op::NUM));
    n->value = v;
    return n;
  }
  NodeP var(const std::string& name) {
    auto it = std::find(vars.begin(), vars.end(), name);
    int idx = static_cast<int>(it - vars.begin());
    if (it == vars.end()) vars.push_back(name);
    auto n = std::const_pointer_cast<LatexExpr::Node>(make(Op::VAR));
    n->var = idx;
    return n;
  }

  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  char peek() {
    skip();
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) throw ParseFail{};
  }
  // The command name at i_ (after '\'), without consuming it.
  std::string_view command_at() {
    skip();
    if (i_ >= s_.size() || s_[i_] != '\\') return {};
    size_t j = i_ + 1;
    while (j < s_.size() && std::isalpha(static_cast<unsigned char>(s_[j]))) ++j;
    return s_.substr(i_ + 1, j - i_ - 1);
  }
  // Consumes "\name" if the command at i_ starts with `name` (spaces were removed
  // by normalisation, so "\cotx" is \cot followed by x).
  bool eat_command(std::string_view name) {
    auto c = command_at();
    if (c.size() < name.size() || c.substr(0, name.size()) != name) return false;
    // "\cdotx" is fine, but "\pix" vs "\piece": accept the prefix only when the
    // whole word is not itself a longer known word; good enough for answers.
    i_ += 1 + name.size();
    return true;
  }
  bool is_operator_command() {
    for (const char* op : kOperators) {
      auto c = command_at();
      if (c.substr(0, std::string_view(op).size()) == op) return true;
    }
    return false;
  }

  NodeP expr() {
    Depth d(*this);
    NodeP lhs;
    if (eat('-')) lhs = make(Op::NEG, term());
    else {
      eat('+');
      lhs = term();
    }
    for (;;) {
      if (eat('+')) lhs = make(Op::ADD, lhs, term());
      else if (eat('-')) lhs = make(Op::SUB, lhs, term());
      else return lhs;
    }
  }

  NodeP signed_power() {
    Depth d(*this);
    if (eat('-')) return make(Op::NEG, signed_power());
    if (eat('+')) return signed_power();
    return power();
  }

  bool starts_primary() {
    char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.' || std::isalpha(static_cast<unsigned char>(c)) ||
        c == '(' || c == '{' || c == '[')
      return true;
    if (c == '|') return abs_open_ == 0;
    if (c == '\\') return !is_operator_command() && !command_at().empty();
    return false;
  }

  NodeP term() {
    Depth d(*this);
    NodeP lhs = signed_power();
    for (;;) {
      if (eat('*') || eat_command("cdot") || eat_command("times") || eat_command("ast"))
        lhs = make(Op::MUL, lhs, signed_power());
      else if (eat('/') || eat_command("div"))
        lhs = make(Op::DIV, lhs, signed_power());
      else if (starts_primary())
        lhs = make(Op::MUL, lhs, power());
      else
        return lhs;
    }
  }

  NodeP power() {
    Depth d(*this);
    NodeP base = postfix();
    if (eat('^')) {
      NodeP e = exponent();
      base = make(Op::POW, base, e);
      while (eat('!')) base = make(Op::FACT, base);
    }
    return base;
  }

  NodeP exponent() {
    if (eat('-')) return make(Op::NEG, exponent());
    return arg();
  }

  NodeP postfix() {
    NodeP p = primary();
    while (eat('!')) p = make(Op::FACT, p);
    return p;
  }

  // A TeX macro argument: {group}, a single digit or letter, or a command.
  NodeP arg() {
    Depth d(*this);
    char c = peek();
    if (c == '{') {
      ++i_;
      NodeP e = expr();
      expect('}');
      return e;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      ++i_;
      return num(c - '0');
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      ++i_;
      return var(std::string(1, c));
    }
    if (c == '(') return primary();
    if (c == '\\') return primary();
    throw ParseFail{};
  }

  // Integer literal text of a {digits} or single-digit argument, if it is one.
  std::optional<double> integer_arg() {
    size_t save = i_;
    skip();
    if (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
      return static_cast<double>(s_[i_++] - '0');
    }
    if (i_ < s_.size() && s_[i_] == '{') {
      size_t j = i_ + 1;
      while (j < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j]))) ++j;
      if (j > i_ + 1 && j < s_.size() && s_[j] == '}') {
        double v = std::strtod(std::string(s_.substr(i_ + 1, j - i_ - 1)).c_str(), nullptr);
        i_ = j + 1;
        return v;
      }
    }
    i_ = save;
    return std::nullopt;
  }

  NodeP number() {
    size_t b = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    bool integral = true;
    if (i_ < s_.size() && s_[i_] == '.') {
      integral = false;
      ++i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {  // 1.5e6, 2E-3 (not 2e: 2*e)
      size_t j = i_ + 1;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) ++j;
      if (j < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j]))) {
        integral = false;
        i_ = j;
        while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      }
    }
    std::string text(s_.substr(b, i_ - b));
    if (text == ".") throw ParseFail{};
    double v = std::strtod(text.c_str(), nullptr);
    // Mixed number: 2\frac{1}{3} = 2 + 1/3 when all three parts are integers.
    if (integral && command_at() == "frac") {
      size_t save = i_;
      i_ += 5;
      auto n = integer_arg();
      auto d = n ? integer_arg() : std::nullopt;
      if (n && d) return num(v + *n / *d);
      i_ = save;
    }
    return num(v);
  }

  NodeP primary() {
    Depth d(*this);
    char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return number();
    if (c == '(' || c == '[' || c == '{') {
      ++i_;
      NodeP e = expr();
      expect(c == '(' ? ')' : c == '[' ? ']' : '}');
      return e;
    }
    if (c == '|') {
      ++i_;
      ++abs_open_;
      NodeP e = expr();
      --abs_open_;
      expect('|');
      return make(Op::ABS, e);
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      // A run of 3+ letters is a word (text answer), not a product of variables.
      size_t j = i_;
      while (j < s_.size() && std::isalpha(static_cast<unsigned char>(s_[j]))) ++j;
      if (j - i_ >= 3) throw ParseFail{};
      ++i_;
      return var(std::string(1, c));
    }
    if (c == '\\') return command();
    throw ParseFail{};
  }

  NodeP command() {
    if (eat_command("frac") || eat_command("cfrac")) {
      NodeP n = arg();
      return make(Op::DIV, n, arg());
    }
    if (eat_command("binom") || eat_command("dbinom") || eat_command("tbinom")) {
      NodeP n = arg();
      return make(Op::BINOM, n, arg());
    }
    if (eat_command("sqrt")) {
      double degree = 2;
      if (eat('[')) {
        size_t b = i_;
        while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
        if (i_ == b) throw ParseFail{};
        degree = std::strtod(std::string(s_.substr(b, i_ - b)).c_str(), nullptr);
        expect(']');
      }
      auto n = std::const_pointer_cast<LatexExpr::Node>(make(Op::ROOT, arg()));
      n->value = degree;
      return n;
    }
    if (eat_command("pi")) return num(M_PI);
    if (command_at() == "log" || command_at().substr(0, 3) == "log") {
      // \log_{b} x = ln x / ln b; plain \log is natural (as sympy's log).
      eat_command("log");
      if (eat('_')) {
        NodeP base = arg();
        NodeP x = function_argument();
        return make(Op::LOGB, x, base);
      }
      auto n = std::const_pointer_cast<LatexExpr::Node>(make(Op::FUNC, function_argument()));
      n->fn = Fn::LN;
      return n;
    }
    for (const auto& f : kFunctions) {
      if (command_at().substr(0, std::string_view(f.name).size()) != f.name) continue;
      eat_command(f.name);
      NodeP power_of;
      if (eat('^')) power_of = exponent();  // \sin^2 x = (\sin x)^2
      auto n = std::const_pointer_cast<LatexExpr::Node>(make(Op::FUNC, function_argument()));
      n->fn = f.fn;
      NodeP r = n;
      if (power_of) r = make(Op::POW, r, power_of);
      return r;
    }
    for (const char* g : kGreek) {
      if (command_at() == g) {
        eat_command(g);
        return var(std::string("\\") + g);
      }
    }
    throw ParseFail{};  // \infty, \pm, \cup, unknown macros: not arithmetic
  }

  NodeP function_argument() {
    if (peek() == '(' || peek() == '{') return primary();
    return signed_power();
  }
};

double factorial(double n) {
  if (n < 0 || n > 170 || std::floor(n) != n) return NAN;
  return std::tgamma(n + 1);
}

double eval_node(const LatexExpr::Node& n, const std::vector<double>& x) {
  auto A = [&] { return eval_node(*n.a, x); };
  auto B = [&] { return eval_node(*n.b, x); };
  switch (n.op) {
    case Op::NUM: return n.value;
    case Op::VAR: return x.at(n.var);
    case Op::NEG: return -A();
    case Op::ADD: return A() + B();
    case Op::SUB: return A() - B();
    case Op::MUL: return A() * B();
    case Op::DIV: {
      double d = B();
      return d == 0 ? NAN : A() / d;
    }
    case Op::POW: {
      double b = A(), e = B();
      if (std::abs(e) > 1e4) return NAN;
      return std::pow(b, e);
    }
    case Op::ROOT: {
      double v = A();
      if (n.value == 2) return v < 0 ? NAN : std::sqrt(v);
      if (v < 0 && std::fmod(n.value, 2) == 1) return -std::pow(-v, 1.0 / n.value);
      return v < 0 ? NAN : std::pow(v, 1.0 / n.value);
    }
    case Op::FACT: return factorial(A());
    case Op::ABS: return std::abs(A());
    case Op::BINOM: {
      double nn = A(), k = B();
      return factorial(nn) / (factorial(k) * factorial(nn - k));
    }
    case Op::LOGB: return std::log(A()) / std::log(B());
    case Op::FUNC: {
      double v = A();
      switch (n.fn) {
        case Fn::SIN: return std::sin(v);
        case Fn::COS: return std::cos(v);
        case Fn::TAN: return std::tan(v);
        case Fn::COT: return 1 / std::tan(v);
        case Fn::SEC: return 1 / std::cos(v);
        case Fn::CSC: return 1 / std::sin(v);
        case Fn::ASIN: return std::asin(v);
        case Fn::ACOS: return std::acos(v);
        case Fn::ATAN: return std::atan(v);
        case Fn::LN: return std::log(v);
        case Fn::LOG: return std::log(v);
        case Fn::EXP: return std::exp(v);
        case Fn::SINH: return std::sinh(v);
        case Fn::COSH: return std::cosh(v);
        case Fn::TANH: return std::tanh(v);
      }
      return NAN;
    }
  }
  return NAN;
}

}  // namespace

std::optional<LatexExpr> LatexExpr::parse(std::string_view s) {
  if (s.empty() || s.size() > kMaxChars) return std::nullopt;
  try {
    Parser p(s);
    LatexExpr e;
    e.root_ = p.parse_all();
    // Renumber variables in sorted order so two expressions can be aligned by name.
    std::vector<std::string> sorted = p.vars;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != p.vars) {
      // Rebuild VAR indices: cheap, trees are small.
      std::map<int, int> remap;
      for (size_t i = 0; i < p.vars.size(); ++i)
        remap[static_cast<int>(i)] =
            static_cast<int>(std::find(sorted.begin(), sorted.end(), p.vars[i]) - sorted.begin());
      std::function<NodeP(const NodeP&)> fix = [&](const NodeP& n) -> NodeP {
        if (!n) return n;
        auto c = std::make_shared<Node>(*n);
        if (c->op == Op::VAR) c->var = remap[c->var];
        c->a = fix(n->a);
        c->b = fix(n->b);
        return c;
      };
      e.root_ = fix(e.root_);
    }
    e.vars_ = std::move(sorted);
    return e;
  } catch (const ParseFail&) {
    return std::nullopt;
  }
}

double LatexExpr::eval(const std::vector<double>& values) const { return eval_node(*root_, values); }

bool numeric_close(double a, double b, double rel_tol) {
  return std::abs(a - b) <= rel_tol * std::max(std::abs(a), std::abs(b));
}

bool expr_equivalent(const LatexExpr& a, const LatexExpr& b, double rel_tol, bool up_to_scale) {
  std::vector<std::string> names = a.variables();
  for (auto& v : b.variables())
    if (std::find(names.begin(), names.end(), v) == names.end()) names.push_back(v);
  auto pick = [&](const LatexExpr& e, const std::vector<double>& all) {
    std::vector<double> out;
    for (auto& v : e.variables()) out.push_back(all[std::find(names.begin(), names.end(), v) - names.begin()]);
    return out;
  };
  const int points = names.empty() ? 1 : 6;
  Rng rng(0x5eed);  // fixed: the verdict must not depend on a run
  int defined = 0;
  double scale = 0;
  for (int p = 0; p < points; ++p) {
    std::vector<double> all(names.size());
    for (auto& v : all) v = 0.31 + 1.7 * rng.uniform();
    double va = a.eval(pick(a, all)), vb = b.eval(pick(b, all));
    if (!std::isfinite(va) || !std::isfinite(vb)) continue;
    ++defined;
    // Near-zero values (cancellation noise in x - x) compare absolutely.
    const double tiny = 1e-9;
    if (up_to_scale) {
      if (std::abs(va) < tiny && std::abs(vb) < tiny) continue;
      if (std::abs(vb) < tiny || std::abs(va) < tiny) return false;
      if (scale == 0) {
        scale = va / vb;
        continue;
      }
      if (!numeric_close(va, scale * vb, rel_tol)) return false;
    } else {
      if (std::abs(va) < tiny && std::abs(vb) < tiny) continue;
      if (!numeric_close(va, vb, rel_tol)) return false;
    }
  }
  return names.empty() ? defined == 1 : defined >= 2;
}

}  // namespace prefopt
