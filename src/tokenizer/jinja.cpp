// prefopt Jinja engine: lexer (whitespace control, trim/lstrip blocks) -> parser (Jinja2's
// grammar and operator precedence) -> tree-walking interpreter over Python-like values.
// Values print as Python's str() (True, None, 1.0, ['a', 1]); strings are UTF-8 and their
// length, indexing and slicing count code points as Python does.
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer_impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace prefopt::jinja {

namespace {

using ojson = nlohmann::ordered_json;

// ---------------------------------------------------------------- values

enum class K : uint8_t { Undef, None, Bool, Int, Float, Str, List, Dict, Func };

struct Value;
struct Dict;
struct Args;
struct Interp;
using Fn = std::function<Value(Interp&, Args&)>;

struct Value {
  K k = K::Undef;
  bool b = false;
  bool tuple = false;  // a List that prints as (a, b)
  bool ns = false;     // a Dict that is a namespace() (attribute assignment allowed)
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str text; for Undef the error text used when it is misused
  std::shared_ptr<std::vector<Value>> l;
  std::shared_ptr<Dict> d;
  std::shared_ptr<Fn> fn;
};

struct Dict {
  std::vector<std::pair<std::string, Value>> kv;
  const Value* find(const std::string& key) const {
    for (auto& p : kv)
      if (p.first == key) return &p.second;
    return nullptr;
  }
  void set(const std::string& key, Value v) {
    for (auto& p : kv)
      if (p.first == key) {
        p.second = std::move(v);
        return;
      }
    kv.emplace_back(key, std::move(v));
  }
};

// A failure raised anywhere during rendering; Template::render adds the template and line.
struct Raise {
  std::string kind, msg;
};
[[noreturn]] void raise(const std::string& kind, const std::string& msg) { throw Raise{kind, msg}; }
[[noreturn]] void type_error(const std::string& msg) { raise("TypeError", msg); }

Value undef(std::string msg) {
  Value v;
  v.s = std::move(msg);
  return v;
}
Value none() {
  Value v;
  v.k = K::None;
  return v;
}
Value boolean(bool b) {
  Value v;
  v.k = K::Bool;
  v.b = b;
  return v;
}
Value integer(int64_t i) {
  Value v;
  v.k = K::Int;
  v.i = i;
  return v;
}
Value real(double f) {
  Value v;
  v.k = K::Float;
  v.f = f;
  return v;
}
Value str(std::string s) {
  Value v;
  v.k = K::Str;
  v.s = std::move(s);
  return v;
}
Value list(std::vector<Value> items = {}, bool tuple = false) {
  Value v;
  v.k = K::List;
  v.tuple = tuple;
  v.l = std::make_shared<std::vector<Value>>(std::move(items));
  return v;
}
Value dict() {
  Value v;
  v.k = K::Dict;
  v.d = std::make_shared<Dict>();
  return v;
}
Value func(Fn f) {
  Value v;
  v.k = K::Func;
  v.fn = std::make_shared<Fn>(std::move(f));
  return v;
}

[[noreturn]] void undefined_error(const Value& v) {
  raise("UndefinedError", v.s.empty() ? "undefined value" : v.s);
}

const char* type_name(const Value& v) {
  switch (v.k) {
    case K::Undef: return "Undefined";
    case K::None: return "NoneType";
    case K::Bool: return "bool";
    case K::Int: return "int";
    case K::Float: return "float";
    case K::Str: return "str";
    case K::List: return v.tuple ? "tuple" : "list";
    case K::Dict: return v.ns ? "Namespace" : "dict";
    case K::Func: return "function";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.k) {
    case K::Undef:
    case K::None: return false;
    case K::Bool: return v.b;
    case K::Int: return v.i != 0;
    case K::Float: return v.f != 0;
    case K::Str: return !v.s.empty();
    case K::List: return !v.l->empty();
    case K::Dict: return v.ns || !v.d->kv.empty();
    case K::Func: return true;
  }
  return false;
}

// ---- UTF-8 code points (Python str semantics for len, index, slice, iteration)

bool is_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}
// Byte offset of each code point, plus s.size() at the end.
std::vector<size_t> cp_offsets(const std::string& s) {
  std::vector<size_t> o;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) o.push_back(i);
  o.push_back(s.size());
  return o;
}
size_t cp_len(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
uint32_t decode_cp(const std::string& s, size_t i, size_t* len) {
  unsigned char c = s[i];
  int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (i + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  *len = n;
  return cp;
}
void append_cp(std::string& o, uint32_t cp) { o += encode_cp(cp); }  // the tokenizer's UTF-8 encoder
// Python's str.isspace() code points.
bool py_space(uint32_t c) {
  return (c >= 9 && c <= 13) || c == 32 || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// str.strip / lstrip / rstrip: chars = nullptr strips whitespace, else any code point in chars.
std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars)
    for (size_t i = 0, n; i < chars->size(); i += n) set.push_back(decode_cp(*chars, i, &n));
  auto strip_it = [&](uint32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : py_space(c);
  };
  std::vector<size_t> off = cp_offsets(s);
  size_t b = 0, e = off.size() - 1;
  size_t n;
  if (left)
    while (b < e && strip_it(decode_cp(s, off[b], &n))) ++b;
  if (right)
    while (e > b && strip_it(decode_cp(s, off[e - 1], &n))) --e;
  return s.substr(off[b], off[e] - off[b]);
}

std::string ascii_lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}
std::string ascii_upper(std::string s) {
  for (auto& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}
bool is_alpha_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }

std::string py_title(const std::string& s) {
  std::string o = s;
  bool prev = false;
  for (auto& c : o) {
    unsigned char u = c;
    bool alpha = is_alpha_byte(u);
    if (u < 0x80 && alpha) c = prev ? char(std::tolower(u)) : char(std::toupper(u));
    prev = alpha || (u >= '0' && u <= '9' && false);
  }
  return o;
}
std::string py_capitalize(const std::string& s) {
  std::string o = ascii_lower(s);
  if (!o.empty() && o[0] >= 'a' && o[0] <= 'z') o[0] = char(o[0] - 'a' + 'A');
  return o;
}

// ---- printing (Python str / repr)

std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  // buf = "[-]d.ddde[+-]XX"
  std::string m(buf);
  size_t epos = m.find('e');
  int exp10 = std::atoi(m.c_str() + epos + 1);
  std::string mant = m.substr(0, epos);
  bool neg = mant[0] == '-';
  if (neg) mant = mant.substr(1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp10 >= -5 && exp10 < 16) {  // Python repr switches to exponent form below 1e-4
    if (exp10 < -4) {
      // handled by exponent form below
    } else if (exp10 < 0) {
      out = "0." + std::string(size_t(-exp10 - 1), '0') + digits;
      return (neg ? "-" : "") + out;
    } else {
      if (digits.size() <= size_t(exp10) + 1) {
        out = digits + std::string(size_t(exp10) + 1 - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, size_t(exp10) + 1) + "." + digits.substr(size_t(exp10) + 1);
      }
      return (neg ? "-" : "") + out;
    }
  }
  out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
  return (neg ? "-" : "") + out + eb;
}

std::string str_repr(const std::string& s) {
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string o(1, q);
  for (unsigned char c : s) {
    if (c == '\\') o += "\\\\";
    else if (c == static_cast<unsigned char>(q)) o += std::string("\\") + q;
    else if (c == '\n') o += "\\n";
    else if (c == '\r') o += "\\r";
    else if (c == '\t') o += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    } else o += char(c);
  }
  return o + q;
}

std::string to_str(const Value& v);
std::string repr(const Value& v) {
  if (v.k == K::Str) return str_repr(v.s);
  if (v.k == K::List) {
    std::string o = v.tuple ? "(" : "[";
    for (size_t i = 0; i < v.l->size(); ++i) o += (i ? ", " : "") + repr((*v.l)[i]);
    if (v.tuple && v.l->size() == 1) o += ",";
    return o + (v.tuple ? ")" : "]");
  }
  if (v.k == K::Dict) {
    std::string o = v.ns ? "<Namespace {" : "{";
    bool first = true;
    for (auto& [key, val] : v.d->kv) {
      o += (first ? "" : ", ") + str_repr(key) + ": " + repr(val);
      first = false;
    }
    return o + (v.ns ? "}>" : "}");
  }
  return to_str(v);
}
std::string to_str(const Value& v) {
  switch (v.k) {
    case K::Undef: return "";
    case K::None: return "None";
    case K::Bool: return v.b ? "True" : "False";
    case K::Int: return std::to_string(v.i);
    case K::Float: return float_repr(v.f);
    case K::Str: return v.s;
    case K::Func: return "<function>";
    default: return repr(v);
  }
}

// ---- JSON (transformers' tojson = json.dumps(ensure_ascii=False, indent=..., separators=None))

void json_str(const std::string& s, std::string& o, bool ensure_ascii) {
  o += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    if (c == '"') o += "\\\"";
    else if (c == '\\') o += "\\\\";
    else if (c == '\n') o += "\\n";
    else if (c == '\r') o += "\\r";
    else if (c == '\t') o += "\\t";
    else if (c == '\b') o += "\\b";
    else if (c == '\f') o += "\\f";
    else if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else if (c >= 0x80 && ensure_ascii) {
      size_t n;
      uint32_t cp = decode_cp(s, i, &n);
      char b[16];
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(b, sizeof b, "\\u%04x", cp);
      }
      o += b;
      i += n;
      continue;
    } else o += char(c);
    ++i;
  }
  o += '"';
}

void to_json(const Value& v, std::string& o, int indent, int level, bool ensure_ascii, bool sort_keys,
             const std::string& item_sep, const std::string& key_sep) {
  auto nl = [&](int lv) {
    if (indent < 0) return;
    o += '\n';
    o += std::string(size_t(indent * lv), ' ');
  };
  switch (v.k) {
    case K::None: o += "null"; return;
    case K::Bool: o += v.b ? "true" : "false"; return;
    case K::Int: o += std::to_string(v.i); return;
    case K::Float:
      if (std::isnan(v.f)) o += "NaN";
      else if (std::isinf(v.f)) o += v.f > 0 ? "Infinity" : "-Infinity";
      else o += float_repr(v.f);
      return;
    case K::Str: json_str(v.s, o, ensure_ascii); return;
    case K::List: {
      if (v.l->empty()) {
        o += "[]";
        return;
      }
      o += '[';
      for (size_t i = 0; i < v.l->size(); ++i) {
        if (i) o += item_sep;
        nl(level + 1);
        to_json((*v.l)[i], o, indent, level + 1, ensure_ascii, sort_keys, item_sep, key_sep);
      }
      nl(level);
      o += ']';
      return;
    }
    case K::Dict: {
      if (v.ns) type_error("Object of type Namespace is not JSON serializable");
      if (v.d->kv.empty()) {
        o += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (auto& p : v.d->kv) items.push_back(&p);
      if (sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      o += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) o += item_sep;
        nl(level + 1);
        json_str(items[i]->first, o, ensure_ascii);
        o += key_sep;
        to_json(items[i]->second, o, indent, level + 1, ensure_ascii, sort_keys, item_sep, key_sep);
      }
      nl(level);
      o += '}';
      return;
    }
    case K::Undef: type_error("Object of type Undefined is not JSON serializable");
    case K::Func: type_error("Object of type function is not JSON serializable");
  }
}

