// prefopt Jinja: the subset of Jinja2 that Hugging Face chat templates use, rendered the way
// transformers' apply_chat_template renders them.
//
// Environment (as transformers' _compile_jinja_template): trim_blocks and lstrip_blocks on,
// keep_trailing_newline off, autoescape off, loop controls ({% break %}, {% continue %}),
// the {% generation %}...{% endgeneration %} tag (renders its body and records the span),
// transformers' tojson (insertion order, ", "/": " separators, non-ASCII kept raw, indent=),
// and the globals raise_exception(msg), strftime_now(fmt), range, dict, namespace.
// Undefined values follow Jinja's default Undefined: printing gives "", truthiness is false,
// iterating gives nothing, and any other use (arithmetic, attribute access, calls) is an error.
//
// No libtorch, no Python: the module depends on nlohmann::json (the render variables) only.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.h"

namespace prefopt::jinja {

// A render that the template itself rejects: raise_exception(...) ("TemplateError"), an
// undefined value used in an operation ("UndefinedError"), or a type error ("TypeError").
// what() is the full prefopt message naming the template and line; message() the bare text.
class RenderError : public Error {
 public:
  RenderError(std::string kind, std::string message, const std::string& full)
      : Error(full), kind_(std::move(kind)), message_(std::move(message)) {}
  const std::string& kind() const { return kind_; }
  const std::string& message() const { return message_; }

 private:
  std::string kind_, message_;
};

struct Options {
  // strftime_now(fmt) of the templates; empty = the local clock, C locale.
  std::function<std::string(const std::string& fmt)> strftime_now;
};

struct RenderOutput {
  std::string text;
  // Byte ranges [begin, end) of `text` rendered inside {% generation %} blocks, in order.
  std::vector<std::pair<size_t, size_t>> generation;
};

class Template {
 public:
  // Parses `source`; a syntax error is a prefopt::Error naming `origin` and the line.
  explicit Template(const std::string& source, const std::string& origin = "chat_template");
  // `vars` must be a JSON object: each key is a template variable (key order is kept, so
  // tojson prints objects in their input order).
  RenderOutput render(const nlohmann::ordered_json& vars, const Options& opt = {}) const;
  bool has_generation_tag() const;
  const std::string& origin() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace prefopt::jinja
