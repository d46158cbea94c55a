// prefopt core: errors that a user can act on.
//
// Bad input and programmer errors throw prefopt::Error. The message names the
// place (file, line, tensor, key), what was expected, what was found, and a
// HINT saying what to do. The CLI catches once in main() and maps to exit codes.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace prefopt {

// Bad input (exit 2 from the CLI).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// A broken internal invariant: a bug in prefopt, never the user's input (exit 3).
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& msg) : std::logic_error(msg) {}
};

// Formats "WHERE: WHAT" plus "\n  HINT: ..." when a hint is given.
std::string format_error(const std::string& where, const std::string& what,
                         const std::string& hint = "");

[[noreturn]] void fail(const std::string& where, const std::string& what,
                       const std::string& hint = "");

}  // namespace prefopt

// Bad input. PREFOPT_REQUIRE(cond, where, what, hint): when cond is false,
// throws prefopt::Error "WHERE: WHAT\n  HINT: HINT" (format_error). The three
// arguments are evaluated only then, so `what` may be an fmt::format(...).
#define PREFOPT_REQUIRE(cond, where, what, hint)                      \
  do {                                                                \
    if (!(cond)) ::prefopt::fail((where), (what), (hint));            \
  } while (0)

// Bad input, with the whole message formatted: PREFOPT_CHECK(cond, "fmt {}", args...).
// Prefer PREFOPT_REQUIRE where a hint helps.
#define PREFOPT_CHECK(cond, ...)                                   \
  do {                                                             \
    if (!(cond)) throw ::prefopt::Error(fmt::format(__VA_ARGS__)); \
  } while (0)

// An internal invariant: PREFOPT_ASSERT(cond, "fmt {}", args...) throws
// prefopt::InternalError naming this source file and line (the CLI exits 3).
#define PREFOPT_ASSERT(cond, ...)                                                                       \
  do {                                                                                                  \
    if (!(cond))                                                                                        \
      throw ::prefopt::InternalError(fmt::format("internal error at {}:{}: ", __FILE__, __LINE__) +    \
                                     fmt::format(__VA_ARGS__));                                         \
  } while (0)