Value from_json(const ojson& j) {
  switch (j.type()) {
    case ojson::value_t::null: return none();
    case ojson::value_t::boolean: return boolean(j.get<bool>());
    case ojson::value_t::number_integer: return integer(j.get<int64_t>());
    case ojson::value_t::number_unsigned: return integer(static_cast<int64_t>(j.get<uint64_t>()));
    case ojson::value_t::number_float: return real(j.get<double>());
    case ojson::value_t::string: return str(j.get<std::string>());
    case ojson::value_t::array: {
      std::vector<Value> v;
      v.reserve(j.size());
      for (auto& e : j) v.push_back(from_json(e));
      return list(std::move(v));
    }
    case ojson::value_t::object: {
      Value d = dict();
      for (auto it = j.begin(); it != j.end(); ++it) d.d->kv.emplace_back(it.key(), from_json(it.value()));
      return d;
    }
    default: return none();
  }
}

// ---- equality, ordering, arithmetic (Python semantics)

bool is_num(const Value& v) { return v.k == K::Int || v.k == K::Float || v.k == K::Bool; }
double num(const Value& v) { return v.k == K::Float ? v.f : v.k == K::Int ? double(v.i) : double(v.b); }
int64_t inum(const Value& v) { return v.k == K::Int ? v.i : int64_t(v.b); }

bool equal(const Value& a, const Value& b) {
  if (is_num(a) && is_num(b)) {
    if (a.k != K::Float && b.k != K::Float) return inum(a) == inum(b);
    return num(a) == num(b);
  }
  if (a.k != b.k) return false;
  switch (a.k) {
    case K::Undef:
    case K::None: return true;
    case K::Str: return a.s == b.s;
    case K::List:
      if (a.l->size() != b.l->size()) return false;
      for (size_t i = 0; i < a.l->size(); ++i)
        if (!equal((*a.l)[i], (*b.l)[i])) return false;
      return true;
    case K::Dict: {
      if (a.d == b.d) return true;
      if (a.ns || b.ns || a.d->kv.size() != b.d->kv.size()) return false;
      for (auto& [key, val] : a.d->kv) {
        const Value* o = b.d->find(key);
        if (!o || !equal(val, *o)) return false;
      }
      return true;
    }
    case K::Func: return a.fn == b.fn;
    default: return false;
  }
}

int compare(const Value& a, const Value& b, const char* op) {
  if (a.k == K::Undef) undefined_error(a);
  if (b.k == K::Undef) undefined_error(b);
  if (is_num(a) && is_num(b)) {
    if (a.k != K::Float && b.k != K::Float) return inum(a) < inum(b) ? -1 : inum(a) > inum(b);
    return num(a) < num(b) ? -1 : num(a) > num(b);
  }
  if (a.k == K::Str && b.k == K::Str) return a.s < b.s ? -1 : a.s > b.s;
  if (a.k == K::List && b.k == K::List) {
    for (size_t i = 0; i < std::min(a.l->size(), b.l->size()); ++i) {
      if (equal((*a.l)[i], (*b.l)[i])) continue;
      return compare((*a.l)[i], (*b.l)[i], op);
    }
    return a.l->size() < b.l->size() ? -1 : a.l->size() > b.l->size();
  }
  type_error(fmt::format("'{}' not supported between instances of '{}' and '{}'", op, type_name(a), type_name(b)));
}

bool contains(const Value& container, const Value& item) {
  switch (container.k) {
    case K::Undef: return false;  // Jinja's Undefined iterates as empty
    case K::Str:
      if (item.k != K::Str)
        type_error(fmt::format("'in <string>' requires string as left operand, not {}", type_name(item)));
      return container.s.find(item.s) != std::string::npos;
    case K::List:
      for (auto& e : *container.l)
        if (equal(e, item)) return true;
      return false;
    case K::Dict:
      if (item.k != K::Str) return false;
      return container.d->find(item.s) != nullptr;
    default: type_error(fmt::format("argument of type '{}' is not iterable", type_name(container)));
  }
}

int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

Value arith(const std::string& op, const Value& a, const Value& b) {
  if (a.k == K::Undef) undefined_error(a);
  if (b.k == K::Undef) undefined_error(b);
  auto bad = [&]() -> Value {
    type_error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
  };
  if (op == "+") {
    if (a.k == K::Str && b.k == K::Str) return str(a.s + b.s);
    if (a.k == K::List && b.k == K::List) {
      std::vector<Value> v = *a.l;
      v.insert(v.end(), b.l->begin(), b.l->end());
      return list(std::move(v), a.tuple);
    }
    if (a.k == K::Str || b.k == K::Str)
      type_error(a.k == K::Str ? fmt::format("can only concatenate str (not \"{}\") to str", type_name(b))
                               : bad().s);
  }
  if (op == "*") {
    const Value* seq = a.k == K::Str || a.k == K::List ? &a : b.k == K::Str || b.k == K::List ? &b : nullptr;
    const Value* n = seq == &a ? &b : &a;
    if (seq && (n->k == K::Int || n->k == K::Bool)) {
      int64_t times = std::max<int64_t>(0, inum(*n));
      if (seq->k == K::Str) {
        std::string o;
        for (int64_t t = 0; t < times; ++t) o += seq->s;
        return str(o);
      }
      std::vector<Value> v;
      for (int64_t t = 0; t < times; ++t) v.insert(v.end(), seq->l->begin(), seq->l->end());
      return list(std::move(v));
    }
  }
  if (op == "%" && a.k == K::Str) type_error("printf-style '%' string formatting is not supported; use ~ or format");
  if (!is_num(a) || !is_num(b)) return bad();
  bool ints = a.k != K::Float && b.k != K::Float;
  if (op == "/") {
    if (num(b) == 0) raise("ZeroDivisionError", "division by zero");
    return real(num(a) / num(b));
  }
  if (ints) {
    int64_t x = inum(a), y = inum(b);
    if (op == "+") return integer(x + y);
    if (op == "-") return integer(x - y);
    if (op == "*") return integer(x * y);
    if (op == "//" || op == "%") {
      if (y == 0) raise("ZeroDivisionError", "integer division or modulo by zero");
      int64_t q = floordiv(x, y);
      return integer(op == "//" ? q : x - q * y);
    }
    if (op == "**") {
      if (y < 0) return real(std::pow(double(x), double(y)));
      int64_t r = 1;
      for (int64_t k = 0; k < y; ++k) r *= x;
      return integer(r);
    }
  } else {
    double x = num(a), y = num(b);
    if (op == "+") return real(x + y);
    if (op == "-") return real(x - y);
    if (op == "*") return real(x * y);
    if (op == "//" || op == "%") {
      if (y == 0) raise("ZeroDivisionError", "float division by zero");
      double q = std::floor(x / y);
      return real(op == "//" ? q : x - q * y);
    }
    if (op == "**") return real(std::pow(x, y));
  }
  return bad();
}

// ---------------------------------------------------------------- lexer

enum class TK { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, Str, Int, Float, Op, Eof };
struct Tok {
  TK k;
  std::string v;
  int line;
  int64_t i = 0;
  double f = 0;
};

struct Lexer {
  const std::string& origin;
  std::string src;
  size_t pos = 0;
  int line = 1;
  std::vector<Tok> out;

  [[noreturn]] void error(const std::string& what) {
    fail(origin + " line " + std::to_string(line), what, "the chat template is not valid Jinja");
  }
  static bool ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
  static std::string rstrip(const std::string& s) {
    size_t e = s.size();
    while (e > 0 && ws(s[e - 1])) --e;
    return s.substr(0, e);
  }
  void count_lines(const std::string& s) { line += int(std::count(s.begin(), s.end(), '\n')); }
  void data(const std::string& s, int at_line) {
    if (!s.empty()) out.push_back({TK::Data, s, at_line});
  }

  // lstrip_blocks / "-" on a tag opening: what remains of the text before it.
  static std::string strip_before(std::string text, char sign, bool is_var, bool line_starting) {
    if (sign == '-') return rstrip(text);
    if (sign == '+' || is_var) return text;
    size_t lpos = text.rfind('\n');
    lpos = lpos == std::string::npos ? 0 : lpos + 1;
    if (lpos > 0 || line_starting) {
      bool all_ws = lpos < text.size();
      for (size_t k = lpos; k < text.size(); ++k)
        if (!ws(text[k])) all_ws = false;
      if (all_ws) text.resize(lpos);
    }
    return text;
  }
  // After a tag's closing delimiter: "-" strips all whitespace, trim_blocks one newline
  // (block and comment tags only). Returns whether the consumed part ended with a newline.
  bool after_close(char sign, bool is_var) {
    size_t start = pos;
    if (sign == '-') {
      while (pos < src.size() && ws(src[pos])) ++pos;
    } else if (!is_var && sign != '+' && pos < src.size() && src[pos] == '\n') {
      ++pos;
    }
    count_lines(src.substr(start, pos - start));
    return pos > start && src[pos - 1] == '\n';
  }

  void run() {
    // Newlines normalised to \n and one trailing newline dropped (keep_trailing_newline=False).
    std::string s;
    for (size_t k = 0; k < src.size(); ++k) {
      if (src[k] == '\r') {
        s += '\n';
        if (k + 1 < src.size() && src[k + 1] == '\n') ++k;
      } else s += src[k];
    }
    if (!s.empty() && s.back() == '\n') s.pop_back();
    src = std::move(s);
    bool line_starting = true;
    while (pos < src.size()) {
      size_t p = pos;
      while (true) {
        p = src.find('{', p);
        if (p == std::string::npos || p + 1 >= src.size()) {
          p = std::string::npos;
          break;
        }
        char c = src[p + 1];
        if (c == '{' || c == '%' || c == '#') break;
        ++p;
      }
      if (p == std::string::npos) {
        data(src.substr(pos), line);
        count_lines(src.substr(pos));
        break;
      }
      char kind = src[p + 1];
      size_t q = p + 2;
      char sign = 0;
      if (q < src.size() && (src[q] == '-' || src[q] == '+')) sign = src[q++];
      std::string text = src.substr(pos, p - pos);
      int text_line = line;
      count_lines(text);
      data(strip_before(text, sign, kind == '{', line_starting), text_line);
      pos = q;
      if (kind == '#') {
        size_t e = src.find("#}", pos);
        if (e == std::string::npos) error("unclosed comment {# ... #}");
        char csign = e > pos && (src[e - 1] == '-' || src[e - 1] == '+') ? src[e - 1] : 0;
        count_lines(src.substr(pos, e + 2 - pos));
        pos = e + 2;
        bool nl = after_close(csign, false);
        line_starting = nl;
        continue;
      }
      if (kind == '%' && raw_block(line_starting)) {
        line_starting = pos > 0 && src[pos - 1] == '\n';
        continue;
      }
      out.push_back({kind == '{' ? TK::VarBegin : TK::BlockBegin, "", line});
      char end_sign = 0;
      tag_tokens(kind, &end_sign);
      out.push_back({kind == '{' ? TK::VarEnd : TK::BlockEnd, "", line});
      line_starting = after_close(end_sign, kind == '{');
    }
    out.push_back({TK::Eof, "", line});
  }

