// Verdict names (the strings used in eval-code's JSONL and the docs).
#include <array>

#include "sandbox/sandbox.h"

namespace prefopt {

namespace {
constexpr std::array<const char*, 7> kVerdictNames = {"PASSED",       "FAILED",  "TIMEOUT",      "MEMORY_LIMIT",
                                                      "OUTPUT_LIMIT", "CRASHED", "SANDBOX_ERROR"};
}

const char* to_string(Verdict v) { return kVerdictNames[static_cast<size_t>(v)]; }

std::optional<Verdict> parse_verdict(std::string_view s) {
  for (size_t i = 0; i < kVerdictNames.size(); ++i)
    if (s == kVerdictNames[i]) return static_cast<Verdict>(i);
  return std::nullopt;
}

}  // namespace prefopt
