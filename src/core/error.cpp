#include "core/error.h"

namespace prefopt {

std::string format_error(const std::string& where, const std::string& what,
                         const std::string& hint) {
  std::string s = where.empty() ? what : where + ": " + what;
  if (!hint.empty()) s += "\n  HINT: " + hint;
  return s;
}

void fail(const std::string& where, const std::string& what, const std::string& hint) {
  throw Error(format_error(where, what, hint));
}

}  // namespace prefopt