  // {% raw %}...{% endraw %}: the body is data, untouched.
  bool raw_block(bool line_starting) {
    size_t k = pos;
    while (k < src.size() && ws(src[k])) ++k;
    if (src.compare(k, 3, "raw") != 0) return false;
    k += 3;
    while (k < src.size() && ws(src[k])) ++k;
    char sign = 0;
    if (k < src.size() && (src[k] == '-' || src[k] == '+')) sign = src[k++];
    if (src.compare(k, 2, "%}") != 0) return false;
    pos = k + 2;
    after_close(sign, false);
    // find {%[-+]? endraw [-+]?%}
    size_t search = pos;
    while (true) {
      size_t b = src.find("{%", search);
      if (b == std::string::npos) error("{% raw %} without {% endraw %}");
      size_t m = b + 2;
      char bsign = 0;
      if (m < src.size() && (src[m] == '-' || src[m] == '+')) bsign = src[m++];
      while (m < src.size() && ws(src[m])) ++m;
      if (src.compare(m, 6, "endraw") == 0) {
        m += 6;
        while (m < src.size() && ws(src[m])) ++m;
        char esign = 0;
        if (m < src.size() && (src[m] == '-' || src[m] == '+')) esign = src[m++];
        if (src.compare(m, 2, "%}") == 0) {
          std::string body = src.substr(pos, b - pos);
          int l0 = line;
          count_lines(body);
          data(strip_before(body, bsign, false, line_starting), l0);
          pos = m + 2;
          after_close(esign, false);
          return true;
        }
      }
      search = b + 2;
    }
  }

  void tag_tokens(char kind, char* end_sign) {
    int depth = 0;
    static const char* ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                "=",  ".",  ",",  ":",  "|",  "(",  ")", "[", "]", "{", "}"};
    while (true) {
      while (pos < src.size() && ws(src[pos])) {
        if (src[pos] == '\n') ++line;
        ++pos;
      }
      if (pos >= src.size()) error(kind == '{' ? "unclosed {{ ... }}" : "unclosed {% ... %}");
      if (depth == 0) {
        const char* close = kind == '{' ? "}}" : "%}";
        for (char sg : {'-', '+', '\0'}) {
          size_t k = pos;
          if (sg) {
            if (src[k] != sg) continue;
            ++k;
          }
          if (src.compare(k, 2, close) == 0) {
            *end_sign = sg;
            pos = k + 2;
            return;
          }
        }
      }
      char c = src[pos];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t b = pos;
        while (pos < src.size() && (std::isalnum(static_cast<unsigned char>(src[pos])) || src[pos] == '_')) ++pos;
        out.push_back({TK::Name, src.substr(b, pos - b), line});
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t b = pos;
        while (pos < src.size() && (std::isdigit(static_cast<unsigned char>(src[pos])) || src[pos] == '_')) ++pos;
        bool is_float = false;
        if (pos + 1 < src.size() && src[pos] == '.' && std::isdigit(static_cast<unsigned char>(src[pos + 1]))) {
          is_float = true;
          ++pos;
          while (pos < src.size() && (std::isdigit(static_cast<unsigned char>(src[pos])) || src[pos] == '_')) ++pos;
        }
        if (pos < src.size() && (src[pos] == 'e' || src[pos] == 'E')) {
          size_t k = pos + 1;
          if (k < src.size() && (src[k] == '+' || src[k] == '-')) ++k;
          if (k < src.size() && std::isdigit(static_cast<unsigned char>(src[k]))) {
            is_float = true;
            pos = k;
            while (pos < src.size() && std::isdigit(static_cast<unsigned char>(src[pos]))) ++pos;
          }
        }
        std::string t;
        for (size_t k = b; k < pos; ++k)
          if (src[k] != '_') t += src[k];
        Tok tk{is_float ? TK::Float : TK::Int, t, line};
        if (is_float) tk.f = std::strtod(t.c_str(), nullptr);
        else tk.i = std::strtoll(t.c_str(), nullptr, 10);
        out.push_back(tk);
        continue;
      }
      if (c == '\'' || c == '"') {
        out.push_back({TK::Str, string_literal(c), line});
        continue;
      }
      bool matched = false;
      for (const char* op : ops) {
        size_t n = std::strlen(op);
        if (src.compare(pos, n, op) == 0) {
          if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++depth;
          if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && n == 1) {
            if (depth == 0) error(fmt::format("unexpected '{}'", op));
            --depth;
          }
          out.push_back({TK::Op, op, line});
          pos += n;
          matched = true;
          break;
        }
      }
      if (!matched) error(fmt::format("unexpected character '{}'", c));
    }
  }

  std::string string_literal(char q) {
    ++pos;
    std::string o;
    while (true) {
      if (pos >= src.size()) error("unterminated string literal");
      char c = src[pos];
      if (c == q) {
        ++pos;
        return o;
      }
      if (c == '\n') ++line;
      if (c != '\\') {
        o += c;
        ++pos;
        continue;
      }
      if (pos + 1 >= src.size()) error("unterminated string literal");
      char e = src[pos + 1];
      pos += 2;
      switch (e) {
        case 'n': o += '\n'; break;
        case 't': o += '\t'; break;
        case 'r': o += '\r'; break;
        case 'b': o += '\b'; break;
        case 'f': o += '\f'; break;
        case 'v': o += '\v'; break;
        case 'a': o += '\a'; break;
        case '0': o += '\0'; break;
        case '\\': o += '\\'; break;
        case '\'': o += '\''; break;
        case '"': o += '"'; break;
        case '\n': ++line; break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (pos + n > src.size()) error("truncated \\" + std::string(1, e) + " escape");
          uint32_t cp = uint32_t(std::strtoul(src.substr(pos, n).c_str(), nullptr, 16));
          append_cp(o, cp);
          pos += n;
          break;
        }
        default:
          o += '\\';
          o += e;
      }
    }
  }
};

// ---------------------------------------------------------------- AST

enum class EK { Lit, Name, List, Tuple, Dict, Attr, Item, Slice, Call, Filter, Test, Neg, Pos, Not, Bin, Cmp, And, Or, Cond, Concat };
struct Expr;
using EP = std::unique_ptr<Expr>;
struct Expr {
  EK k;
  int line = 0;
  Value lit;
  std::string name;  // Name, Attr, Filter, Test; Bin operator
  bool neg = false;  // Test: "is not"
  std::vector<EP> a;
  std::vector<std::string> ops;  // Cmp
  std::vector<std::pair<std::string, EP>> kw;
};

enum class NK { Text, Out, If, For, Set, SetBlock, Macro, Break, Continue, Gen, FilterBlock, With };
struct Node;
using Body = std::vector<std::unique_ptr<Node>>;
struct Node {
  NK k;
  int line = 0;
  std::string text;  // Text; Macro name
  EP e;              // Out expr; For iterable; Set value; FilterBlock filter (value slot empty)
  EP target;         // Set / SetBlock / For target
  EP cond;           // For ... if cond
  std::vector<std::pair<EP, Body>> branches;  // If / elif
  Body body, else_body;
  std::vector<std::pair<std::string, EP>> params;  // Macro params (default may be null); With assignments
};

// ---------------------------------------------------------------- parser

struct Parser {
  const std::string& origin;
  std::vector<Tok>& t;
  size_t p = 0;
  bool has_generation = false;
  int nesting = 0;  // expression / block nesting, bounded so deep input cannot exhaust the stack

  struct Nest {
    Parser& ps;
    explicit Nest(Parser& p) : ps(p) {
      if (++ps.nesting > 256) ps.error("the template nests expressions or blocks more than 256 deep");
    }
    ~Nest() { --ps.nesting; }
  };

  const Tok& cur() const { return t[p]; }
  [[noreturn]] void error(const std::string& what) {
    fail(origin + " line " + std::to_string(cur().line), what, "the chat template is not valid Jinja");
  }
  bool is_op(const char* op) const { return cur().k == TK::Op && cur().v == op; }
  bool is_name(const char* n) const { return cur().k == TK::Name && cur().v == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    ++p;
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    ++p;
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(fmt::format("expected '{}', found {}", op, describe()));
  }
  std::string expect_name() {
    if (cur().k != TK::Name) error("expected a name, found " + describe());
    return t[p++].v;
  }
  std::string describe() const {
    switch (cur().k) {
      case TK::Data: return "template text";
      case TK::VarEnd: return "'}}'";
      case TK::BlockEnd: return "'%}'";
      case TK::Eof: return "the end of the template";
      case TK::Str: return "a string";
      default: return "'" + cur().v + "'";
    }
  }
  EP mk(EK k) {
    auto e = std::make_unique<Expr>();
    e->k = k;
    e->line = cur().line;
    return e;
  }

