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

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Formats "WHERE: WHAT" plus "\n  HINT: ..." when a hint is given.
std::string format_error(const std::string& where, const std::string& what,
                         const std::string& hint = "");

[[noreturn]] void fail(const std::string& where, const std::string& what,
                       const std::string& hint = "");

}  // namespace prefopt

// PREFOPT_CHECK(cond, "fmt {}", args...) -> throws prefopt::Error with the message.
#define PREFOPT_CHECK(cond, ...)                                   \
  do {                                                             \
    if (!(cond)) throw ::prefopt::Error(fmt::format(__VA_ARGS__)); \
  } while (0)