  // expression := condexpr
  EP expression(bool with_cond = true) {
    Nest guard(*this);
    EP e = parse_or();
    if (!with_cond) return e;
    while (is_name("if")) {
      ++p;
      EP c = mk(EK::Cond);
      EP test = parse_or();
      EP other;
      if (skip_name("else")) other = expression();
      c->a.push_back(std::move(test));
      c->a.push_back(std::move(e));
      c->a.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }
  EP parse_or() {
    EP l = parse_and();
    while (is_name("or")) {
      EP o = mk(EK::Or);
      ++p;
      o->a.push_back(std::move(l));
      o->a.push_back(parse_and());
      l = std::move(o);
    }
    return l;
  }
  EP parse_and() {
    EP l = parse_not();
    while (is_name("and")) {
      EP o = mk(EK::And);
      ++p;
      o->a.push_back(std::move(l));
      o->a.push_back(parse_not());
      l = std::move(o);
    }
    return l;
  }
  EP parse_not() {
    Nest guard(*this);
    if (is_name("not")) {
      EP n = mk(EK::Not);
      ++p;
      n->a.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }
  EP parse_compare() {
    EP first = parse_math1();
    EP c;
    while (true) {
      std::string op;
      if (cur().k == TK::Op && (cur().v == "==" || cur().v == "!=" || cur().v == "<" || cur().v == ">" ||
                                cur().v == "<=" || cur().v == ">=")) {
        op = cur().v;
        ++p;
      } else if (is_name("in")) {
        op = "in";
        ++p;
      } else if (is_name("not") && t[p + 1].k == TK::Name && t[p + 1].v == "in") {
        op = "notin";
        p += 2;
      } else {
        break;
      }
      if (!c) {
        c = mk(EK::Cmp);
        c->a.push_back(std::move(first));
      }
      c->ops.push_back(op);
      c->a.push_back(parse_math1());
    }
    return c ? std::move(c) : std::move(first);
  }
  EP binop(EP l, const std::string& op, EP r) {
    EP b = mk(EK::Bin);
    b->name = op;
    b->a.push_back(std::move(l));
    b->a.push_back(std::move(r));
    return b;
  }
  EP parse_math1() {
    EP l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = t[p++].v;
      l = binop(std::move(l), op, parse_concat());
    }
    return l;
  }
  EP parse_concat() {
    EP first = parse_math2();
    if (!is_op("~")) return first;
    EP c = mk(EK::Concat);
    c->a.push_back(std::move(first));
    while (skip_op("~")) c->a.push_back(parse_math2());
    return c;
  }
  EP parse_math2() {
    EP l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = t[p++].v;
      l = binop(std::move(l), op, parse_pow());
    }
    return l;
  }
  EP parse_pow() {
    EP l = parse_unary();
    while (is_op("**")) {
      ++p;
      l = binop(std::move(l), "**", parse_unary());
    }
    return l;
  }
  EP parse_unary(bool with_filter = true) {
    Nest guard(*this);
    EP node;
    if (is_op("-") || is_op("+")) {
      EP u = mk(is_op("-") ? EK::Neg : EK::Pos);
      ++p;
      u->a.push_back(parse_unary(false));
      node = std::move(u);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }
  EP parse_primary() {
    const Tok& tk = cur();
    if (tk.k == TK::Name) {
      const std::string& n = tk.v;
      EP e = mk(EK::Lit);
      ++p;
      if (n == "true" || n == "True") e->lit = boolean(true);
      else if (n == "false" || n == "False") e->lit = boolean(false);
      else if (n == "none" || n == "None") e->lit = none();
      else {
        e->k = EK::Name;
        e->name = n;
      }
      return e;
    }
    if (tk.k == TK::Str) {
      EP e = mk(EK::Lit);
      std::string s;
      while (cur().k == TK::Str) s += t[p++].v;
      e->lit = str(s);
      return e;
    }
    if (tk.k == TK::Int || tk.k == TK::Float) {
      EP e = mk(EK::Lit);
      e->lit = tk.k == TK::Int ? integer(tk.i) : real(tk.f);
      ++p;
      return e;
    }
    if (is_op("(")) {
      ++p;
      EP e = parse_tuple(true, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      EP e = mk(EK::List);
      ++p;
      while (!is_op("]")) {
        if (!e->a.empty()) expect_op(",");
        if (is_op("]")) break;
        e->a.push_back(expression());
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      EP e = mk(EK::Dict);
      ++p;
      while (!is_op("}")) {
        if (!e->a.empty()) expect_op(",");
        if (is_op("}")) break;
        e->a.push_back(expression());
        expect_op(":");
        e->a.push_back(expression());
      }
      expect_op("}");
      return e;
    }
    error("unexpected " + describe());
  }
  // a, b, c  (a tuple when there is a comma); explicit_parens allows "()".
  EP parse_tuple(bool with_cond = true, bool explicit_parens = false, bool simplified = false) {
    EP first;
    std::vector<EP> items;
    bool comma = false;
    auto stop = [&]() {
      return cur().k == TK::VarEnd || cur().k == TK::BlockEnd || is_op(")") || is_op("]") || is_op("}") ||
             (cur().k == TK::Name && (cur().v == "in" || cur().v == "recursive"));
    };
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (stop()) break;
      items.push_back(simplified ? parse_primary() : expression(with_cond));
      if (!is_op(",")) break;
    }
    if (items.empty()) {
      if (!explicit_parens) error("expected an expression, found " + describe());
      return mk(EK::Tuple);
    }
    if (items.size() == 1 && !comma) return std::move(items[0]);
    EP tp = mk(EK::Tuple);
    tp->a = std::move(items);
    return tp;
  }
  void call_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (cur().k == TK::Name && t[p + 1].k == TK::Op && t[p + 1].v == "=") {
        std::string key = t[p].v;
        p += 2;
        e.kw.emplace_back(key, expression());
      } else {
        if (!e.kw.empty()) error("positional argument after a keyword argument");
        e.a.push_back(expression());
      }
    }
    expect_op(")");
  }
  EP parse_postfix(EP node) {
    while (true) {
      if (is_op(".")) {
        ++p;
        EP a = mk(EK::Attr);
        if (cur().k == TK::Name) {
          a->name = t[p++].v;
          a->a.push_back(std::move(node));
        } else if (cur().k == TK::Int) {
          a->k = EK::Item;
          a->a.push_back(std::move(node));
          EP idx = mk(EK::Lit);
          idx->lit = integer(t[p++].i);
          a->a.push_back(std::move(idx));
        } else {
          error("expected an attribute name after '.'");
        }
        node = std::move(a);
      } else if (is_op("[")) {
        ++p;
        node = subscript(std::move(node));
        expect_op("]");
      } else if (is_op("(")) {
        EP c = mk(EK::Call);
        c->a.push_back(std::move(node));
        call_args(*c);
        node = std::move(c);
      } else {
        return node;
      }
    }
  }
  EP subscript(EP obj) {
    EP lo, hi, step;
    bool slice = false;
    if (!is_op(":")) lo = expression();
    if (skip_op(":")) {
      slice = true;
      if (!is_op("]") && !is_op(":")) hi = expression();
      if (skip_op(":"))
        if (!is_op("]")) step = expression();
    }
    if (!slice) {
      EP it = mk(EK::Item);
      it->a.push_back(std::move(obj));
      if (is_op(",")) {  // x[a, b] -> tuple key
        EP tp = mk(EK::Tuple);
        tp->a.push_back(std::move(lo));
        while (skip_op(","))
          if (!is_op("]")) tp->a.push_back(expression());
        lo = std::move(tp);
      }
      it->a.push_back(std::move(lo));
      return it;
    }
    EP s = mk(EK::Slice);
    s->a.push_back(std::move(obj));
    s->a.push_back(std::move(lo));
    s->a.push_back(std::move(hi));
    s->a.push_back(std::move(step));
    return s;
  }
  std::string dotted_name() {
    std::string n = expect_name();
    while (is_op(".") && t[p + 1].k == TK::Name) {
      p += 1;
      n += "." + expect_name();
    }
    return n;
  }
  EP parse_filter_expr(EP node) {
    while (true) {
      if (is_op("|")) {
        ++p;
        EP f = mk(EK::Filter);
        f->name = dotted_name();
        f->a.push_back(std::move(node));
        if (is_op("(")) call_args(*f);
        node = std::move(f);
      } else if (is_name("is")) {
        ++p;
        EP tst = mk(EK::Test);
        tst->neg = skip_name("not");
        tst->name = dotted_name();
        tst->a.push_back(std::move(node));
        if (is_op("(")) {
          call_args(*tst);
        } else if ((cur().k == TK::Name || cur().k == TK::Str || cur().k == TK::Int || cur().k == TK::Float ||
                    is_op("(") || is_op("[") || is_op("{")) &&
                   !(cur().k == TK::Name && (cur().v == "else" || cur().v == "or" || cur().v == "and"))) {
          if (is_name("is")) error("You cannot chain multiple tests with is");
          EP arg = parse_postfix(parse_primary());
          tst->a.push_back(std::move(arg));
        }
        node = std::move(tst);
      } else if (is_op("(")) {
        EP c = mk(EK::Call);
        c->a.push_back(std::move(node));
        call_args(*c);
        node = std::move(c);
      } else {
        return node;
      }
    }
  }

  // assignment targets: name | name.attr | a, b
  EP assign_target(bool allow_attr) {
    EP first;
    if (allow_attr && cur().k == TK::Name && t[p + 1].k == TK::Op && t[p + 1].v == ".") {
      EP a = mk(EK::Attr);
      EP obj = mk(EK::Name);
      obj->name = t[p].v;
      p += 2;
      a->name = expect_name();
      a->a.push_back(std::move(obj));
      return a;
    }
    EP tp = mk(EK::Tuple);
    bool paren = skip_op("(");
    do {
      if (is_op(")") || is_op("=") || is_name("in")) break;
      EP n = mk(EK::Name);
      n->name = expect_name();
      tp->a.push_back(std::move(n));
    } while (skip_op(","));
    if (paren) expect_op(")");
    if (tp->a.empty()) error("expected an assignment target");
    if (tp->a.size() == 1 && !paren) return std::move(tp->a[0]);
    return tp;
  }

  void block_end() {
    if (cur().k != TK::BlockEnd) error("expected '%}', found " + describe());
    ++p;
  }

  // Parses nodes until a {% name %} in `ends`; returns which one (positioned after its name).
  std::string body(Body& out, std::initializer_list<const char*> ends) {
    while (true) {
      const Tok& tk = cur();
      if (tk.k == TK::Eof) {
        if (ends.size() == 0) return "";
        error(fmt::format("unexpected end of template; missing {{% {} %}}", *ends.begin()));
      }
      if (tk.k == TK::Data) {
        auto n = std::make_unique<Node>();
        n->k = NK::Text;
        n->line = tk.line;
        n->text = tk.v;
        out.push_back(std::move(n));
        ++p;
        continue;
      }
      if (tk.k == TK::VarBegin) {
        ++p;
        auto n = std::make_unique<Node>();
        n->k = NK::Out;
        n->line = cur().line;
        n->e = parse_tuple();
        if (cur().k != TK::VarEnd) error("expected '}}', found " + describe());
        ++p;
        out.push_back(std::move(n));
        continue;
      }
      if (tk.k != TK::BlockBegin) error("unexpected " + describe());
      ++p;
      if (cur().k != TK::Name) error("expected a tag name, found " + describe());
      std::string name = cur().v;
      for (const char* e : ends)
        if (name == e) {
          ++p;
          return name;
        }
      ++p;
      out.push_back(statement(name));
    }
  }

  std::unique_ptr<Node> statement(const std::string& name) {
    Nest guard(*this);
    auto n = std::make_unique<Node>();
    n->line = t[p - 1].line;
    if (name == "if") {
      n->k = NK::If;
      EP c = parse_tuple(false);
      block_end();
      while (true) {
        Body b;
        std::string end = body(b, {"elif", "else", "endif"});
        n->branches.emplace_back(std::move(c), std::move(b));
        if (end == "elif") {
          c = parse_tuple(false);
          block_end();
          continue;
        }
        if (end == "else") {
          block_end();
          body(n->else_body, {"endif"});
        }
        block_end();
        break;
      }
      return n;
    }
    if (name == "for") {
      n->k = NK::For;
      n->target = assign_target(false);
      if (!skip_name("in")) error("expected 'in' in the for tag, found " + describe());
      n->e = parse_tuple(false);
      if (skip_name("if")) n->cond = expression();
      if (skip_name("recursive")) error("recursive for loops are not supported");
      block_end();
      std::string end = body(n->body, {"else", "endfor"});
      if (end == "else") {
        block_end();
        body(n->else_body, {"endfor"});
      }
      block_end();
      return n;
    }
    if (name == "set") {
      n->target = assign_target(true);
      if (skip_op("=")) {
        n->k = NK::Set;
        n->e = parse_tuple();
        block_end();
        return n;
      }
      n->k = NK::SetBlock;
      if (is_op("|")) {  // {% set x | filter %}
        EP f = parse_filter_expr(mk(EK::Lit));
        n->e = std::move(f);
      }
      block_end();
      body(n->body, {"endset"});
      block_end();
      return n;
    }
    if (name == "macro") {
      n->k = NK::Macro;
      n->text = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        if (!n->params.empty()) expect_op(",");
        std::string pn = expect_name();
        EP def;
        if (skip_op("=")) def = expression();
        n->params.emplace_back(pn, std::move(def));
      }
      expect_op(")");
      block_end();
      body(n->body, {"endmacro"});
      if (cur().k == TK::Name) ++p;  // {% endmacro name %}
      block_end();
      return n;
    }
    if (name == "break" || name == "continue") {
      n->k = name == "break" ? NK::Break : NK::Continue;
      block_end();
      return n;
    }
    if (name == "generation") {
      has_generation = true;
      n->k = NK::Gen;
      block_end();
      body(n->body, {"endgeneration"});
      block_end();
      return n;
    }
    if (name == "filter") {
      n->k = NK::FilterBlock;
      n->e = parse_filter_expr_block();
      block_end();
      body(n->body, {"endfilter"});
      block_end();
      return n;
    }
    if (name == "with") {
      n->k = NK::With;
      while (cur().k != TK::BlockEnd) {
        if (!n->params.empty()) expect_op(",");
        std::string v = expect_name();
        expect_op("=");
        n->params.emplace_back(v, expression());
      }
      block_end();
      body(n->body, {"endwith"});
      block_end();
      return n;
    }
    error(fmt::format("unknown or unsupported tag '{}'", name));
  }
  // {% filter upper %} / {% filter indent(2) | trim %}: a Filter chain whose innermost value is empty.
  EP parse_filter_expr_block() {
    EP node = mk(EK::Lit);  // placeholder: replaced by the body text at render time
    bool first = true;
    while (first || skip_op("|")) {
      first = false;
      EP f = mk(EK::Filter);
      f->name = dotted_name();
      f->a.push_back(std::move(node));
      if (is_op("(")) call_args(*f);
      node = std::move(f);
    }
    return node;
  }
};

}  // namespace

struct Template::Impl {
  std::string origin;
  Body body;
  bool has_generation = false;
};

namespace {

// ---------------------------------------------------------------- interpreter

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t i, const char* name) const {
    if (i < pos.size()) return &pos[i];
    for (auto& [k, v] : kw)
      if (k == name) return &v;
    return nullptr;
  }
};

enum class Flow { Normal, Break, Continue };

std::string default_strftime(const std::string& fmt) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[512];
  size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
  return std::string(buf, n);
}

std::vector<Value> iterate(const Value& v) {
  switch (v.k) {
    case K::Undef: return {};
    case K::List: return *v.l;
    case K::Dict: {
      std::vector<Value> keys;
      for (auto& p : v.d->kv) keys.push_back(str(p.first));
      return keys;
    }
    case K::Str: {
      std::vector<Value> chars;
      auto off = cp_offsets(v.s);
      for (size_t i = 0; i + 1 < off.size(); ++i) chars.push_back(str(v.s.substr(off[i], off[i + 1] - off[i])));
      return chars;
    }
    default: type_error(fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

int64_t length(const Value& v) {
  switch (v.k) {
    case K::Undef: return 0;
    case K::Str: return int64_t(cp_len(v.s));
    case K::List: return int64_t(v.l->size());
    case K::Dict: return int64_t(v.d->kv.size());
    default: type_error(fmt::format("object of type '{}' has no len()", type_name(v)));
  }
}

Value items_of(const Value& d) {
  std::vector<Value> out;
  for (auto& [k, v] : d.d->kv) out.push_back(list({str(k), v}, true));
  return list(std::move(out));
}

// Python slice indices over n elements.
std::vector<int64_t> slice_indices(int64_t n, const Value& lo, const Value& hi, const Value& st) {
  auto as_int = [](const Value& v) -> std::optional<int64_t> {
    if (v.k == K::Undef || v.k == K::None) return std::nullopt;
    if (v.k != K::Int && v.k != K::Bool) type_error("slice indices must be integers or None");
    return inum(v);
  };
  int64_t step = as_int(st).value_or(1);
  if (step == 0) raise("ValueError", "slice step cannot be zero");
  auto norm = [&](std::optional<int64_t> x, int64_t dflt) {
    if (!x) return dflt;
    int64_t v = *x;
    if (v < 0) v += n;
    if (step > 0) return std::clamp<int64_t>(v, 0, n);
    return std::clamp<int64_t>(v, -1, n - 1);
  };
  int64_t b = norm(as_int(lo), step > 0 ? 0 : n - 1);
  int64_t e = norm(as_int(hi), step > 0 ? n : -1);
  std::vector<int64_t> idx;
  if (step > 0)
    for (int64_t i = b; i < e; i += step) idx.push_back(i);
  else
    for (int64_t i = b; i > e; i += step) idx.push_back(i);
  return idx;
}

std::string join_strs(const std::vector<std::string>& parts, const std::string& sep) {
  std::string o;
  for (size_t i = 0; i < parts.size(); ++i) o += (i ? sep : "") + parts[i];
  return o;
}

std::vector<std::string> py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (!sep || sep->k == K::None) {
    size_t i = 0, n = s.size();
    auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    while (true) {
      while (i < n && is_ws(s[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
        size_t e = n;
        while (e > i && is_ws(s[e - 1])) --e;
        out.push_back(s.substr(i, e - i));
        break;
      }
      size_t b = i;
      while (i < n && !is_ws(s[i])) ++i;
      out.push_back(s.substr(b, i - b));
    }
    return out;
  }
  if (sep->k != K::Str) type_error("must be str or None, not " + std::string(type_name(*sep)));
  if (sep->s.empty()) raise("ValueError", "empty separator");
  size_t b = 0;
  while (true) {
    if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) break;
    size_t e = s.find(sep->s, b);
    if (e == std::string::npos) break;
    out.push_back(s.substr(b, e - b));
    b = e + sep->s.size();
  }
  out.push_back(s.substr(b));
  return out;
}

std::string py_replace(const std::string& s, const std::string& a, const std::string& b, int64_t count) {
  std::string o;
  if (a.empty()) {  // Python inserts b between code points
    auto off = cp_offsets(s);
    int64_t done = 0;
    for (size_t i = 0; i + 1 < off.size(); ++i) {
      if (count < 0 || done < count) {
        o += b;
        ++done;
      }
      o += s.substr(off[i], off[i + 1] - off[i]);
    }
    if (count < 0 || done < count) o += b;
    return o;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(a, pos);
    if (f == std::string::npos) break;
    o += s.substr(pos, f - pos) + b;
    pos = f + a.size();
    ++done;
  }
  return o + s.substr(pos);
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&#34;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

const Value& need_str(const Value& v, const char* what) {
  if (v.k == K::Undef) undefined_error(v);
  if (v.k != K::Str) type_error(fmt::format("{} expects a string, not '{}'", what, type_name(v)));
  return v;
}
int64_t need_int(const Value* v, int64_t dflt, const char* what) {
  if (!v || v->k == K::None) return dflt;
  if (v->k != K::Int && v->k != K::Bool) type_error(fmt::format("{} expects an integer, not '{}'", what, type_name(*v)));
  return inum(*v);
}

// Methods of str / dict values reached by attribute access ("x.strip", "d.items").
Value method(const Value& self, const std::string& name) {
  if (self.k == K::Str) {
    const std::string s = self.s;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      bool l = name != "rstrip", r = name != "lstrip";
      return func([s, l, r](Interp&, Args& a) {
        const Value* c = a.get(0, "chars");
        if (c && c->k != K::None) return str(py_strip(s, &need_str(*c, "strip").s, l, r));
        return str(py_strip(s, nullptr, l, r));
      });
    }
    if (name == "split" || name == "rsplit") {
      bool rs = name == "rsplit";
      return func([s, rs](Interp&, Args& a) {
        int64_t maxsplit = need_int(a.get(1, "maxsplit"), -1, "split");
        const Value* sep = a.get(0, "sep");
        std::vector<std::string> parts;
        if (rs && maxsplit >= 0) {  // rsplit with a limit: split from the right
          parts = py_split(s, sep, -1);
          if (int64_t(parts.size()) > maxsplit + 1) {
            std::string joiner = sep && sep->k == K::Str ? sep->s : " ";
            size_t head = parts.size() - size_t(maxsplit);
            std::vector<std::string> lead(parts.begin(), parts.begin() + long(head));
            std::vector<std::string> out{join_strs(lead, joiner)};
            out.insert(out.end(), parts.begin() + long(head), parts.end());
            parts = out;
          }
        } else {
          parts = py_split(s, sep, maxsplit);
        }
        std::vector<Value> v;
        for (auto& x : parts) v.push_back(str(x));
        return list(std::move(v));
      });
    }
    if (name == "splitlines")
      return func([s](Interp&, Args&) {
        std::vector<Value> v;
        size_t b = 0;
        for (size_t i = 0; i < s.size(); ++i)
          if (s[i] == '\n' || s[i] == '\r') {
            v.push_back(str(s.substr(b, i - b)));
            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
            b = i + 1;
          }
        if (b < s.size()) v.push_back(str(s.substr(b)));
        return list(std::move(v));
      });
    if (name == "startswith" || name == "endswith") {
      bool start = name == "startswith";
      return func([s, start](Interp&, Args& a) {
        const Value* x = a.get(0, "prefix");
        if (!x) type_error(std::string(start ? "startswith" : "endswith") + " takes one argument");
        std::vector<Value> cands = x->k == K::List ? *x->l : std::vector<Value>{*x};
        for (auto& c : cands) {
          const std::string& t = need_str(c, start ? "startswith" : "endswith").s;
          if (t.size() <= s.size() && (start ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0))
            return boolean(true);
        }
        return boolean(false);
      });
    }
    if (name == "replace")
      return func([s](Interp&, Args& a) {
        const Value* x = a.get(0, "old");
        const Value* y = a.get(1, "new");
        if (!x || !y) type_error("replace() takes at least 2 arguments");
        return str(py_replace(s, need_str(*x, "replace").s, need_str(*y, "replace").s, need_int(a.get(2, "count"), -1, "replace")));
      });
    if (name == "lower") return func([s](Interp&, Args&) { return str(ascii_lower(s)); });
    if (name == "upper") return func([s](Interp&, Args&) { return str(ascii_upper(s)); });
    if (name == "title") return func([s](Interp&, Args&) { return str(py_title(s)); });
    if (name == "capitalize") return func([s](Interp&, Args&) { return str(py_capitalize(s)); });
    if (name == "removeprefix" || name == "removesuffix") {
      bool pre = name == "removeprefix";
      return func([s, pre](Interp&, Args& a) {
        const Value* x = a.get(0, "x");
        if (!x) type_error("removeprefix() takes one argument");
        const std::string& t = need_str(*x, "removeprefix").s;
        if (pre && s.compare(0, t.size(), t) == 0) return str(s.substr(t.size()));
        if (!pre && t.size() <= s.size() && s.compare(s.size() - t.size(), t.size(), t) == 0)
          return str(s.substr(0, s.size() - t.size()));
        return str(s);
      });
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "count") {
      std::string nm = name;
      return func([s, nm](Interp&, Args& a) {
        const Value* x = a.get(0, "sub");
        if (!x) type_error(nm + "() takes at least 1 argument");
        const std::string& t = need_str(*x, nm.c_str()).s;
        if (nm == "count") {
          if (t.empty()) return integer(int64_t(cp_len(s)) + 1);
          int64_t c = 0;
          for (size_t f = s.find(t); f != std::string::npos; f = s.find(t, f + t.size())) ++c;
          return integer(c);
        }
        size_t f = nm == "rfind" ? s.rfind(t) : s.find(t);
        if (f == std::string::npos) {
          if (nm == "index") raise("ValueError", "substring not found");
          return integer(-1);
        }
        return integer(int64_t(cp_len(s.substr(0, f))));
      });
    }
    if (name == "join")
      return func([s](Interp&, Args& a) {
        const Value* x = a.get(0, "iterable");
        if (!x) type_error("join() takes one argument");
        std::vector<std::string> parts;
        for (auto& e : iterate(*x)) parts.push_back(need_str(e, "join").s);
        return str(join_strs(parts, s));
      });
    if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isupper" || name == "islower" ||
        name == "isalnum") {
      std::string nm = name;
      return func([s, nm](Interp&, Args&) {
        if (s.empty()) return boolean(false);
        bool cased = false, ok = true;
        for (unsigned char c : s) {
          if (nm == "isdigit") ok &= std::isdigit(c) != 0;
          else if (nm == "isalpha") ok &= std::isalpha(c) != 0;
          else if (nm == "isalnum") ok &= std::isalnum(c) != 0;
          else if (nm == "isspace") ok &= std::isspace(c) != 0;
          else if (nm == "isupper") {
            ok &= !std::islower(c);
            cased |= std::isupper(c) != 0;
          } else {
            ok &= !std::isupper(c);
            cased |= std::islower(c) != 0;
          }
        }
        return boolean(ok && (nm == "isupper" || nm == "islower" ? cased : true));
      });
    }
    if (name == "format")
      return func([s](Interp&, Args& a) {
        std::string o;
        size_t auto_idx = 0;
        for (size_t i = 0; i < s.size(); ++i) {
          if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '{') {
            o += '{';
            ++i;
          } else if (s[i] == '}' && i + 1 < s.size() && s[i + 1] == '}') {
            o += '}';
            ++i;
          } else if (s[i] == '{') {
            size_t e = s.find('}', i);
            if (e == std::string::npos) raise("ValueError", "Single '{' encountered in format string");
            std::string field = s.substr(i + 1, e - i - 1);
            if (field.find(':') != std::string::npos || field.find('!') != std::string::npos)
              type_error("format specs in str.format are not supported");
            const Value* v = nullptr;
            if (field.empty()) v = a.get(auto_idx++, "");
            else if (std::isdigit(static_cast<unsigned char>(field[0]))) v = a.get(size_t(std::stoul(field)), "");
            else v = a.get(size_t(-1), field.c_str());
            if (!v) raise("IndexError", "Replacement index out of range for positional args tuple");
            o += to_str(*v);
            i = e;
          } else {
            o += s[i];
          }
        }
        return str(o);
      });
  }
  if (self.k == K::Dict && !self.ns) {
    auto d = self;
    if (name == "items") return func([d](Interp&, Args&) { return items_of(d); });
    if (name == "keys")
      return func([d](Interp&, Args&) {
        std::vector<Value> v;
        for (auto& p : d.d->kv) v.push_back(str(p.first));
        return list(std::move(v));
      });
    if (name == "values")
      return func([d](Interp&, Args&) {
        std::vector<Value> v;
        for (auto& p : d.d->kv) v.push_back(p.second);
        return list(std::move(v));
      });
    if (name == "get")
      return func([d](Interp&, Args& a) {
        const Value* k = a.get(0, "key");
        if (!k) type_error("get expected at least 1 argument, got 0");
        const Value* dflt = a.get(1, "default");
        if (k->k == K::Str)
          if (const Value* v = d.d->find(k->s)) return *v;
        return dflt ? *dflt : none();
      });
  }
  return undef("");
}

std::string value_desc(const Value& v) {
  if (v.k == K::Dict && !v.ns) return "'dict object'";
  if (v.k == K::List) return "'list object'";
  if (v.k == K::Str) return "'str object'";
  return fmt::format("'{}'", type_name(v));
}

// obj.name: Python attribute first (methods), then item (Jinja's getattr order).
Value get_attr(const Value& obj, const std::string& name) {
  if (obj.k == K::Undef) undefined_error(obj);
  Value m = method(obj, name);
  if (m.k != K::Undef) return m;
  if (obj.k == K::Dict)
    if (const Value* v = obj.d->find(name)) return *v;
  return undef(fmt::format("{} has no attribute '{}'", value_desc(obj), name));
}

// obj[key]: item first, then attribute for string keys (Jinja's getitem order).
Value get_item(const Value& obj, const Value& key) {
  if (obj.k == K::Undef) undefined_error(obj);
  if (obj.k == K::Dict && key.k == K::Str) {
    if (const Value* v = obj.d->find(key.s)) return *v;
  } else if ((obj.k == K::List || obj.k == K::Str) && (key.k == K::Int || key.k == K::Bool)) {
    int64_t i = inum(key);
    if (obj.k == K::List) {
      int64_t n = int64_t(obj.l->size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return (*obj.l)[size_t(i)];
      return undef(fmt::format("{} has no element {}", value_desc(obj), inum(key)));
    }
    auto off = cp_offsets(obj.s);
    int64_t n = int64_t(off.size()) - 1;
    if (i < 0) i += n;
    if (i >= 0 && i < n) return str(obj.s.substr(off[size_t(i)], off[size_t(i) + 1] - off[size_t(i)]));
    return undef(fmt::format("{} has no element {}", value_desc(obj), inum(key)));
  }
  if (key.k == K::Str) {
    Value m = method(obj, key.s);
    if (m.k != K::Undef) return m;
    return undef(fmt::format("{} has no attribute '{}'", value_desc(obj), key.s));
  }
  return undef(fmt::format("{} has no element {}", value_desc(obj), repr(key)));
}

struct Interp {
  const Template::Impl& tpl;
  const Options& opt;
  std::vector<std::unordered_map<std::string, Value>> frames;
  std::unordered_map<std::string, Value> globals;
  std::string main_out;
  std::string* out = &main_out;
  std::vector<std::pair<size_t, size_t>> gen_spans;
  int line = 0;
  int depth = 0;

  Interp(const Template::Impl& t, const Options& o) : tpl(t), opt(o) {}

  Value lookup(const std::string& name) {
    for (size_t i = frames.size(); i-- > 0;) {
      auto it = frames[i].find(name);
      if (it != frames[i].end()) return it->second;
    }
    auto g = globals.find(name);
    if (g != globals.end()) return g->second;
    return undef(fmt::format("'{}' is undefined", name));
  }

  Value call(const Value& f, Args& a) {
    if (f.k == K::Undef) undefined_error(f);
    if (f.k != K::Func) type_error(fmt::format("'{}' object is not callable", type_name(f)));
    if (++depth > 200) raise("RecursionError", "maximum recursion depth exceeded");
    Value r = (*f.fn)(*this, a);
    --depth;
    return r;
  }

  Args eval_args(const Expr& e, size_t first) {
    Args a;
    for (size_t i = first; i < e.a.size(); ++i) a.pos.push_back(eval(*e.a[i]));
    for (auto& [k, v] : e.kw) a.kw.emplace_back(k, eval(*v));
    return a;
  }

  Value eval(const Expr& e) {
    line = e.line;
    switch (e.k) {
      case EK::Lit: return e.lit;
      case EK::Name: return lookup(e.name);
      case EK::List:
      case EK::Tuple: {
        std::vector<Value> v;
        for (auto& x : e.a) v.push_back(eval(*x));
        return list(std::move(v), e.k == EK::Tuple);
      }
      case EK::Dict: {
        Value d = dict();
        for (size_t i = 0; i + 1 < e.a.size(); i += 2) {
          Value k = eval(*e.a[i]);
          if (k.k != K::Str) type_error("dict literal keys must be strings here, not " + std::string(type_name(k)));
          d.d->set(k.s, eval(*e.a[i + 1]));
        }
        return d;
      }
      case EK::Attr: return get_attr(eval(*e.a[0]), e.name);
      case EK::Item: {
        Value obj = eval(*e.a[0]);
        return get_item(obj, eval(*e.a[1]));
      }
      case EK::Slice: {
        Value obj = eval(*e.a[0]);
        Value lo = e.a[1] ? eval(*e.a[1]) : none(), hi = e.a[2] ? eval(*e.a[2]) : none(),
              st = e.a[3] ? eval(*e.a[3]) : none();
        if (obj.k == K::Undef) undefined_error(obj);
        if (obj.k == K::List) {
          auto idx = slice_indices(int64_t(obj.l->size()), lo, hi, st);
          std::vector<Value> v;
          for (auto i : idx) v.push_back((*obj.l)[size_t(i)]);
          return list(std::move(v), obj.tuple);
        }
        if (obj.k == K::Str) {
          auto off = cp_offsets(obj.s);
          auto idx = slice_indices(int64_t(off.size()) - 1, lo, hi, st);
          std::string o;
          for (auto i : idx) o += obj.s.substr(off[size_t(i)], off[size_t(i) + 1] - off[size_t(i)]);
          return str(o);
        }
        type_error(fmt::format("'{}' object is not subscriptable", type_name(obj)));
      }
      case EK::Call: {
        Value f = eval(*e.a[0]);
        Args a = eval_args(e, 1);
        line = e.line;
        return call(f, a);
      }
      case EK::Filter: {
        Value v = eval(*e.a[0]);
        Args a = eval_args(e, 1);
        line = e.line;
        return filter(e.name, v, a);
      }
      case EK::Test: {
        Value v = eval(*e.a[0]);
        Args a = eval_args(e, 1);
        line = e.line;
        bool r = test(e.name, v, a);
        return boolean(e.neg ? !r : r);
      }
      case EK::Neg:
      case EK::Pos: {
        Value v = eval(*e.a[0]);
        if (v.k == K::Undef) undefined_error(v);
        if (!is_num(v)) type_error(fmt::format("bad operand type for unary {}: '{}'", e.k == EK::Neg ? '-' : '+', type_name(v)));
        if (e.k == EK::Pos) return v.k == K::Bool ? integer(inum(v)) : v;
        return v.k == K::Float ? real(-v.f) : integer(-inum(v));
      }
      case EK::Not: return boolean(!truthy(eval(*e.a[0])));
      case EK::And: {
        Value l = eval(*e.a[0]);
        return truthy(l) ? eval(*e.a[1]) : l;
      }
      case EK::Or: {
        Value l = eval(*e.a[0]);
        return truthy(l) ? l : eval(*e.a[1]);
      }
      case EK::Cond: {
        if (truthy(eval(*e.a[0]))) return eval(*e.a[1]);
        if (e.a[2]) return eval(*e.a[2]);
        return undef("the inline if expression evaluated to false and no else section was defined");
      }
      case EK::Concat: {
        std::string o;
        for (auto& x : e.a) o += to_str(eval(*x));
        return str(o);
      }
      case EK::Bin: {
        Value l = eval(*e.a[0]);
        Value r = eval(*e.a[1]);
        line = e.line;
        return arith(e.name, l, r);
      }
      case EK::Cmp: {
        Value l = eval(*e.a[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value r = eval(*e.a[i + 1]);
          line = e.line;
          const std::string& op = e.ops[i];
          bool ok;
          if (op == "==") ok = equal(l, r);
          else if (op == "!=") ok = !equal(l, r);
          else if (op == "in") ok = contains(r, l);
          else if (op == "notin") ok = !contains(r, l);
          else {
            int c = compare(l, r, op.c_str());
            ok = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
          }
          if (!ok) return boolean(false);
          l = std::move(r);
        }
        return boolean(true);
      }
    }
    return undef("");
  }

  // ---- statements

  void assign(const Expr& target, const Value& v) {
    if (target.k == EK::Name) {
      frames.back()[target.name] = v;
      return;
    }
    if (target.k == EK::Attr) {
      Value obj = eval(*target.a[0]);
      if (obj.k != K::Dict || !obj.ns)
        raise("TemplateRuntimeError", fmt::format("cannot assign attribute on non-namespace object ('{}')", target.a[0]->name));
      obj.d->set(target.name, v);
      return;
    }
    // tuple unpacking
    std::vector<Value> items = iterate(v);
    if (items.size() != target.a.size())
      raise("ValueError", fmt::format("cannot unpack {} values into {} names", items.size(), target.a.size()));
    for (size_t i = 0; i < items.size(); ++i) assign(*target.a[i], items[i]);
  }

  std::string capture(const Body& b) {
    std::string buf;
    std::string* saved = out;
    out = &buf;
    exec(b);
    out = saved;
    return buf;
  }

  Flow exec(const Body& b) {
    for (auto& n : b) {
      Flow f = exec(*n);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Node& n) {
    line = n.line;
    switch (n.k) {
      case NK::Text: *out += n.text; return Flow::Normal;
      case NK::Out: *out += to_str(eval(*n.e)); return Flow::Normal;
      case NK::If:
        for (auto& [c, body] : n.branches)
          if (truthy(eval(*c))) return exec(body);
        return exec(n.else_body);
      case NK::For: return exec_for(n);
      case NK::Set: assign(*n.target, eval(*n.e)); return Flow::Normal;
      case NK::SetBlock: {
        Value v = str(capture(n.body));
        if (n.e) v = apply_filter_chain(*n.e, v);
        assign(*n.target, v);
        return Flow::Normal;
      }
      case NK::Macro: {
        const Node* m = &n;
        frames.back()[n.text] = func([m](Interp& in, Args& a) { return in.call_macro(*m, a); });
        return Flow::Normal;
      }
      case NK::Break: return Flow::Break;
      case NK::Continue: return Flow::Continue;
      case NK::Gen: {
        size_t b = out->size();
        Flow f = exec(n.body);
        if (out == &main_out) gen_spans.emplace_back(b, out->size());
        return f;
      }
      case NK::FilterBlock: {
        Value v = str(capture(n.body));
        *out += to_str(apply_filter_chain(*n.e, v));
        return Flow::Normal;
      }
      case NK::With: {
        std::unordered_map<std::string, Value> f;
        for (auto& [k, e] : n.params) f[k] = eval(*e);
        frames.push_back(std::move(f));
        Flow r = exec(n.body);
        frames.pop_back();
        return r;
      }
    }
    return Flow::Normal;
  }

  // A filter chain parsed with an empty innermost value ({% filter %}, {% set x | f %}).
  Value apply_filter_chain(const Expr& e, const Value& v) {
    if (e.k != EK::Filter) return v;
    Value inner = apply_filter_chain(*e.a[0], v);
    Args a = eval_args(e, 1);
    return filter(e.name, inner, a);
  }

  Flow exec_for(const Node& n) {
    Value seq = eval(*n.e);
    std::vector<Value> items = iterate(seq);
    frames.emplace_back();
    if (n.cond) {
      std::vector<Value> kept;
      for (auto& it : items) {
        assign(*n.target, it);
        if (truthy(eval(*n.cond))) kept.push_back(it);
      }
      items = std::move(kept);
    }
    const int64_t len = int64_t(items.size());
    frames.pop_back();
    for (int64_t i = 0; i < len; ++i) {
      // Each iteration starts from a fresh scope: a {% set %} in the body does not carry
      // over to the next iteration nor out of the loop (Jinja2's scoping).
      frames.emplace_back();
      assign(*n.target, items[size_t(i)]);
      Value loop = dict();
      auto& d = *loop.d;
      d.set("index", integer(i + 1));
      d.set("index0", integer(i));
      d.set("revindex", integer(len - i));
      d.set("revindex0", integer(len - i - 1));
      d.set("first", boolean(i == 0));
      d.set("last", boolean(i == len - 1));
      d.set("length", integer(len));
      d.set("depth", integer(1));
      d.set("depth0", integer(0));
      d.set("previtem", i > 0 ? items[size_t(i - 1)] : undef("there is no previous item"));
      d.set("nextitem", i + 1 < len ? items[size_t(i + 1)] : undef("there is no next item"));
      d.set("cycle", func([i](Interp&, Args& a) {
              if (a.pos.empty()) type_error("no items for cycling given");
              return a.pos[size_t(i) % a.pos.size()];
            }));
      frames.back()["loop"] = loop;
      Flow f = exec(n.body);
      frames.pop_back();
      if (f == Flow::Break) break;
    }
    if (len == 0) return exec(n.else_body);
    return Flow::Normal;
  }

  Value call_macro(const Node& m, Args& a) {
    std::vector<std::unordered_map<std::string, Value>> saved;
    saved.swap(frames);
    frames.push_back(saved.front());
    frames.emplace_back();
    if (a.pos.size() > m.params.size())
      type_error(fmt::format("macro '{}' takes not more than {} argument(s)", m.text, m.params.size()));
    for (size_t i = 0; i < m.params.size(); ++i) {
      const auto& [pname, def] = m.params[i];
      const Value* v = a.get(i, pname.c_str());
      if (v) frames.back()[pname] = *v;
      else if (def) frames.back()[pname] = eval(*def);
      else frames.back()[pname] = undef(fmt::format("parameter '{}' was not provided", pname));
    }
    for (auto& [k, v] : a.kw) {
      bool known = false;
      for (auto& pr : m.params) known |= pr.first == k;
      if (!known) type_error(fmt::format("macro '{}' takes no keyword argument '{}'", m.text, k));
    }
    std::string buf;
    std::string* saved_out = out;
    out = &buf;
    try {
      exec(m.body);
    } catch (...) {
      out = saved_out;
      frames.swap(saved);
      throw;
    }
    out = saved_out;
    frames.swap(saved);
    return str(buf);
  }

  // ---- filters

  Value filter(const std::string& name, const Value& v, Args& a);
  bool test(const std::string& name, const Value& v, Args& a);
};

bool Interp::test(const std::string& name, const Value& v, Args& a) {
  const Value* arg = a.get(0, "value");
  auto need_arg = [&]() -> const Value& {
    if (!arg) type_error(fmt::format("test '{}' needs an argument", name));
    return *arg;
  };
  if (name == "defined") return v.k != K::Undef;
  if (name == "undefined") return v.k == K::Undef;
  if (name == "none") return v.k == K::None;
  if (name == "string") return v.k == K::Str;
  if (name == "number") return is_num(v);
  if (name == "integer") return v.k == K::Int;
  if (name == "float") return v.k == K::Float;
  if (name == "boolean") return v.k == K::Bool;
  if (name == "true") return v.k == K::Bool && v.b;
  if (name == "false") return v.k == K::Bool && !v.b;
  if (name == "mapping") return v.k == K::Dict && !v.ns;
  if (name == "iterable") return v.k == K::Str || v.k == K::List || (v.k == K::Dict && !v.ns) || v.k == K::Undef;
  if (name == "sequence") return v.k == K::Str || v.k == K::List || (v.k == K::Dict && !v.ns) || v.k == K::Undef;
  if (name == "callable") return v.k == K::Func;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return equal(v, need_arg());
  if (name == "ne" || name == "!=") return !equal(v, need_arg());
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, need_arg(), "<") < 0;
  if (name == "le" || name == "<=") return compare(v, need_arg(), "<=") <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, need_arg(), ">") > 0;
  if (name == "ge" || name == ">=") return compare(v, need_arg(), ">=") >= 0;
  if (name == "in") return contains(need_arg(), v);
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (v.k == K::Undef) undefined_error(v);
    if (v.k != K::Int && v.k != K::Bool) type_error(fmt::format("test '{}' needs an integer, not '{}'", name, type_name(v)));
    int64_t x = inum(v);
    if (name == "odd") return x % 2 != 0;
    if (name == "even") return x % 2 == 0;
    int64_t d = need_int(&need_arg(), 1, "divisibleby");
    if (d == 0) raise("ZeroDivisionError", "integer division or modulo by zero");
    return x % d == 0;
  }
  if (name == "lower" || name == "upper") {
    if (v.k != K::Str) return false;
    return name == "lower" ? ascii_lower(v.s) == v.s : ascii_upper(v.s) == v.s;
  }
  raise("TemplateAssertionError", fmt::format("no test named '{}'", name));
}

Value Interp::filter(const std::string& name, const Value& v, Args& a) {
  auto arg = [&](size_t i, const char* n) { return a.get(i, n); };
  auto s_of = [&](const Value& x) { return to_str(x); };
  if (name == "tojson") {
    const Value* ea = arg(0, "ensure_ascii");
    const Value* ind = arg(1, "indent");
    const Value* sk = arg(3, "sort_keys");
    const Value* sep = arg(2, "separators");
    int indent = -1;
    if (ind && ind->k != K::None) {
      if (ind->k == K::Str) type_error("tojson indent must be an integer here");
      indent = int(std::max<int64_t>(0, inum(*ind)));
    }
    std::string item_sep = indent >= 0 ? "," : ", ", key_sep = ": ";
    if (sep && sep->k == K::List && sep->l->size() == 2) {
      item_sep = need_str((*sep->l)[0], "tojson separators").s;
      key_sep = need_str((*sep->l)[1], "tojson separators").s;
    }
    std::string o;
    to_json(v, o, indent, 0, ea && truthy(*ea), sk && truthy(*sk), item_sep, key_sep);
    return str(o);
  }
  if (name == "trim") {
    const Value* c = arg(0, "chars");
    if (v.k == K::Undef) return str("");
    std::string s = s_of(v);
    if (c && c->k != K::None) return str(py_strip(s, &need_str(*c, "trim").s, true, true));
    return str(py_strip(s, nullptr, true, true));
  }
  if (name == "length" || name == "count") return integer(length(v));
  if (name == "string") return str(s_of(v));
  if (name == "safe") return v.k == K::Str ? v : str(s_of(v));
  if (name == "e" || name == "escape" || name == "forceescape") return str(html_escape(s_of(v)));
  if (name == "default" || name == "d") {
    const Value* dv = arg(0, "default_value");
    const Value* b = arg(1, "boolean");
    bool use = v.k == K::Undef || (b && truthy(*b) && !truthy(v));
    if (use) return dv ? *dv : str("");
    return v;
  }
  if (name == "upper") return str(ascii_upper(s_of(v)));
  if (name == "lower") return str(ascii_lower(s_of(v)));
  if (name == "capitalize") return str(py_capitalize(s_of(v)));
  if (name == "title") return str(py_title(s_of(v)));
  if (name == "replace") {
    const Value* x = arg(0, "old");
    const Value* y = arg(1, "new");
    if (!x || !y) type_error("replace needs old and new");
    if (v.k == K::Undef) undefined_error(v);
    return str(py_replace(s_of(v), s_of(*x), s_of(*y), need_int(arg(2, "count"), -1, "replace")));
  }
  if (name == "first" || name == "last") {
    std::vector<Value> items = iterate(v);
    if (items.empty()) return undef(fmt::format("No {} item, sequence was empty.", name));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return list(iterate(v));
  if (name == "items") {
    if (v.k == K::Undef) return list();
    if (v.k != K::Dict) type_error("items filter needs a mapping, not " + std::string(type_name(v)));
    return items_of(v);
  }
  if (name == "reverse") {
    if (v.k == K::Str) {
      auto it = iterate(v);
      std::string o;
      for (size_t i = it.size(); i-- > 0;) o += it[i].s;
      return str(o);
    }
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    return list(std::move(items));
  }
  if (name == "join") {
    const Value* sep = arg(0, "d");
    const Value* attr = arg(1, "attribute");
    std::vector<std::string> parts;
    for (auto& x : iterate(v)) parts.push_back(s_of(attr && attr->k != K::None ? get_attr(x, s_of(*attr)) : x));
    return str(join_strs(parts, sep ? s_of(*sep) : ""));
  }
  if (name == "map") {
    const Value* attr = nullptr;
    for (auto& [k, x] : a.kw)
      if (k == "attribute") attr = &x;
    std::vector<Value> out;
    if (attr) {
      const Value* dflt = nullptr;
      for (auto& [k, x] : a.kw)
        if (k == "default") dflt = &x;
      for (auto& x : iterate(v)) {
        Value r = attr->k == K::Int ? get_item(x, *attr) : get_attr(x, s_of(*attr));
        if (r.k == K::Undef && dflt) r = *dflt;
        out.push_back(r);
      }
      return list(std::move(out));
    }
    if (a.pos.empty()) type_error("map needs a filter name or attribute=");
    std::string fname = s_of(a.pos[0]);
    Args rest;
    rest.pos.assign(a.pos.begin() + 1, a.pos.end());
    rest.kw = a.kw;
    for (auto& x : iterate(v)) out.push_back(filter(fname, x, rest));
    return list(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    bool by_attr = name == "selectattr" || name == "rejectattr";
    bool keep_true = name == "selectattr" || name == "select";
    size_t k0 = by_attr ? 1 : 0;
    if (by_attr && a.pos.empty()) type_error(name + " needs an attribute name");
    std::string tname = a.pos.size() > k0 ? s_of(a.pos[k0]) : "";
    Args targs;
    if (a.pos.size() > k0 + 1) targs.pos.assign(a.pos.begin() + long(k0) + 1, a.pos.end());
    targs.kw = a.kw;
    std::vector<Value> out;
    for (auto& x : iterate(v)) {
      Value subject = by_attr ? get_attr(x, s_of(a.pos[0])) : x;
      bool r = tname.empty() ? truthy(subject) : test(tname, subject, targs);
      if (r == keep_true) out.push_back(x);
    }
    return list(std::move(out));
  }
  if (name == "unique") {
    std::vector<Value> out;
    for (auto& x : iterate(v)) {
      bool seen = false;
      for (auto& y : out) {
        if (x.k == K::Str && y.k == K::Str ? ascii_lower(x.s) == ascii_lower(y.s) : equal(x, y)) seen = true;
      }
      if (!seen) out.push_back(x);
    }
    return list(std::move(out));
  }
  if (name == "sort" || name == "min" || name == "max") {
    const Value* rev = name == "sort" ? arg(0, "reverse") : nullptr;
    const Value* cs = arg(name == "sort" ? 1 : 0, "case_sensitive");
    const Value* attr = arg(name == "sort" ? 2 : 1, "attribute");
    std::vector<Value> items = iterate(v);
    auto key = [&](const Value& x) {
      Value k = attr && attr->k != K::None ? get_attr(x, s_of(*attr)) : x;
      if (k.k == K::Str && !(cs && truthy(*cs))) k.s = ascii_lower(k.s);
      return k;
    };
    auto less = [&](const Value& x, const Value& y) { return compare(key(x), key(y), "<") < 0; };
    if (name == "sort") {
      std::stable_sort(items.begin(), items.end(), less);
      if (rev && truthy(*rev)) std::reverse(items.begin(), items.end());  // ties: Python keeps order; rare
      return list(std::move(items));
    }
    if (items.empty()) return undef(fmt::format("No aggregated item, sequence was empty."));
    auto it = name == "min" ? std::min_element(items.begin(), items.end(), less)
                            : std::max_element(items.begin(), items.end(), less);
    return *it;
  }
  if (name == "sum") {
    const Value* attr = arg(0, "attribute");
    const Value* start = arg(1, "start");
    Value total = start ? *start : integer(0);
    for (auto& x : iterate(v)) total = arith("+", total, attr && attr->k != K::None ? get_attr(x, s_of(*attr)) : x);
    return total;
  }
  if (name == "int") {
    const Value* dflt = arg(0, "default");
    Value d = dflt ? *dflt : integer(0);
    if (v.k == K::Int) return v;
    if (v.k == K::Bool) return integer(v.b);
    if (v.k == K::Float) return std::isfinite(v.f) ? integer(int64_t(v.f)) : d;
    if (v.k == K::Str) {
      std::string s = py_strip(v.s, nullptr, true, true);
      char* end = nullptr;
      long long x = std::strtoll(s.c_str(), &end, int(need_int(arg(1, "base"), 10, "int")));
      if (!s.empty() && *end == 0) return integer(x);
      double f = std::strtod(s.c_str(), &end);
      if (!s.empty() && *end == 0 && std::isfinite(f)) return integer(int64_t(f));
    }
    return d;
  }
  if (name == "float") {
    const Value* dflt = arg(0, "default");
    Value d = dflt ? *dflt : real(0.0);
    if (is_num(v)) return real(num(v));
    if (v.k == K::Str) {
      std::string s = py_strip(v.s, nullptr, true, true);
      char* end = nullptr;
      double f = std::strtod(s.c_str(), &end);
      if (!s.empty() && *end == 0) return real(f);
    }
    return d;
  }
  if (name == "abs") {
    if (v.k == K::Undef) undefined_error(v);
    if (!is_num(v)) type_error(fmt::format("bad operand type for abs(): '{}'", type_name(v)));
    return v.k == K::Float ? real(std::fabs(v.f)) : integer(std::llabs(inum(v)));
  }
  if (name == "round") {
    int64_t prec = need_int(arg(0, "precision"), 0, "round");
    const Value* meth = arg(1, "method");
    std::string m = meth ? s_of(*meth) : "common";
    if (v.k == K::Undef) undefined_error(v);
    if (!is_num(v)) type_error(fmt::format("type {} doesn't define __round__ method", type_name(v)));
    if (m == "common" && v.k != K::Float) return integer(inum(v));
    double x = num(v), scale = std::pow(10.0, double(prec));
    double r;
    if (m == "ceil") r = std::ceil(x * scale) / scale;
    else if (m == "floor") r = std::floor(x * scale) / scale;
    else if (m == "common") r = std::nearbyint(x * scale) / scale;  // round half to even, as Python
    else raise("FilterArgumentError", "method must be common, ceil or floor");
    return real(r);
  }
  if (name == "indent") {
    const Value* w = arg(0, "width");
    const Value* first = arg(1, "first");
    const Value* blank = arg(2, "blank");
    std::string ind = w && w->k == K::Str ? w->s : std::string(size_t(need_int(w, 4, "indent")), ' ');
    std::string s = s_of(v) + "\n";
    std::vector<std::string> lines;
    size_t b = 0;
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] == '\n') {
        lines.push_back(s.substr(b, i - b));
        b = i + 1;
      }
    std::string rv;
    if (blank && truthy(*blank)) {
      for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
    } else {
      rv = lines.empty() ? "" : lines[0];
      for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind + lines[i]);
    }
    if (first && truthy(*first)) rv = ind + rv;
    return str(rv);
  }
  if (name == "wordcount") {
    std::string s = s_of(v);
    int64_t n = 0;
    bool in = false;
    for (unsigned char c : s) {
      bool w = std::isalnum(c) || c == '_' || c >= 0x80;
      if (w && !in) ++n;
      in = w;
    }
    return integer(n);
  }
  if (name == "attr") {
    const Value* n = arg(0, "name");
    if (!n) type_error("attr needs a name");
    return get_attr(v, s_of(*n));
  }
  if (name == "dictsort") {
    if (v.k != K::Dict) type_error("dictsort needs a mapping");
    Value items = items_of(v);
    std::stable_sort(items.l->begin(), items.l->end(), [](const Value& x, const Value& y) {
      return ascii_lower((*x.l)[0].s) < ascii_lower((*y.l)[0].s);
    });
    return items;
  }
  if (name == "format") {
    std::string f = s_of(v), o;
    size_t k = 0;
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i] != '%') {
        o += f[i];
        continue;
      }
      if (i + 1 >= f.size()) raise("ValueError", "incomplete format");
      char c = f[++i];
      if (c == '%') {
        o += '%';
        continue;
      }
      if (k >= a.pos.size()) type_error("not enough arguments for format string");
      const Value& x = a.pos[k++];
      if (c == 's') o += s_of(x);
      else if (c == 'r') o += repr(x);
      else if (c == 'd' || c == 'i') {
        if (!is_num(x)) type_error("%d format: a number is required");
        o += std::to_string(x.k == K::Float ? int64_t(x.f) : inum(x));
      } else type_error(fmt::format("unsupported format character '{}'", c));
    }
    return str(o);
  }
  if (name == "center") {
    int64_t w = need_int(arg(0, "width"), 80, "center");
    std::string s = s_of(v);
    int64_t n = int64_t(cp_len(s));
    if (n >= w) return str(s);
    int64_t pad = w - n, left = pad / 2 + (pad & w & 1);
    return str(std::string(size_t(left), ' ') + s + std::string(size_t(pad - left), ' '));
  }
  raise("TemplateAssertionError", fmt::format("no filter named '{}'", name));
}

void install_globals(Interp& in) {
  auto& g = in.globals;
  g["raise_exception"] = func([](Interp&, Args& a) -> Value {
    raise("TemplateError", a.pos.empty() ? "" : to_str(a.pos[0]));
  });
  g["strftime_now"] = func([](Interp& it, Args& a) {
    std::string f = a.pos.empty() ? "" : to_str(a.pos[0]);
    return str(it.opt.strftime_now ? it.opt.strftime_now(f) : default_strftime(f));
  });
  g["range"] = func([](Interp&, Args& a) {
    int64_t lo = 0, hi, step = 1;
    if (a.pos.empty()) type_error("range expected at least 1 argument, got 0");
    for (auto& x : a.pos)
      if (x.k != K::Int && x.k != K::Bool) type_error(fmt::format("'{}' object cannot be interpreted as an integer", type_name(x)));
    if (a.pos.size() == 1) hi = inum(a.pos[0]);
    else {
      lo = inum(a.pos[0]);
      hi = inum(a.pos[1]);
      if (a.pos.size() > 2) step = inum(a.pos[2]);
    }
    if (step == 0) raise("ValueError", "range() arg 3 must not be zero");
    std::vector<Value> v;
    for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) {
      v.push_back(integer(i));
      if (v.size() > 100000) raise("OverflowError", "range too big");
    }
    return list(std::move(v));
  });
  g["dict"] = func([](Interp&, Args& a) {
    Value d = dict();
    if (!a.pos.empty() && a.pos[0].k == K::Dict)
      for (auto& [k, v] : a.pos[0].d->kv) d.d->set(k, v);
    for (auto& [k, v] : a.kw) d.d->set(k, v);
    return d;
  });
  g["namespace"] = func([](Interp&, Args& a) {
    Value d = dict();
    d.ns = true;
    if (!a.pos.empty() && a.pos[0].k == K::Dict)
      for (auto& [k, v] : a.pos[0].d->kv) d.d->set(k, v);
    for (auto& [k, v] : a.kw) d.d->set(k, v);
    return d;
  });
}

}  // namespace

Template::Template(const std::string& source, const std::string& origin) {
  auto impl = std::make_shared<Impl>();
  impl->origin = origin;
  Lexer lx{impl->origin, source, 0, 1, {}};
  lx.run();
  Parser ps{impl->origin, lx.out};
  ps.body(impl->body, {});
  if (ps.cur().k != TK::Eof) ps.error("unexpected " + ps.describe());
  impl->has_generation = ps.has_generation;
  impl_ = std::move(impl);
}

bool Template::has_generation_tag() const { return impl_->has_generation; }
const std::string& Template::origin() const { return impl_->origin; }

RenderOutput Template::render(const nlohmann::ordered_json& vars, const Options& opt) const {
  if (!vars.is_object()) fail(impl_->origin, "render variables must be a JSON object", "internal use");
  Interp in(*impl_, opt);
  install_globals(in);
  in.frames.emplace_back();
  for (auto it = vars.begin(); it != vars.end(); ++it) in.frames[0][it.key()] = from_json(it.value());
  try {
    in.exec(impl_->body);
  } catch (const Raise& r) {
    std::string where = impl_->origin + " line " + std::to_string(in.line);
    std::string hint = r.kind == "TemplateError"
                           ? "the chat template rejected this conversation (its own raise_exception)"
                           : "the chat template cannot render this conversation (as in transformers' Jinja2)";
    throw RenderError(r.kind, r.msg, format_error(where, r.kind + ": " + r.msg, hint));
  }
  RenderOutput o;
  o.text = std::move(in.main_out);
  o.generation = std::move(in.gen_spans);
  return o;
}

}  // namespace prefopt::jinja
